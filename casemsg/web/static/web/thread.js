// A conversation's thread keeps its newest message in view: on load, and after every live update (htmx swaps
// the thread in when a message arrives or changes status).
(function () {
  "use strict";
  function scroll() {
    document.querySelectorAll(".thread").forEach(function (t) { t.scrollTop = t.scrollHeight; });
  }
  document.addEventListener("DOMContentLoaded", scroll);
  document.addEventListener("htmx:afterSettle", scroll);
})();
