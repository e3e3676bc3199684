// The token page's "Copy token" button. A file, not an inline handler: the content security
// policy allows scripts from this server only.
"use strict";

(function () {
  const button = document.getElementById("copy");
  const token = document.getElementById("token");
  if (!button || !token) {
    return;
  }
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(token.textContent.trim()).then(
      function () {
        button.textContent = "Copied";
      },
      function () {
        button.textContent = "Copy failed: select the token and copy it";
      },
    );
  });
})();
