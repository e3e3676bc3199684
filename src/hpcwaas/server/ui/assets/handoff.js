// The token page, reached from the portal's "Log in": hand the token to the portal and go back.
// An external file because the site's Content-Security-Policy forbids inline scripts.
(function () {
  "use strict";
  var marker = document.getElementById("handoff");
  var tokenNode = document.getElementById("token");
  if (!marker || !tokenNode) {
    return;
  }
  var next = marker.getAttribute("data-next") || "";
  // The server only accepts portal paths; check again so this page never leaves the portal.
  if (next.indexOf("/ui/") !== 0) {
    return;
  }
  try {
    window.sessionStorage.setItem("hpcwaas.token", tokenNode.textContent.trim());
  } catch (e) {
    marker.textContent =
      "Your browser refused to keep the token for the portal: copy it from above.";
    return;
  }
  window.location.replace(next);
})();
