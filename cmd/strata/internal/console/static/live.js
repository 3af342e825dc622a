// strata console: live updates. The server sends an event whenever the
// prefix changes ("change"; "instances" for instance records). View pages
// reload; pages with a form being filled in show a banner instead, so no
// typing is lost and a save from a stale page reports a conflict.
(function () {
  "use strict";
  var body = document.body;
  var mode = body.getAttribute("data-live");
  var prefix = body.getAttribute("data-prefix");
  if (!mode || !prefix || !window.EventSource) return;
  var loaded = parseInt(body.getAttribute("data-revision") || "0", 10);
  var instancesPage = location.pathname === "/instances" || location.pathname === "/rollout";
  var dirty = false;
  document.addEventListener("input", function () { dirty = true; });
  var src = new EventSource("/events?p=" + encodeURIComponent(prefix));
  function stale() {
    var b = document.getElementById("stale");
    if (b) b.hidden = false;
    body.classList.add("is-stale");
  }
  function onChange(e) {
    var rev = parseInt(e.data, 10);
    if (!(rev > loaded)) return;
    if (mode === "reload" && !dirty) {
      src.close();
      location.reload();
    } else {
      stale();
    }
  }
  src.addEventListener("change", onChange);
  if (instancesPage) src.addEventListener("instances", onChange);
  var r = document.getElementById("stale-reload");
  if (r) r.addEventListener("click", function (e) { e.preventDefault(); location.reload(); });
})();
