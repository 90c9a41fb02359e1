// Refreshes the overview's live part in place: fetch the server-rendered fragment and swap it
// in. The page works without this script; it only saves the reader a reload.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.fetch || !window.DOMParser) {
    return;
  }
  var url = live.getAttribute("data-refresh");
  var every = parseInt(live.getAttribute("data-interval"), 10) || 2000;

  function swap(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live-body");
    if (!fresh) {
      throw new Error("no live-body in the answer");
    }
    live.replaceChildren(document.adoptNode(fresh));
    live.removeAttribute("data-stale");
  }

  function refresh() {
    fetch(url, { credentials: "same-origin", redirect: "error", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        swap(html);
        window.setTimeout(refresh, every);
      })
      .catch(function () {
        // Daemon restarting or session expired: say so, and try again less often.
        live.setAttribute("data-stale", "true");
        window.setTimeout(refresh, every * 5);
      });
  }

  window.setTimeout(refresh, every);
})();
