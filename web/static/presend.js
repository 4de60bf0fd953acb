// Pre-send token page, progressive enhancement: a live countdown to the
// token's expiry and a copy button. Without this script the page still shows
// the token (selectable) and the time it expires.
(function () {
  "use strict";
  // The form post answers with this page; put its own address in the
  // location bar, so a reload shows the token again without re-posting.
  var result = document.getElementById("presend-result");
  var link = result && result.getAttribute("data-permalink");
  if (link && location.pathname !== link && window.history && history.replaceState) {
    history.replaceState(null, "", link);
  }
  var box = document.getElementById("presend-token-box");
  if (!box) return;
  var token = document.getElementById("presend-token");
  var copy = document.getElementById("copy-token");
  var countdown = document.getElementById("presend-countdown");
  var expired = document.getElementById("presend-expired");
  var wrap = document.getElementById("presend-countdown-wrap");

  // The server says how many seconds are left; count from the page load so
  // a browser clock that is off does not matter.
  var left = parseInt(box.getAttribute("data-expires-in"), 10) || 0;
  var deadline = Date.now() + left * 1000;

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function tick() {
    var s = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    countdown.textContent = Math.floor(s / 60) + ":" + pad(s % 60);
    if (s > 0) return true;
    box.classList.add("expired");
    expired.hidden = false;
    if (wrap) wrap.hidden = true;
    copy.disabled = true;
    token.value = "";
    token.hidden = true;
    return false;
  }

  if (tick()) {
    var timer = setInterval(function () { if (!tick()) clearInterval(timer); }, 250);
  }

  // Copy: the clipboard API where the page may use it, else the selection
  // and execCommand. The label says what happened.
  var label = copy.textContent;
  function done(ok) {
    copy.textContent = copy.getAttribute(ok ? "data-copied-label" : "data-failed-label");
    copy.setAttribute("data-copied", ok ? "true" : "false");
    setTimeout(function () { copy.textContent = label; }, 4000);
  }
  function fallback() {
    token.focus();
    token.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    done(ok);
  }
  copy.hidden = false;
  copy.addEventListener("click", function () {
    var text = token.value;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, fallback);
    } else {
      fallback();
    }
  });
})();
