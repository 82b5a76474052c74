// Live updates: ONE server-sent events stream per tab, to /ui/events, for the topics that the
// page's elements list in data-live-topics (space-separated). When the server says a topic
// changed, the DOM event "live:<topic>" is dispatched on <body>, which htmx regions listen to
// (hx-trigger="live:<topic> from:body"; for a topic with "/", name it with ":" instead, as
// htmx cannot read "/" there: live:run:<dag_id>:<run_id>). A followed log's new text comes as "live:log:..."
// with event.detail = {kind: "log", text, offset}, its end as {kind: "end", state}.
// The stream reconnects with backoff (1 s doubling to 30 s), asking for what changed since the
// last change it heard (the server replays it, or says to refresh everything); it is closed
// while the tab is hidden for a minute and reopened when it is shown again.
// <body data-live="on|off|signed-out"> tells whether the stream is open (tests wait on it).
// A region's live refresh waits while the reader is editing in it (an open [data-live-hold]
// element, such as a note's editor, or focus in a text field), so what they type is not swept
// away by the swap; it is made once they are done.
(function () {
  "use strict";

  var HIDDEN_CLOSE_MS = 60000;
  var MIN_DELAY_MS = 1000;
  var MAX_DELAY_MS = 30000;

  var source = null;
  var current = "";
  var since = null;
  var delay = MIN_DELAY_MS;
  var retryTimer = null;
  var hideTimer = null;
  var stopped = false;
  var logOffsets = {};
  var logEnded = {};

  function collectTopics() {
    var found = {};
    document.querySelectorAll("[data-live-topics]").forEach(function (el) {
      el.getAttribute("data-live-topics").split(/\s+/).forEach(function (topic) {
        if (!topic || logEnded[topic]) return;
        found[topic] = true;
        if (topic.indexOf("log:") === 0 && !(topic in logOffsets)) {
          var offset = parseInt(el.getAttribute("data-log-offset") || "0", 10);
          logOffsets[topic] = isNaN(offset) ? 0 : offset;
        }
      });
    });
    return Object.keys(found).sort();
  }

  function dispatch(topic, detail) {
    document.body.dispatchEvent(new CustomEvent("live:" + topic, { detail: detail }));
    // htmx reads "/" in hx-trigger as a quote, so a run topic is also announced with ":" in
    // its place: hx-trigger="live:run:<dag_id>:<run_id> from:body" (ids hold no ":" but runs').
    if (topic.indexOf("/") >= 0) {
      var alias = "live:" + topic.replace(/\//g, ":");
      document.body.dispatchEvent(new CustomEvent(alias, { detail: detail }));
    }
  }

  function setStatus(value) {
    document.body.setAttribute("data-live", value);
  }

  function close() {
    if (source) {
      source.close();
      source = null;
    }
    if (!stopped) setStatus("off");
  }

  function schedule(ms) {
    if (retryTimer || stopped) return;
    var wait = ms === undefined ? delay : ms;
    delay = Math.min(delay * 2, MAX_DELAY_MS);
    // Jitter, so tabs cut off together do not all come back in the same instant.
    retryTimer = setTimeout(function () {
      retryTimer = null;
      open();
    }, wait + Math.random() * 250);
  }

  function url(topics) {
    var query = "topics=" + encodeURIComponent(topics.join(" ")) + "&since=" + since;
    topics.forEach(function (topic) {
      if (topic.indexOf("log:") === 0) query += "&log_offset=" + logOffsets[topic];
    });
    return "/ui/events?" + query;
  }

  function open() {
    if (stopped || document.hidden) return;
    var topics = collectTopics();
    current = topics.join(" ");
    if (!topics.length) return;
    var stream = new EventSource(url(topics));
    source = stream;
    stream.addEventListener("hello", function () {
      delay = MIN_DELAY_MS;
      setStatus("on");
    });
    stream.addEventListener("change", function (event) {
      var data = JSON.parse(event.data);
      since = Math.max(since, data.at);
      data.topics.forEach(function (topic) { dispatch(topic, { kind: "change" }); });
    });
    stream.addEventListener("log", function (event) {
      var data = JSON.parse(event.data);
      logOffsets[data.topic] = data.offset;
      dispatch(data.topic, { kind: "log", text: data.text, offset: data.offset });
    });
    stream.addEventListener("log-end", function (event) {
      var data = JSON.parse(event.data);
      logEnded[data.topic] = true;
      dispatch(data.topic, { kind: "end", state: data.state });
    });
    stream.addEventListener("bye", function (event) {
      var reason = JSON.parse(event.data).reason;
      close();
      if (reason === "signed-out") {
        stopped = true;
        setStatus("signed-out");
        return;
      }
      schedule(reason === "reconnect" ? 0 : undefined);
    });
    stream.onerror = function () {
      // Refused (401, 403, 404) or cut off: EventSource would retry the same URL by itself;
      // we retry with backoff and an up-to-date `since` instead.
      if (stream !== source) return;
      close();
      schedule();
    };
  }

  function reopenIfTopicsChanged() {
    if (stopped) return;
    if (collectTopics().join(" ") === current) return;
    close();
    if (retryTimer) {
      clearTimeout(retryTimer);
      retryTimer = null;
    }
    open();
  }

  var held = [];  // refreshes waiting for the reader: {region, issue}

  function isEditing(region) {
    if (region.querySelector("[data-live-hold][open]")) return true;
    var active = document.activeElement;
    return !!active && active !== region && region.contains(active) &&
      active.matches("textarea, input:not([type=hidden]):not([type=checkbox]):not([type=radio])");
  }

  document.addEventListener("htmx:confirm", function (event) {
    var cause = event.detail.triggeringEvent;
    if (!cause || typeof cause.type !== "string" || cause.type.indexOf("live:") !== 0) return;
    var region = event.detail.elt;
    if (!isEditing(region)) return;
    event.preventDefault();
    held = held.filter(function (entry) { return entry.region !== region; });
    held.push({ region: region, issue: event.detail.issueRequest });
  });

  function releaseHeld() {
    if (!held.length) return;
    // After the event settles: the newly focused element is known then.
    setTimeout(function () {
      held = held.filter(function (entry) {
        if (!document.body.contains(entry.region)) return false;  // replaced meanwhile
        if (isEditing(entry.region)) return true;
        entry.issue(true);  // true: already confirmed
        return false;
      });
    }, 0);
  }

  // A live refresh replaces a region's elements, so focus on one of them would fall to <body>
  // and a keyboard user's next key would go nowhere: give it back to the new element that
  // stands for the same control (the same id, or the same tag and aria-label).
  var refocus = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var config = event.detail.requestConfig;
    var cause = config && config.triggeringEvent;
    if (!cause || typeof cause.type !== "string" || cause.type.indexOf("live:") !== 0) return;
    var active = document.activeElement;
    var region = event.detail.target;
    if (!active || active === document.body || !region || !region.contains(active)) return;
    refocus = { id: active.id, tag: active.tagName, label: active.getAttribute("aria-label") };
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!refocus) return;
    var wanted = refocus;
    refocus = null;
    var found = null;
    if (wanted.id) {
      found = document.getElementById(wanted.id);
    } else if (wanted.label) {
      found = document.querySelector(wanted.tag + '[aria-label="' + CSS.escape(wanted.label) + '"]');
    }
    if (found && document.activeElement !== found) found.focus();
  });

  document.addEventListener("focusout", releaseHeld);
  document.addEventListener("toggle", releaseHeld, true);  // <details>; toggle does not bubble
  document.addEventListener("htmx:afterSettle", releaseHeld);

  document.addEventListener("DOMContentLoaded", function () {
    var rendered = parseInt(document.body.getAttribute("data-live-since") || "", 10);
    since = isNaN(rendered) ? Date.now() : rendered;
    open();
  });
  // A swapped-in fragment may follow other topics.
  document.addEventListener("htmx:afterSettle", reopenIfTopicsChanged);
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      hideTimer = setTimeout(function () { hideTimer = null; close(); }, HIDDEN_CLOSE_MS);
      return;
    }
    if (hideTimer) {
      clearTimeout(hideTimer);
      hideTimer = null;
    }
    if (!source && !retryTimer) open();
  });
  window.addEventListener("pagehide", function () { stopped = true; close(); });
})();
