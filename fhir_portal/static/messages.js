// Secure messages: only enhances the forms (they work without it).
// A submitted form disables its button so a double click sends once; the server is
// idempotent anyway (the hidden message key), this only saves a round trip.
(function () {
  "use strict";
  document.querySelectorAll("form[data-message-form]").forEach(function (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      if (button) {
        window.setTimeout(function () { button.disabled = true; }, 0);
        button.setAttribute("aria-busy", "true");
      }
    });
    var input = form.querySelector("input[type=file]");
    if (input) {
      input.addEventListener("change", function () {
        var file = input.files && input.files[0];
        var max = 5 * 1024 * 1024;
        input.setCustomValidity(file && file.size > max ? (input.dataset.tooLarge || "The file is larger than 5 MB.") : "");
      });
    }
  });
})();
