// The token page's "Copy token" button and its link to the portal (which takes the token
// along). A file, not an inline handler: the content security policy allows scripts from
// this server only.
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

(function () {
  const link = document.getElementById("portal-link");
  const token = document.getElementById("token");
  if (!link || !token) {
    return;
  }
  link.addEventListener("click", function () {
    try {
      window.sessionStorage.setItem("hpcwaas.token", token.textContent.trim());
    } catch (e) {
      // the portal then asks to log in: nothing is lost
    }
  });
})();
