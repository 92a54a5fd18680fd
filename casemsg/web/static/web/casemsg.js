// The pages' own behaviour, from a file: the Content-Security-Policy (casemsg.web.csp) runs no inline script
// and no on…= handler attribute.
// - A form with data-confirm="question" asks it first, and is not sent unless the person agrees.
// - The phone simulator keeps the newest message in view, on load and after every htmx swap.
// - A form's fieldsets with data-shown-for="value" are shown only while its `action` select has that value
//   (the keyword form: each action's parameters). Without script every fieldset shows.
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
  function showChosen(form) {
    var select = form && form.querySelector ? form.querySelector("select[name=action]") : null;
    if (!select) { return; }
    form.querySelectorAll("[data-shown-for]").forEach(function (f) {
      f.hidden = f.getAttribute("data-shown-for") !== select.value;
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target && event.target.name === "action" && event.target.form) { showChosen(event.target.form); }
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form").forEach(showChosen);
  });
  document.addEventListener("DOMContentLoaded", scrollConversations);
  document.addEventListener("htmx:afterSettle", scrollConversations);
})();
