// Live regions: refresh a part of a page when the live stream says its topic changed.
//
// live.js dispatches the DOM event "live:<topic>" on <body>. A region could name that event in
// hx-trigger ("live:<topic> from:body"), but htmx 2 cannot parse an event name holding "/"
// (its trigger tokenizer reads "/" as the start of a regular expression and swallows the rest),
// and run and log topics hold one ("run:<dag_id>/<run_id>"). So a region says its topic in
// data-live-topic and names "live-refresh" in hx-trigger; this bridge listens on <body> for
// "live:<topic>" (one listener per topic) and triggers "live-refresh" on every region of it.
(function () {
  "use strict";

  var listening = {};

  function bridge(root) {
    var regions = root.querySelectorAll ? root.querySelectorAll("[data-live-topic]") : [];
    var all = Array.prototype.slice.call(regions);
    if (root.hasAttribute && root.hasAttribute("data-live-topic")) all.push(root);
    all.forEach(function (region) {
      var topic = region.getAttribute("data-live-topic");
      if (!topic || listening[topic]) return;
      listening[topic] = true;
      document.body.addEventListener("live:" + topic, function () {
        document.querySelectorAll("[data-live-topic]").forEach(function (el) {
          if (el.getAttribute("data-live-topic") === topic && window.htmx) {
            window.htmx.trigger(el, "live-refresh");
          }
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { bridge(document); });
  document.addEventListener("htmx:load", function (event) { bridge(event.target); });
})();
