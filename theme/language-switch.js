// The language switch: a button in the menu bar of every page that opens the same page in the
// other edition. The English book is built into book/, the Hinglish one into book/hi-Latn/
// (`cargo xtask book`); every page of an edition sits at its root, so the same page is the
// same file name there. The browser check (tests/browser/check.mjs) follows every switch.
(function () {
  const buttons = document.querySelector(".right-buttons");
  if (!buttons) return;
  const hinglish = document.documentElement.lang === "hi-Latn";
  const root = typeof path_to_root === "string" ? path_to_root : "";
  let page = window.location.pathname.split("/").pop();
  if (page === "") page = "index.html";
  const link = document.createElement("a");
  link.id = "language-switch";
  link.href = root + (hinglish ? "../" : "hi-Latn/") + page + window.location.hash;
  link.textContent = hinglish ? "English" : "Hinglish";
  link.title = hinglish ? "This page in English" : "Yeh page Hinglish mein";
  link.setAttribute("aria-label", link.title);
  link.setAttribute("lang", hinglish ? "en" : "hi-Latn");
  link.style.fontSize = "1.4rem";
  link.style.marginInline = "0.5em";
  buttons.prepend(link);
})();
