/* The feedback form of sentry-feedback: sends form[data-sentry-feedback] with fetch and shows the answer.
 *
 * Without this script the browser posts the form and shows the endpoint's answer page. No outside requests,
 * no inline handlers: load it from your own origin (Content-Security-Policy: script-src 'self').
 */
(function () {
  "use strict";

  var MESSAGES = {
    sending: "Sending\u2026",
    sent: "Thank you! Your feedback was sent.",
    reference: "Reference: ",
    failed: "Sorry, your feedback was not sent: ",
    unreachable: "Sorry, the server could not be reached. Please try again.",
    tooMany: "You can attach at most %n files.",
    rateLimited: "You have sent a lot of feedback. Please try again in %n seconds."
  };

  function setStatus(form, kind, text, reference) {
    var status = form.querySelector("[data-sentry-feedback-status]");
    if (!status) {
      return;
    }
    status.setAttribute("data-state", kind);
    status.textContent = text;
    if (reference) {
      status.setAttribute("data-feedback-id", reference);
      status.appendChild(document.createTextNode(" " + MESSAGES.reference));
      var code = document.createElement("code");
      code.textContent = reference;
      status.appendChild(code);
    } else {
      status.removeAttribute("data-feedback-id");
    }
  }

  function failureText(status, data) {
    if (data && data.error === "rate_limited" && data.retry_after) {
      return MESSAGES.rateLimited.replace("%n", String(data.retry_after));
    }
    var detail = data && typeof data.detail === "string" ? data.detail : "HTTP " + status;
    return MESSAGES.failed + detail;
  }

  function focusField(form, name) {
    if (!name) {
      return;
    }
    var field = form.querySelector('[name="' + name.replace(/[^A-Za-z0-9_]/g, "") + '"]');
    if (field && field.type !== "hidden" && typeof field.focus === "function") {
      field.setAttribute("aria-invalid", "true");
      field.focus();
    }
  }

  function clearInvalid(form) {
    var fields = form.querySelectorAll("[aria-invalid]");
    for (var i = 0; i < fields.length; i++) {
      fields[i].removeAttribute("aria-invalid");
    }
  }

  function send(form) {
    var button = form.querySelector('button[type="submit"], input[type="submit"]');
    var files = form.querySelector('input[type="file"]');
    var most = files ? parseInt(files.getAttribute("data-max-files") || "0", 10) : 0;
    clearInvalid(form);
    if (files && most > 0 && files.files && files.files.length > most) {
      setStatus(form, "error", MESSAGES.tooMany.replace("%n", String(most)));
      focusField(form, files.name);
      return;
    }
    if (button) {
      button.disabled = true;
    }
    form.setAttribute("aria-busy", "true");
    setStatus(form, "pending", MESSAGES.sending);
    var done = function () {
      form.removeAttribute("aria-busy");
      if (button) {
        button.disabled = false;
      }
    };
    window
      .fetch(form.action, {
        method: "POST",
        body: new window.FormData(form),
        headers: { Accept: "application/json" },
        credentials: "same-origin"
      })
      .then(function (response) {
        return response
          .json()
          .catch(function () {
            return null;
          })
          .then(function (data) {
            done();
            if (response.ok && data && typeof data.id === "string") {
              setStatus(form, "sent", MESSAGES.sent, data.id);
              var message = form.querySelector('[name="message"]');
              if (message) {
                message.value = "";
              }
              if (files) {
                files.value = "";
              }
              form.dispatchEvent(new window.CustomEvent("sentry-feedback:sent", { detail: data, bubbles: true }));
            } else {
              setStatus(form, "error", failureText(response.status, data));
              focusField(form, data && data.field);
              form.dispatchEvent(new window.CustomEvent("sentry-feedback:error", { detail: data, bubbles: true }));
            }
          });
      })
      .catch(function () {
        done();
        setStatus(form, "error", MESSAGES.unreachable);
      });
  }

  function enhance(form) {
    if (form.getAttribute("data-sentry-feedback-ready") === "1") {
      return;
    }
    form.setAttribute("data-sentry-feedback-ready", "1");
    var url = form.querySelector('input[name="url"]');
    if (url && !url.value) {
      url.value = String(window.location.href).split("#")[0].slice(0, 2048); // a fragment may hold a token
    }
    if (!window.fetch || !window.FormData) {
      return; // the browser posts the form itself
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (form.getAttribute("aria-busy") !== "true") {
        send(form);
      }
    });
  }

  function start() {
    var forms = document.querySelectorAll("form[data-sentry-feedback]");
    for (var i = 0; i < forms.length; i++) {
      enhance(forms[i]);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
