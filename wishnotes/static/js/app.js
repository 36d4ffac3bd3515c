/* Wishnotes: small enhancements. Every core flow works without this file.
   - quick exit: the Exit button and Shift pressed three times replace this page with a neutral site
   - notes blurred until tapped, and blurred again when the page is hidden
   - idle lock: when the key session would have timed out, go to the unlock page
   - Share (or Copy) for the invite link; Print for the recovery kit; the browser's time zone
     offered in forms; focus the first field with an error; the service worker

   Loaded in <head> without defer: it marks <html class="js"> before the first paint, so notes are
   blurred from the start, and only when this script really runs (otherwise they stay readable). */
(function () {
  "use strict";

  var root = document.documentElement;
  root.classList.add("js");

  var NOTE = ".note-body:not(textarea):not(input):not(form)";
  var exitLink = null;
  var idle = null;

  function meta(name) {
    return document.querySelector('meta[name="' + name + '"]');
  }

  // The words this script writes come from the page, in its language (a JSON block the server
  // renders into a <meta>); English stays as the fallback. Read once, when first needed.
  var texts = null;
  function t(key, fallback) {
    if (texts === null) {
      texts = {};
      var block = meta("wn-texts");
      try { if (block) texts = JSON.parse(block.content) || {}; } catch (e) { texts = {}; }
    }
    return typeof texts[key] === "string" && texts[key] ? texts[key] : fallback;
  }

  /* --- quick exit ----------------------------------------------------------------------- */

  function quickExit(event) {
    if (event) event.preventDefault();
    exitLink = exitLink || document.getElementById("quick-exit");
    if (!exitLink) return;
    root.classList.add("leaving");
    veilAll();
    // replace(): the page leaves the history, so Back does not bring it back.
    window.location.replace(exitLink.href);
  }

  // Shift pressed on its own three times in a row; any other key in between starts over, so
  // typing capital letters never triggers it. Listening from the start: it works while loading.
  var shifts = [];
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Shift") { shifts = []; return; }
    if (event.repeat) return;
    var now = Date.now();
    shifts = shifts.filter(function (t) { return now - t < 2000; });
    shifts.push(now);
    if (shifts.length >= 3) quickExit();
  }, true);

  /* --- notes blurred until tapped ----------------------------------------------------- */

  function setButton(button, shown) {
    button.textContent = shown ? t("hide", "Hide") : button.getAttribute("data-label") || t("show_note", "Show note");
    button.setAttribute("aria-expanded", shown ? "true" : "false");
  }

  function veilAll() {
    if (!root.classList.contains("blur-notes")) return;
    document.querySelectorAll(NOTE).forEach(function (note) {
      note.classList.remove("shown");
      var button = note.previousElementSibling;
      if (button && button.classList.contains("unveil")) setButton(button, false);
    });
  }

  function setUpVeils() {
    if (!root.classList.contains("blur-notes")) return;
    document.querySelectorAll(NOTE).forEach(function (note, index) {
      if (!note.id) note.id = "note-body-" + index;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "unveil secondary small";
      if (note.hasAttribute("data-show")) button.setAttribute("data-label", note.getAttribute("data-show"));
      button.setAttribute("aria-controls", note.id);
      setButton(button, note.classList.contains("shown"));
      var toggle = function () { setButton(button, note.classList.toggle("shown")); };
      button.addEventListener("click", toggle);
      note.addEventListener("click", function () {
        if (!note.classList.contains("shown")) toggle();
      });
      note.parentNode.insertBefore(button, note);
    });
  }

  /* --- idle lock ------------------------------------------------------------------------ */

  var deadline = 0;
  var timer = null;
  var lastPing = Date.now();

  function lock() {
    veilAll();
    var here = window.location.pathname + window.location.search;
    window.location.replace(
      idle.getAttribute("data-unlock") + "?why=idle&next=" + encodeURIComponent(here)
    );
  }

  function arm() {
    clearTimeout(timer);
    timer = setTimeout(check, Math.max(0, deadline - Date.now()));
  }

  function update(response) {
    var type = response.headers.get("Content-Type") || "";
    if (!response.ok || type.indexOf("application/json") !== 0) throw new Error("no status");
    return response.json().then(function (data) {
      if (data.seconds_left === null || data.seconds_left <= 0) return false;
      deadline = Date.now() + data.seconds_left * 1000;
      arm();
      return true;
    });
  }

  function check() {
    // Another tab may have kept the session alive; ask before locking.
    fetch(idle.getAttribute("data-check"), { credentials: "same-origin", cache: "no-store" })
      .then(update)
      .then(function (open) { if (!open) lock(); })
      .catch(function () { if (Date.now() >= deadline) lock(); else arm(); });
  }

  // Typing, tapping or scrolling in this page is activity: tell the server, at most once a minute.
  function stillHere() {
    var csrf = meta("csrf-token");
    if (Date.now() - lastPing < 60000 || Date.now() >= deadline || !csrf) return;
    lastPing = Date.now();
    fetch(idle.getAttribute("data-check"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf.content },
    }).then(update).catch(function () { /* the next check decides */ });
  }

  function setUpIdleLock() {
    idle = meta("wn-idle-seconds");
    // The unlock page itself never locks (the session there is already closed).
    if (!idle || window.location.pathname === idle.getAttribute("data-unlock")) {
      idle = null;
      return;
    }
    deadline = Date.now() + parseInt(idle.content, 10) * 1000;
    ["keydown", "pointerdown", "input", "scroll"].forEach(function (name) {
      window.addEventListener(name, stillHere, { passive: true, capture: true });
    });
    arm();
  }

  // Page hidden: blur the notes again. Back in view: catch up with a timer that slept.
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") veilAll();
    else if (idle && Date.now() >= deadline) check();
  });

  /* --- share or copy a link (the invite) with one tap ---------------------------------- */

  function setUpCopy() {
    if (!navigator.share && !navigator.clipboard) return;
    document.querySelectorAll("input.copy").forEach(function (input) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "secondary small copy-button";
      var said = document.createElement("span");
      said.className = "hint";
      said.setAttribute("role", "status");
      var copy = function () {
        if (!navigator.clipboard) { input.select(); return; }
        navigator.clipboard.writeText(input.value).then(
          function () { said.textContent = t("copied", "Copied."); },
          function () { input.select(); said.textContent = t("select_to_copy", "Select the text to copy it."); }
        );
      };
      if (navigator.share) {
        // The phone's own share sheet (messages, mail…); the title stays neutral.
        button.textContent = t("share", "Share");
        button.addEventListener("click", function () {
          navigator.share({ title: document.title, url: input.value }).catch(function (error) {
            if (!error || error.name !== "AbortError") copy();
          });
        });
      } else {
        button.textContent = t("copy", "Copy");
        button.addEventListener("click", copy);
      }
      input.insertAdjacentElement("afterend", said);
      input.insertAdjacentElement("afterend", button);
    });
  }

  /* --- print (the recovery kit) --------------------------------------------------------- */

  function setUpPrint() {
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { window.print(); });
    });
  }

  /* --- the browser's time zone, for forms that offer it ---------------------------------- */

  // Fills hidden fields named "browser_timezone" (never required: without the script the server
  // keeps what it has), and offers the zone in time zone menus that ask for it.
  function setUpTimeZone() {
    var zone = "";
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return; }
    if (!zone) return;
    document.querySelectorAll('input[name="browser_timezone"]').forEach(function (input) {
      input.value = zone;
    });
    document.querySelectorAll("select[data-offer-browser-zone]").forEach(function (select) {
      var option = [].filter.call(select.options, function (o) { return o.value === zone; })[0];
      if (!option) {
        option = document.createElement("option");
        option.value = zone;
        option.textContent = zone.replace(/_/g, " ");
        select.insertBefore(option, select.firstChild);
      }
      // An option without a value attribute submits its text: pin the value before relabelling.
      option.value = zone;
      option.textContent = zone.replace(/_/g, " ") + " " + t("this_device", "(this device)");
      if (select.getAttribute("data-offer-browser-zone") === "prefer") select.value = zone;
    });
  }

  /* --- once the page is parsed ---------------------------------------------------------- */

  function ready() {
    exitLink = document.getElementById("quick-exit");
    if (exitLink) exitLink.addEventListener("click", quickExit);
    setUpVeils();
    setUpIdleLock();
    setUpCopy();
    setUpPrint();
    setUpTimeZone();
    // After a failed submit, start where the problem is (the message is also announced).
    var invalid = document.querySelector('[aria-invalid="true"]');
    if (invalid && !document.querySelector("[autofocus]")) invalid.focus();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }

  if ("serviceWorker" in navigator && window.isSecureContext) {
    // The offline page it keeps is in this page's language (English needs no parameter).
    var lang = root.getAttribute("lang");
    var worker = "/sw.js" + (lang && lang !== "en" ? "?lang=" + encodeURIComponent(lang) : "");
    navigator.serviceWorker.register(worker).catch(function () { /* optional */ });
  }
})();
