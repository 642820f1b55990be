// Live fragments: an element with data-live="URL" is refreshed from that URL (server-rendered HTML) until the
// fragment says data-final, the page is left, or the poll budget runs out. No library, no reload.
(function () {
  var MAX_POLLS = 3600, INTERVAL_MS = 1000;
  document.querySelectorAll("[data-live]").forEach(function (el) {
    var n = 0, last = null;
    function tick() {
      if (el.hasAttribute("data-final") || ++n > MAX_POLLS) return;
      fetch(el.getAttribute("data-live"), {credentials: "same-origin", headers: {"Accept": "text/html"}})
        .then(function (r) { return r.ok ? r.text().then(function (t) { return [r, t]; }) : Promise.reject(r.status); })
        .then(function (rt) {
          if (rt[1] !== last) { el.innerHTML = rt[1]; last = rt[1]; }  // unchanged: no screen-reader chatter
          if (rt[0].headers.get("X-Live-Final") === "1") el.setAttribute("data-final", "1");
          el.setAttribute("data-polls", String(n));
        })
        .catch(function () {})  // offline or logged out: try again next tick
        .finally(function () { setTimeout(tick, INTERVAL_MS); });
    }
    setTimeout(tick, INTERVAL_MS);
  });
})();
