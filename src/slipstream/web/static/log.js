// The log page: search (highlight, or only matching lines), wrap, follow the end, the try
// selector, and the live tail (text from the page's live stream, see live.js, appended as the
// try writes it). Without this script the page still shows the log and every link works.
(function () {
  "use strict";

  var view, lines, text, search, onlyMatches, wrap, follow, matches, box;
  var fullText = "";
  var searchTimer = null;

  function render() {
    var query = search.value.toLowerCase();
    if (!query) {
      lines.textContent = fullText;
      matches.textContent = "";
      return;
    }
    var found = 0;
    var out = document.createDocumentFragment();
    var all = fullText.split("\n");
    all.forEach(function (line, i) {
      var end = i === all.length - 1 ? "" : "\n";
      var lower = line.toLowerCase();
      var at = lower.indexOf(query);
      if (at < 0) {
        if (!onlyMatches.checked) out.append(line + end);
        return;
      }
      found += 1;
      var from = 0;
      while (at >= 0) {
        out.append(line.slice(from, at));
        var mark = document.createElement("mark");
        mark.textContent = line.slice(at, at + query.length);
        out.append(mark);
        from = at + query.length;
        at = lower.indexOf(query, from);
      }
      out.append(line.slice(from) + end);
    });
    lines.replaceChildren(out);
    matches.textContent = found === 1 ? "1 matching line" : found + " matching lines";
  }

  function scrollToEnd() {
    if (follow && follow.checked) box.scrollTop = box.scrollHeight;
  }

  function append(more) {
    fullText += more;
    var empty = document.getElementById("log-empty");
    if (empty) empty.remove();
    if (search.value) render();
    else lines.append(more);
    scrollToEnd();
  }

  function ended(state) {
    var badge = document.getElementById("log-try-state");
    if (badge) {
      badge.innerHTML = "";
      var word = document.createElement("span");
      word.className = "badge state-" + state;
      word.textContent = state.replace(/_/g, " ");
      badge.append(word);
    }
    var live = document.getElementById("log-live");
    if (live) live.textContent = "· finished";
  }

  function init() {
    view = document.getElementById("log-view");
    if (!view || view.getAttribute("data-log-ready")) return;
    view.setAttribute("data-log-ready", "1");
    lines = document.getElementById("log-lines");
    box = document.getElementById("log-text");
    search = document.getElementById("log-search");
    onlyMatches = document.getElementById("log-only-matches");
    wrap = document.getElementById("log-wrap");
    follow = document.getElementById("log-follow");
    matches = document.getElementById("log-matches");
    fullText = lines.textContent;
    lines.textContent = fullText;
    search.addEventListener("input", function () {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(render, 150);
    });
    onlyMatches.addEventListener("change", render);
    wrap.addEventListener("change", function () { box.classList.toggle("wrap", wrap.checked); });
    follow.addEventListener("change", scrollToEnd);
    var topic = view.getAttribute("data-log-topic");
    document.body.addEventListener("live:" + topic, function (event) {
      var detail = event.detail || {};
      if (detail.kind === "log") append(detail.text);
      else if (detail.kind === "end") ended(detail.state);
    });
    scrollToEnd();
  }

  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:afterSettle", init);
  // "Load earlier": htmx put an earlier part before the text; take it into the model.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (!lines || event.detail.target !== lines) return;
    var first = lines.querySelector(".log-chunk");
    if (first) {
      fullText = first.textContent + fullText;
      render();
    }
  });
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target instanceof HTMLSelectElement && target.hasAttribute("data-autosubmit")) {
      target.form.submit();
    }
  });
})();
