/**
 * The console's one script (progressive: every page works without it): copy buttons
 * (`data-copy="<element id>"`) and confirmation prompts on forms marked `data-confirm`.
 */
export const CONSOLE_JS = `
(function () {
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      var status = document.getElementById(button.getAttribute("data-copy") + "-status");
      if (status) status.textContent = "Copied to the clipboard.";
    });
  });
  document.querySelectorAll("[data-copy]").forEach(function (button) { button.hidden = false; });
})();
`;
