// The live duplicate check (查重) answers 429 with a readable message when a user checks too
// often; htmx does not swap error responses by default, so let this one target show it.
(function () {
  "use strict";
  document.addEventListener("htmx:beforeSwap", function (event) {
    var detail = event.detail;
    if (detail.xhr && detail.xhr.status === 429 && detail.target && detail.target.id === "duplicate-check") {
      detail.shouldSwap = true;
      detail.isError = false;
    }
  });
})();
