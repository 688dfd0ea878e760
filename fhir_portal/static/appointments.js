// Waiting room: poll the queue state every few seconds and update the page in place.
// The page works without this file (a Refresh link); this only saves the clicks.
(function () {
  "use strict";
  var box = document.getElementById("queue-status");
  if (!box || !window.fetch) { return; }
  var url = box.getAttribute("data-poll-url");
  var seconds = parseInt(box.getAttribute("data-poll-seconds"), 10) || 5;
  var last = null;

  function field(name) { return box.querySelector('[data-field="' + name + '"]'); }

  function setText(name, text) {
    var node = field(name);
    if (node && node.textContent !== text) { node.textContent = text; }
  }

  function showVisit(state) {
    var node = field("visit");
    if (!node) { return; }
    if (state.visit_url) {
      var link = node.querySelector("a");
      if (!link) {
        link = document.createElement("a");
        link.className = "button primary";
        node.textContent = "";
        node.appendChild(link);
      }
      link.href = state.visit_url;
      link.textContent = state.visit_text;
    } else {
      node.textContent = "";
    }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (state) {
        if (!state) { return; }
        setText("message", state.message);
        if (state.status === "waiting" || state.status === "ready") {
          setText("estimate", state.estimate_text || "");
        }
        showVisit(state);
        if (last !== state.status && state.status === "ready") {
          var link = field("visit") && field("visit").querySelector("a");
          if (link) { link.focus(); }
        }
        last = state.status;
        if (state.status === "waiting" || state.status === "ready" ||
            state.status === "checked-in") {
          window.setTimeout(poll, seconds * 1000);
        }
      })
      .catch(function () { window.setTimeout(poll, seconds * 2000); });
  }
  window.setTimeout(poll, seconds * 1000);
})();
