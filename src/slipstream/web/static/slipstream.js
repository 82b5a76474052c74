// Slipstream's UI script: small touches on top of server-rendered pages and htmx.
// - <time datetime> elements show the reader's own time zone (the page says UTC without JS);
// - an htmx request the server refuses (403, 404, 429...) shows its message in #flash;
// - messages can be dismissed.
(function () {
  "use strict";

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when.getTime())) return;
      if (!el.title) el.title = el.textContent;
      el.textContent = when.toLocaleString(undefined, {
        year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit",
      });
    });
  }

  function flash(html) {
    var area = document.getElementById("flash");
    if (area) area.innerHTML = html;
  }

  document.addEventListener("DOMContentLoaded", function () { localTimes(document); });
  document.addEventListener("htmx:afterSwap", function (event) { localTimes(event.target); });
  document.addEventListener("htmx:responseError", function (event) {
    // The server's own error fragment (_flash.html).
    flash(event.detail.xhr.responseText);
  });
  document.addEventListener("htmx:sendError", function () {
    flash('<div class="flash flash-error" role="alert"><strong>The server did not answer.</strong> Check that Slipstream is running, then try again.</div>');
  });
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target instanceof Element && target.hasAttribute("data-dismiss")) {
      var box = target.closest(".flash");
      if (box) box.remove();
    }
  });
})();
