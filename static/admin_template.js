// The admin's template page: a preview of the subject and text as the template is written,
// for the chosen record. Text only (textContent): the Preview button shows the HTML.
(function () {
  "use strict";
  var form = document.querySelector("form[method=post]");
  var box = document.getElementById("live-preview");
  if (!form || !box) return;
  var subject = document.getElementById("live-subject");
  var text = document.getElementById("live-text");
  var error = document.getElementById("live-error");
  var timer = null;
  var asked = 0;

  function preview() {
    var mine = ++asked;
    var data = new FormData(form);
    fetch("/admin/templates/preview", { method: "POST", body: data, credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (answer) {
        if (mine !== asked) return; // an older answer, overtaken by a newer question
        box.hidden = false;
        error.textContent = answer.error || "";
        subject.textContent = answer.error ? "" : answer.subject;
        text.textContent = answer.error ? "" : answer.text;
      })
      .catch(function () {
        if (mine === asked) error.textContent = "The preview could not be reached.";
      });
  }

  ["subject", "body_html", "preview_for"].forEach(function (id) {
    var field = document.getElementById(id);
    if (!field) return;
    field.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(preview, 400);
    });
  });
})();
