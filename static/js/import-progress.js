// Sizes the Bootstrap progress bars of the import page from their data-progress attribute
// (a CSP without 'unsafe-inline' forbids style="width: …" in the markup), also after htmx
// swaps in a fresh bar while polling.
(function () {
  "use strict";
  function paint() {
    document.querySelectorAll(".progress-bar[data-progress]").forEach(function (bar) {
      var value = parseInt(bar.getAttribute("data-progress"), 10) || 0;
      bar.style.width = Math.max(0, Math.min(100, value)) + "%";
    });
  }
  document.addEventListener("DOMContentLoaded", paint);
  document.addEventListener("htmx:afterSettle", paint);
})();
