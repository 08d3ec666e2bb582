// Count a deflection: the reader leaves an article page without going on to contact us.
// Sent once, with sendBeacon on pagehide so that it survives the navigation.
const article = document.getElementById("article");
if (article) {
  let contacting = false;
  let sent = false;
  for (const link of document.querySelectorAll("[data-contact]")) {
    link.addEventListener("click", () => { contacting = true; });
  }
  window.addEventListener("pagehide", () => {
    if (contacting || sent) return;
    sent = true;
    navigator.sendBeacon(article.dataset.deflectUrl, "");
  });
}
