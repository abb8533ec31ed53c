// The status line in the top bar: a spinner with elapsed seconds while a
// long request runs, the server's reason when one fails, a short note when
// one succeeds.

const $ = (id) => document.getElementById(id);

let timer = null;
let current = null;

function show(kind, text) {
  const el = $("status");
  el.hidden = false;
  el.className = `status ${kind}`;
  $("status-text").textContent = text;
}

function stopTimer() {
  if (timer) clearInterval(timer);
  timer = null;
}

// Shows that work is running; returns a handle to end it with.  onCancel,
// when given, shows a Cancel button.
export function busy(text, onCancel) {
  stopTimer();
  const started = Date.now();
  const handle = { text };
  current = handle;
  const tick = () => {
    const s = Math.round((Date.now() - started) / 1000);
    show("busy", s >= 1 ? `${handle.text} (${s} s)` : `${handle.text}`);
  };
  tick();
  timer = setInterval(tick, 1000);
  const cancel = $("status-cancel");
  cancel.hidden = !onCancel;
  cancel.onclick = onCancel || null;
  $("status-dismiss").hidden = true;
  return handle;
}

function finish(handle, kind, text, sticky) {
  if (handle && handle !== current) return;
  stopTimer();
  current = null;
  $("status-cancel").hidden = true;
  $("status-dismiss").hidden = false;
  show(kind, text);
  if (!sticky) {
    const shown = text;
    setTimeout(() => {
      if (!current && $("status-text").textContent === shown) clear();
    }, 5000);
  }
}

export function done(handle, text) {
  finish(handle, "ok", text, false);
}

// Errors stay until dismissed or replaced, so the reason can be read.
export function fail(handle, text) {
  finish(handle, "error", text, true);
}

export function clear() {
  stopTimer();
  current = null;
  $("status").hidden = true;
}

export function isBusy() {
  return current !== null;
}

export function initStatus() {
  $("status-dismiss").addEventListener("click", clear);
}
