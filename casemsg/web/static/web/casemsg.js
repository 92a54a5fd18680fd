// The pages' own behaviour, from a file: the Content-Security-Policy (casemsg.web.csp) runs no inline script
// and no on…= handler attribute.
// - A form with data-confirm="question" asks it first, and is not sent unless the person agrees.
// - The phone simulator keeps the newest message in view, on load and after every htmx swap.
(function () {
  "use strict";
  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      var question = form && form.getAttribute ? form.getAttribute("data-confirm") : null;
      if (question && !window.confirm(question)) {
        event.preventDefault();
        event.stopImmediatePropagation();
      }
    },
    true
  );
  function scrollConversations() {
    document.querySelectorAll(".conversation").forEach(function (c) { c.scrollTop = c.scrollHeight; });
  }
  document.addEventListener("DOMContentLoaded", scrollConversations);
  document.addEventListener("htmx:afterSettle", scrollConversations);
})();
