"""The email benchmark's corpus and its judge: generate it, then check a pipeline's result.

``generate_corpus`` runs ``../shared/gen_emails.py`` and keeps its manifest (senders,
charsets, kinds, reply links) out of the folder that is ingested. ``check_outcome``
compares what a pipeline stored with the manifest: every message ingested once, a reply
on the ticket of the thread it answers, every new thread its own ticket, one customer
per sender address, auto-replies flagged and never answered, subjects and attachment
sizes as sent.
"""

from __future__ import annotations

import collections
import email
import email.policy
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUPPORT_ADDRESS = "support@helpdesk.example"  # the generator's To address
EXAMPLES = 5


def _bare_id(message_id: str | None) -> str:
    return (message_id or "").strip().strip("<>").strip()


# --- the corpus -------------------------------------------------------------------------

@dataclass
class Corpus:
    """The generated files (in a folder of their own) and what the manifest says of them."""

    folder: Path
    summary: dict[str, Any]
    messages: list[dict[str, Any]]
    root: dict[str, str] = field(default_factory=dict)  # bare message id -> bare root id

    def __post_init__(self) -> None:
        parent = {_bare_id(m["message_id"]): _bare_id(m["in_reply_to"]) or None
                  for m in self.messages}
        for mid in parent:
            top, seen = mid, set()
            while parent.get(top) and top not in seen:
                seen.add(top)
                top = parent[top]  # type: ignore[assignment]
            self.root[mid] = top

    @property
    def files(self) -> list[str]:
        return [m["file"] for m in self.messages]

    def by_file(self) -> dict[str, dict[str, Any]]:
        return {m["file"]: m for m in self.messages}

    def describe(self) -> dict[str, Any]:
        s = self.summary
        return {"n": s["n"], "seed": s["seed"], "generator": "../shared/gen_emails.py",
                "total_bytes": s["total_bytes"], "kinds": s["kinds"], "charsets": s["charsets"],
                "replies": s["replies"], "threads": len(set(self.root.values())),
                "with_attachments": s["with_attachments"], "raw8bit": s["raw8bit"],
                "auto_replies": sum(1 for m in self.messages if m.get("auto_reply")),
                "distinct_senders": s["distinct_customers"], "recipient": SUPPORT_ADDRESS}


def generate_corpus(tmp: Path, n: int, seed: int, generator: Path) -> Corpus:
    """Run the shared generator; keep the manifest out of the folder that is ingested."""
    out = tmp / "corpus"
    done = subprocess.run([sys.executable, str(generator), str(out), "--n", str(n),
                           "--seed", str(seed)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"gen_emails.py failed: {done.stderr.strip()[-2000:]}")
    manifest = tmp / "manifest.json"
    shutil.move(str(out / "manifest.json"), manifest)
    data = json.loads(manifest.read_text(encoding="utf-8"))
    return Corpus(out, data["summary"], data["messages"])


def _attachment_sizes_crlf(path: Path) -> list[list[int]]:
    """Sizes of a message's attachments if text ones carry CRLF line ends (as over SMTP).

    On the wire every line ends in CRLF, so a text attachment sent in 7bit arrives with
    CRLF where the file had LF: both are the same attachment.
    """
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    sizes = []
    for part in msg.iter_attachments():
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if part.get_content_maintype() == "text":
            data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        sizes.append(len(data))
    return [sorted(sizes)]


# --- correctness against the manifest ---------------------------------------------------

def check_outcome(corpus: Corpus, outcome: dict[str, Any],
                  statuses: dict[str, str] | None = None) -> dict[str, Any]:
    """Compare stored tickets, threads, customers and contents with the manifest."""
    kinds: collections.Counter[str] = collections.Counter()
    examples: list[str] = []

    def miss(kind: str, text: str) -> None:
        kinds[kind] += 1
        if len(examples) < 3 * EXAMPLES:
            examples.append(f"{kind}: {text}")

    raws = {_bare_id(r["external_id"]): r for r in outcome["raws"]}
    inbound = {_bare_id(m["external_id"]): m for m in outcome["messages"]
               if m["direction"] == "inbound"}
    raw_states = collections.Counter(r["state"] for r in outcome["raws"])
    quarantined = collections.Counter(
        (r["error"] or "?").split(":", 1)[0] + ": " + (r["error"] or "")[:120]
        for r in outcome["raws"] if r["state"] == "quarantined")
    failed = [f"{r['external_id']}: {(r['error'] or '')[:200]}" for r in outcome["raws"]
              if r["state"] == "failed"]
    number = {tid: t["number"] for tid, t in outcome["tickets"].items()}

    # Every message stored and ingested as one inbound message.
    found: dict[str, dict[str, Any]] = {}
    for m in corpus.messages:
        mid = _bare_id(m["message_id"])
        row = inbound.get(mid)
        if row is None:
            raw = raws.get(mid)
            state = f"raw {raw['state']}: {(raw['error'] or '')[:150]}" if raw else "no raw row"
            miss("not_ingested", f"{m['file']} {mid} ({m['kind']}, {m['charset']}): {state}")
            continue
        found[mid] = row

    # Threads: a reply on its root's ticket; each root its own ticket.
    root_ticket: dict[str, int] = {}
    for mid, row in found.items():
        if corpus.root[mid] == mid:
            root_ticket[mid] = row["ticket"]
    by_file = {_bare_id(m["message_id"]): m for m in corpus.messages}
    for mid, row in found.items():
        root = corpus.root[mid]
        if root == mid or root not in root_ticket:
            continue
        if row["ticket"] != root_ticket[root]:
            m = by_file[mid]
            miss("reply_on_wrong_ticket",
                 f"{m['file']} (reply to {m['in_reply_to']}) on ticket "
                 f"#{number.get(row['ticket'])}, its thread is on #{number.get(root_ticket[root])}")
    roots_on_ticket: dict[int, list[str]] = collections.defaultdict(list)
    for root, ticket in root_ticket.items():
        roots_on_ticket[ticket].append(root)
    for ticket, roots in roots_on_ticket.items():
        for root in roots[1:]:
            miss("threads_merged", f"new thread {by_file[root]['file']} landed on ticket "
                                   f"#{number.get(ticket)} opened by {by_file[roots[0]]['file']}")

    # Customers: one per sender address, never shared between addresses (the majority
    # decides what was meant, so one stray message is one mismatch, not a cascade).
    seen: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    for m in corpus.messages:
        row = found.get(_bare_id(m["message_id"]))
        if row is not None:
            seen[m["customer"].lower()][row["customer"]] += 1
    customer_of = {address: ids.most_common(1)[0][0] for address, ids in seen.items()}
    address_of: dict[int, str] = {}
    for address, customer in customer_of.items():
        owner = address_of.setdefault(customer, address)
        if owner != address:
            miss("customers_merged", f"mail from {address} and from {owner} went to one "
                                     f"customer ({customer})")
    for m in corpus.messages:
        row = found.get(_bare_id(m["message_id"]))
        if row is None:
            continue
        address = m["customer"].lower()
        if row["customer"] != customer_of[address]:
            miss("customer_split", f"{m['file']} from {address} is customer {row['customer']}, "
                                   f"its other mail is customer {customer_of[address]}")
        ticket = outcome["tickets"].get(row["ticket"])
        if corpus.root[_bare_id(m["message_id"])] == _bare_id(m["message_id"]) and ticket \
                and ticket["customer"] != row["customer"]:
            miss("ticket_customer", f"{m['file']}: ticket #{ticket['number']} belongs to "
                                    f"customer {ticket['customer']}, not the sender")
        if bool(row["auto_submitted"]) != bool(m.get("auto_reply")):
            miss("auto_submitted_flag", f"{m['file']}: auto_submitted={row['auto_submitted']}, "
                                        f"manifest auto_reply={bool(m.get('auto_reply'))}")
        if (row["subject"] or "").strip() != m["subject"].strip():
            miss("subject", f"{m['file']} ({m['charset']}): {row['subject']!r} != "
                            f"{m['subject']!r}")
        sizes = sorted(outcome["attachments"].get(row["id"], []))
        want = sorted(a["bytes"] for a in m["attachments"])
        if sizes != want and sizes not in _attachment_sizes_crlf(corpus.folder / m["file"]):
            miss("attachments", f"{m['file']}: stored sizes {sizes}, sent {want}")
        if statuses is not None:
            want_status = "created" if corpus.root[_bare_id(m["message_id"])] == \
                _bare_id(m["message_id"]) else "appended"
            got = statuses.get(m["file"])
            if got != want_status:
                miss("status", f"{m['file']}: ingest said {got!r}, expected {want_status!r}")

    # Automatic mail is never answered automatically.
    auto_tickets = {found[_bare_id(m["message_id"])]["ticket"] for m in corpus.messages
                    if m.get("auto_reply") and _bare_id(m["message_id"]) in found}
    outbound = [m for m in outcome["messages"] if m["direction"] == "outbound"]
    auto_answered = 0
    for ticket in auto_tickets:
        inbound_here = [m for m in outcome["messages"]
                        if m["ticket"] == ticket and m["direction"] == "inbound"]
        if all(m["auto_submitted"] for m in inbound_here) and any(
                m["ticket"] == ticket for m in outbound):
            auto_answered += 1
            miss("auto_reply_answered", f"ticket #{number.get(ticket)} holds only automatic "
                                        f"mail but has an outbound message")
    distinct_tickets = {row["ticket"] for row in found.values()}
    return {
        "ingested": len(found),
        "raw_rows": len(outcome["raws"]),
        "raw_states": dict(sorted(raw_states.items())),
        "failed": len(failed),
        "failed_examples": failed[:EXAMPLES],
        "quarantined": sum(quarantined.values()),
        "quarantine_reasons": dict(quarantined.most_common(EXAMPLES)),
        "tickets": len(distinct_tickets),
        "tickets_expected": len(set(corpus.root.values())),
        "customers": len(address_of),
        "customers_expected": len({m["customer"].lower() for m in corpus.messages}),
        "outbound_messages": len(outbound),
        "auto_replies_answered": auto_answered,
        "mismatches": sum(kinds.values()),
        "mismatch_kinds": dict(sorted(kinds.items())),
        "mismatch_examples": examples[: 3 * EXAMPLES],
    }
