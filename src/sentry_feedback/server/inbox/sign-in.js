/* The sign-in page: say when the token was refused, and come back to the same view after signing in. */
(function () {
  "use strict";

  var params = new URLSearchParams(window.location.search);
  if (params.get("sign-in") === "failed") {
    document.getElementById("sign-in-failed").hidden = false;
  }
  // Come back to the bookmarked view (its query string) once signed in; never to the token or the failure.
  params.delete("sign-in");
  params.delete("token");
  var rest = params.toString();
  var next = window.location.pathname + (rest ? "?" + rest : "");
  if (next.charAt(0) === "/" && next.charAt(1) !== "/" && next.charAt(1) !== "\\") {
    document.getElementById("next").value = next;
  }
  var token = document.getElementById("token");
  token.focus();
})();
