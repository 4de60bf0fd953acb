// Live progress of a code upload (/uploads/{id}): polls the progress
// endpoint and updates the bar and figures in place; when the upload ends the
// page reloads to show the report. Without JavaScript the page refreshes
// itself instead (<noscript> meta refresh).
(function () {
  "use strict";
  var live = document.getElementById("upload-live");
  if (!live || live.dataset.active !== "true") {
    return;
  }
  var url = live.dataset.progressUrl;
  var bar = document.getElementById("upload-progress");
  var fields = {
    percent_text: document.getElementById("upload-percent"),
    codes_text: document.getElementById("upload-codes-progress"),
    batches_text: document.getElementById("upload-batches-progress"),
    rate_text: document.getElementById("upload-rate"),
    eta_text: document.getElementById("upload-eta"),
    status_label: document.getElementById("upload-status"),
    status_help: document.getElementById("upload-status-help")
  };
  var failures = 0;

  function show(p) {
    var pct = Math.max(0, Math.min(100, Math.floor(p.percent)));
    if (p.codes_total > 0 && p.codes_done >= p.codes_total) {
      pct = 100;
    }
    if (bar) {
      bar.value = pct;
      bar.textContent = pct + "%";
    }
    Object.keys(fields).forEach(function (k) {
      if (fields[k] && typeof p[k] === "string") {
        fields[k].textContent = p[k];
      }
    });
    if (fields.status_label) {
      fields.status_label.dataset.status = p.status;
    }
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok) {
          throw new Error("HTTP " + r.status);
        }
        return r.json();
      })
      .then(function (p) {
        failures = 0;
        show(p);
        if (!p.active) {
          // Ended (or cancelled, failed): the page shows the report.
          setTimeout(function () { window.location.reload(); }, 600);
          return;
        }
        setTimeout(poll, 1000);
      })
      .catch(function () {
        failures++;
        setTimeout(poll, Math.min(30000, 1000 * Math.pow(2, failures)));
      });
  }

  setTimeout(poll, 500);
})();
