// The grid's task groups fold and unfold: a group's toggle hides the rows of the tasks and
// groups inside it. Which groups are folded is kept per DAG for the tab's session, so a live
// refresh of the grid (htmx swaps the whole region) or a reload keeps them folded. Without
// this script every group shows unfolded and the toggles stay hidden.
(function () {
  "use strict";

  function key(region) {
    return "slipstream.grid.folded:" + region.getAttribute("data-dag-id");
  }

  function folded(region) {
    try {
      return JSON.parse(sessionStorage.getItem(key(region)) || "[]");
    } catch (e) {
      return [];
    }
  }

  function apply(region) {
    var closed = folded(region);
    region.querySelectorAll("[data-group-toggle]").forEach(function (button) {
      button.hidden = false;
      var open = closed.indexOf(button.getAttribute("data-group-toggle")) < 0;
      button.setAttribute("aria-expanded", open ? "true" : "false");
    });
    region.querySelectorAll("tr.grid-row").forEach(function (row) {
      var groups = (row.getAttribute("data-groups") || "").split(" ").filter(Boolean);
      row.hidden = groups.some(function (g) { return closed.indexOf(g) >= 0; });
    });
  }

  function setup(root) {
    var region = root.querySelector ? (root.matches && root.matches(".grid-region") ? root : root.querySelector(".grid-region")) : null;
    if (region) apply(region);
  }

  document.addEventListener("DOMContentLoaded", function () { setup(document); });
  document.addEventListener("htmx:afterSwap", function (event) { setup(event.target); });
  document.addEventListener("htmx:afterSettle", function () { setup(document); });
  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target.closest("[data-group-toggle]") : null;
    if (!target) return;
    var region = target.closest(".grid-region");
    if (!region) return;
    var group = target.getAttribute("data-group-toggle");
    var closed = folded(region).filter(function (g) { return g !== group; });
    if (target.getAttribute("aria-expanded") === "true") closed.push(group);
    try {
      sessionStorage.setItem(key(region), JSON.stringify(closed));
    } catch (e) { /* storage refused: folding still works until the next refresh */ }
    apply(region);
  });
})();
