/* A sign-in link may carry the token in its fragment (#token=...), which browsers never send
 * to the server: fill the field from it, then drop it from the address bar. */
(function () {
  "use strict";
  var match = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (!match) return;
  var field = document.getElementById("token");
  if (field) field.value = decodeURIComponent(match[1]);
  history.replaceState(null, "", location.pathname + location.search);
})();
