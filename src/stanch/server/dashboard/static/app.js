/* Stanch dashboard: forms without reloads, and live regions kept current.
 *
 * Forms marked data-enhance are sent with fetch (the CSRF field travels with them) and the
 * answer is announced in the #status live region. Every 0.8 s the page asks /live for the
 * dashboard's version; when it moved, the page fetches itself again and swaps each region
 * marked data-live, keeping focus, typed text and the charts inside (data-keep).
 * Without JavaScript every form still works: the server answers with a redirect.
 */
(function () {
  "use strict";

  var POLL_MS = 800;  // a change shows within a poll and a fetch: well under 2 s
  var version = document.body.dataset.version || "";
  var refreshing = false;
  var pendingRefresh = false;
  var served = {};  // region id -> the markup the server last sent for it
  var status = document.getElementById("status");
  var indicator = document.getElementById("live-state");

  function say(message, isError) {
    if (!status) return;
    status.textContent = message || "";
    status.classList.toggle("empty", !message);
    status.classList.toggle("error", !!isError);
  }

  function toLogin() {
    location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
  }

  // -- forms ---------------------------------------------------------------------------------

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-enhance")) return;
    event.preventDefault();
    if (form.classList.contains("busy")) return;
    var body = new URLSearchParams(new FormData(form, event.submitter || undefined));
    form.classList.add("busy");
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    fetch(form.action, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (response) {
      if (response.status === 401) { toLogin(); return null; }
      return response.json().catch(function () {
        return { ok: false, message: "Unexpected answer (" + response.status + ")" };
      });
    }).then(function (answer) {
      if (!answer) return;
      say(answer.message, !answer.ok);
      if (answer.ok && form.hasAttribute("data-reset")) form.reset();
      if (answer.ok) return refresh();
    }).catch(function (error) {
      say("The server could not be reached: " + error.message, true);
    }).finally(function () {
      form.classList.remove("busy");
      buttons.forEach(function (b) { b.disabled = false; });
    });
  });

  // -- live regions --------------------------------------------------------------------------

  function typing(region) {
    var active = document.activeElement;
    return active && region.contains(active) &&
      (active.tagName === "TEXTAREA" || active.tagName === "SELECT" ||
       (active.tagName === "INPUT" && active.type !== "hidden" && active.type !== "submit"));
  }

  function swap(doc) {
    var active = document.activeElement;
    var activeId = active && active.id;
    var activeRegion = active && active.closest ? active.closest("[data-live]") : null;
    var skipped = false;
    document.querySelectorAll("[data-live]").forEach(function (region) {
      var fresh = doc.getElementById(region.id);
      if (!fresh) return;
      if (typing(region)) { skipped = true; return; }
      var html = fresh.outerHTML;
      if (served[region.id] === html) return;  // nothing new from the server
      served[region.id] = html;
      // keep what people typed (value differs from what the server rendered)
      region.querySelectorAll("input[id], textarea[id]").forEach(function (input) {
        var twin = fresh.querySelector("#" + CSS.escape(input.id));
        if (twin && input.value !== input.defaultValue) twin.value = input.value;
      });
      // keep live chart elements: move the drawn node into the new markup
      region.querySelectorAll("[data-keep][id]").forEach(function (kept) {
        var twin = fresh.querySelector("#" + CSS.escape(kept.id));
        if (twin) twin.replaceWith(kept);
      });
      region.replaceWith(document.adoptNode(fresh));
    });
    if (activeId && !document.getElementById(activeId)) {
      // the focused control went away (an approved action has no Approve button):
      // focus its region so keyboard users keep their place
      var home = activeRegion && document.getElementById(activeRegion.id);
      if (home) home.focus({ preventScroll: true });
    } else if (activeId && document.activeElement === document.body) {
      var again = document.getElementById(activeId);
      if (again) again.focus({ preventScroll: true });
    }
    return skipped;
  }

  function refresh() {
    if (refreshing) { pendingRefresh = true; return Promise.resolve(); }
    refreshing = true;
    return fetch(location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.redirected && /\/login/.test(response.url)) { toLogin(); return null; }
        return response.text();
      })
      .then(function (html) {
        if (html === null) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var skipped = swap(doc);
        version = skipped ? "" : (doc.body.dataset.version || version);
        var footerTime = doc.querySelector(".foot time");
        var mine = document.querySelector(".foot time");
        if (footerTime && mine) mine.replaceWith(document.importNode(footerTime, true));
        document.dispatchEvent(new CustomEvent("stanch:refreshed"));
      })
      .finally(function () {
        refreshing = false;
        if (pendingRefresh) { pendingRefresh = false; refresh(); }
      });
  }

  function poll() {
    fetch("/live", { credentials: "same-origin", cache: "no-store", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (response.status === 401) { toLogin(); return null; }
        return response.json();
      })
      .then(function (answer) {
        if (indicator) { indicator.textContent = "live"; indicator.classList.remove("stale"); }
        if (answer && answer.version !== version) return refresh();
      })
      .catch(function () {
        if (indicator) { indicator.textContent = "reconnecting…"; indicator.classList.add("stale"); }
      })
      .finally(function () { window.setTimeout(poll, POLL_MS); });
  }

  window.setTimeout(poll, POLL_MS);
})();
