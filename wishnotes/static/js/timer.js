/* The listening timer: counts down on the page and keeps the screen awake where the browser
   offers the Wake Lock API. Without it (or without this script) the page still says until when.
   Nothing is sent or stored: the time lives in this page only. */
(function () {
  "use strict";
  var face = document.querySelector("[data-timer]");
  if (!face) return;
  var total = parseInt(face.getAttribute("data-timer"), 10) || 0;
  var ends = Date.now() + total * 1000;
  var status = document.querySelector("[data-timer-status]");
  var done = document.querySelector("[data-timer-done]");
  var lock = null;
  // Its words come from the page, in its language (see base.html); English is the fallback.
  var texts = {};
  try {
    texts = JSON.parse(document.querySelector('meta[name="wn-texts"]').content) || {};
  } catch (e) { /* English */ }

  function show(seconds) {
    var m = Math.floor(seconds / 60), s = seconds % 60;
    face.textContent = m + ":" + (s < 10 ? "0" : "") + s;
  }

  function say(text) {
    if (!status) return;
    status.textContent = text;
    status.hidden = !text;
  }

  function awake() {
    if (!("wakeLock" in navigator) || Date.now() >= ends) return;
    navigator.wakeLock.request("screen").then(function (sentinel) {
      lock = sentinel;
      say(texts.screen_stays_on || "The screen stays on until the time is up.");
      lock.addEventListener("release", function () { lock = null; });
    }).catch(function () {
      say("");
    });
  }

  function release() {
    if (lock) lock.release().catch(function () {});
    lock = null;
  }

  function tick() {
    var left = Math.max(0, Math.round((ends - Date.now()) / 1000));
    show(left);
    if (left === 0) {
      clearInterval(timer);
      release();
      say("");
      if (done) done.hidden = false;
    }
  }

  var timer = setInterval(tick, 1000);
  tick();
  awake();
  // A wake lock ends when the page is hidden; ask again when it is back in view.
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && !lock) awake();
  });
})();
