// The customer panel's identity block: every email, phone and chat id, with remove buttons,
// an add form and the name/language editor for agents who may edit customers.
// Everything goes through /api/v1/customers/... (session cookie plus the CSRF header); the
// server normalises (phones to E.164), audits and announces each change, and the panels of
// other agents viewing the customer reload on the customer.updated event.
import { api, ApiError, el, t } from "./util.js";

const KINDS = ["email", "phone", "chat"];
// What the agent was typing survives the panel being redrawn by a live update; after an
// address is added, the next drawing puts the cursor back into the address field.
const draft = { kind: "email", address: "", refocus: null };

function kindLabel(kind) {
  return { email: t("Email"), phone: t("Phone"), chat: t("Chat id"), external: t("External id") }[kind] || kind;
}

// The API's conflicts carry a code, so their explanation can be shown in the agent's language.
function errorText(err) {
  if (!(err instanceof ApiError)) return String(err);
  if (err.body?.conflict === "identity_exists") {
    return err.body.merge_customer_id
      ? t("This address already belongs to another customer: merge the two customers.")
      : t("This address already belongs to another customer: ask a supervisor to merge the two customers.");
  }
  if (err.body?.conflict === "last_identity") return t("A customer keeps at least one address: add the new one first.");
  if (err.status === 400) return t("Not accepted: {reason}", { reason: err.message });
  return err.message;
}

function showError(box, err, extra = null) {
  box.replaceChildren(errorText(err), ...(extra ? [" ", extra] : []));
  box.hidden = false;
}

/**
 * Build the identity block for a customer.
 * @param {object} customer the workspace's customer (with identities carrying ids)
 * @param {{canEdit: boolean, canMerge: boolean, onChange: () => Promise<void>,
 *   focusedId: string | undefined}} options (focusedId: what had focus before the redraw)
 */
export function identityBlock(customer, { canEdit, canMerge, onChange, focusedId }) {
  const errors = el("p", { id: "identity-error", class: "error", role: "alert", hidden: true });
  const list = el("ul", { class: "identities", id: "identities" },
    (customer.identities || []).map((i) => el("li", { dataset: { kind: i.kind, identity: i.id } },
      el("span", { class: "identity-kind" }, `${kindLabel(i.kind)}: `),
      el("span", { class: "identity-address" }, i.address),
      canEdit && KINDS.includes(i.kind) ? el("button", {
        type: "button", class: "small identity-remove",
        "aria-label": t("Remove {address}", { address: i.address }),
        onclick: () => remove(customer, i, errors, onChange) }, t("Remove")) : null)));
  if (!canEdit) return el("div", { class: "identity-block" }, list);
  const block = el("div", { class: "identity-block" },
    detailsForm(customer, errors, onChange), list, addForm(customer, errors, canMerge, onChange),
    errors);
  const target = draft.refocus || focusedId;
  draft.refocus = null;
  const field = target ? block.querySelector(`#${CSS.escape(target)}`) : null;
  if (field) queueMicrotask(() => field.focus());  // once the block is in the page
  return block;
}

async function remove(customer, identity, errors, onChange) {
  if (!window.confirm(t("Remove {address} from this customer?", { address: identity.address }))) return;
  try {
    await api("DELETE", `/api/v1/customers/${customer.id}/identities/${identity.id}`);
    draft.refocus = "identity-address";  // the pressed button is gone; keep the keyboard nearby
    await onChange();
  } catch (err) { showError(errors, err); }
}

function addForm(customer, errors, canMerge, onChange) {
  const kind = el("select", { id: "identity-kind", name: "kind" },
    KINDS.map((k) => el("option", { value: k, selected: k === draft.kind }, kindLabel(k))));
  const address = el("input", { id: "identity-address", name: "address", required: true,
    maxlength: 400, autocomplete: "off", placeholder: t("address or +7 916 123-45-67") });
  address.value = draft.address;
  kind.addEventListener("change", () => { draft.kind = kind.value; });
  address.addEventListener("input", () => { draft.address = address.value; });
  const form = el("form", { id: "identity-add", class: "identity-add",
    "aria-label": t("Add an address") },
  el("label", { for: "identity-kind" }, t("Type")), kind,
  el("label", { for: "identity-address" }, t("Address")), address,
  el("button", { type: "submit", class: "small" }, t("Add")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    errors.hidden = true;
    try {
      await api("POST", `/api/v1/customers/${customer.id}/identities`,
        { kind: kind.value, address: address.value });
      draft.address = "";
      draft.refocus = "identity-address";
      await onChange();
    } catch (err) {
      const other = err instanceof ApiError ? err.body?.merge_customer_id : null;
      const merge = canMerge && other ? el("button", { type: "button", class: "small",
        id: "identity-merge", onclick: async () => {
          try {
            await api("POST", `/api/v1/customers/${customer.id}/merge`, { merged_id: other });
            await onChange();
          } catch (err2) { showError(errors, err2); }
        } }, t("Merge that customer into this one")) : null;
      showError(errors, err, merge);
      address.focus();
    }
  });
  return form;
}

function detailsForm(customer, errors, onChange) {
  const name = el("input", { id: "customer-name-input", maxlength: 200, value: customer.name || "" });
  const language = el("input", { id: "customer-language-input", maxlength: 8, size: 4,
    value: customer.language || "", placeholder: "en" });
  const form = el("form", { id: "customer-edit", class: "customer-edit", hidden: true },
    el("label", { for: "customer-name-input" }, t("Name")), name,
    el("label", { for: "customer-language-input" }, t("Language")), language,
    el("button", { type: "submit", class: "small" }, t("Save")),
    el("button", { type: "button", class: "small", onclick: () => toggle(false) }, t("Cancel")));
  const open = el("button", { type: "button", class: "small", id: "customer-edit-open",
    "aria-expanded": "false", onclick: () => toggle(true) }, t("Edit name and language"));
  function toggle(on) {
    form.hidden = !on;
    open.setAttribute("aria-expanded", String(on));
    if (on) name.focus(); else open.focus();
  }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("PATCH", `/api/v1/customers/${customer.id}`,
        { name: name.value, language: language.value.trim() || null });
      await onChange();
    } catch (err) { showError(errors, err); }
  });
  return el("div", { class: "customer-details" }, open, form);
}
