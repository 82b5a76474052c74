// The Security and account pages' script (server-rendered pages work without it):
// - a button with data-copy="<input id>" copies that input's value and says so;
// - a form with data-confirm="<question>" asks before it is sent.
(function () {
  "use strict";

  function copied(button, text) {
    var label = button.textContent;
    button.textContent = text;
    window.setTimeout(function () { button.textContent = label; }, 2000);
  }

  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("[data-copy]") : null;
    if (!button) return;
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) return;
    field.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(
        function () { copied(button, "Copied"); },
        function () { copied(button, "Press Ctrl+C to copy"); }
      );
    } else {
      // Over plain HTTP to another host there is no clipboard API: the text is selected.
      copied(button, document.execCommand("copy") ? "Copied" : "Press Ctrl+C to copy");
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });
})();
