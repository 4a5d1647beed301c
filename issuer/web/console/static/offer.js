// The offer page: count down to the offer's expiry and ask the server, every
// few seconds, whether the wallet has collected the credential.  Counts from
// the seconds the server gave, not the PC's clock, which may be wrong.
(function () {
  "use strict";
  var box = document.getElementById("offer");
  if (!box) return;
  var stateEl = document.getElementById("offer-state");
  var live = document.getElementById("offer-live");
  var again = document.getElementById("offer-again");
  var leftEl = document.getElementById("offer-left");
  var url = box.getAttribute("data-status-url");
  var pollMs = +box.getAttribute("data-poll-ms") || 2000;
  var deadline = Date.now() + 1000 * (+box.getAttribute("data-remaining") || 0);
  var done = box.getAttribute("data-final") === "true";
  var tick = null, poll = null;

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function finish(state, label) {
    done = true;
    clearInterval(tick);
    clearTimeout(poll);
    stateEl.textContent = label;
    stateEl.className = "offer-state state-" + state;
    // The QR and the code are of no more use: take them off the counter screen.
    if (live) live.hidden = true;
    if (again) again.hidden = false;
  }

  function countdown() {
    var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    if (leftEl) leftEl.textContent = Math.floor(left / 60) + ":" + pad(left % 60);
    if (left === 0) {
      clearInterval(tick);
      ask();  // the server says whether it expired or was collected just in time
    }
  }

  function ask() {
    if (done) return;
    fetch(url, { credentials: "same-origin", cache: "no-store", redirect: "error",
                 headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json().then(function (body) { return [r.status, body]; }); })
      .then(function (res) {
        var status = res[0], body = res[1];
        if (status !== 200) {
          finish("expired", body.error_description || "");
          return;
        }
        if (body.final) { finish(body.state, body.label); return; }
        if (stateEl.textContent !== body.label) {
          stateEl.textContent = body.label;
          stateEl.className = "offer-state state-" + body.state;
        }
        poll = setTimeout(ask, pollMs);
      })
      .catch(function () { poll = setTimeout(ask, pollMs * 3); });  // network hiccup: keep trying
  }

  // The two QRs become tabs, as the WAI-ARIA tabs pattern: one Tab stop, the
  // arrows move between the tabs and show their panel at once.  The server
  // sends both panels shown, so the page still offers both ways without script.
  var tablist = document.getElementById("qr-tabs");
  var tabs = Array.prototype.slice.call(document.querySelectorAll("#qr-tabs [role=tab]"));
  function select(tab, focus) {
    tabs.forEach(function (t) {
      var on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      var panel = document.getElementById(t.getAttribute("aria-controls"));
      if (panel) panel.hidden = !on;
    });
    if (focus) tab.focus();
  }
  tabs.forEach(function (tab, i) {
    tab.addEventListener("click", function () { select(tab, false); });
    tab.addEventListener("keydown", function (e) {
      var to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
      if (to === undefined) return;
      e.preventDefault();
      select(tabs[(to + tabs.length) % tabs.length], true);
    });
  });
  if (tablist && tabs.length) {
    select(tabs[0], false);
    tablist.hidden = false;
  }

  if (!done) {
    tick = setInterval(countdown, 1000);
    countdown();
    poll = setTimeout(ask, pollMs);
  }
})();
