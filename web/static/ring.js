// Ring: while a call rings (state "incoming") a ringtone plays, made with
// Web Audio (no sound file), the tab title flashes, and a page in the
// background shows a system notification if the user allowed them. It all
// stops as soon as the call leaves "incoming": accepted, declined,
// cancelled or timed out. state.ring is 'on' or 'off', for tests.

import { t } from './i18n.js';

/** @type {AudioContext|null} */
let ctx = null;
let nodes = null, flash = 0, note = null, title = '', text = '';

/**
 * ring follows the call state: call after every render.
 * @param {any} s the app state
 */
export function ring(s) {
  const c = s.call;
  const want = c.state === 'incoming';
  if (want === !!nodes) {
    if (title) document.title = title; // render just set its own
    return;
  }
  if (want) start(t(c.kind === 'text' ? 'call.incoming' : 'call.incoming.' + c.kind, c.peer));
  else stop();
  s.ring = nodes ? 'on' : 'off';
}

/** @param {string} what */
function start(what) {
  text = what;
  try {
    ctx = ctx || new AudioContext();
    ctx.resume().catch(() => {});
    // Two tones (440 + 480 Hz, the North American ring), 1 s on, 2 s off.
    const g = ctx.createGain();
    g.gain.value = 0;
    g.connect(ctx.destination);
    const osc = [440, 480].map((f) => {
      const o = /** @type {AudioContext} */ (ctx).createOscillator();
      o.frequency.value = f;
      o.connect(g);
      o.start();
      return o;
    });
    const now = ctx.currentTime;
    for (let i = 0; i < 20; i++) { // a minute of cadence; calls stop ringing sooner
      g.gain.setValueAtTime(0.08, now + i * 3);
      g.gain.setValueAtTime(0, now + i * 3 + 1);
    }
    nodes = { g, osc };
  } catch {
    nodes = { g: null, osc: [] }; // no Web Audio: the title and notification still work
  }
  let on = false;
  const blink = () => {
    on = !on;
    document.title = title = (on ? '🔔 ' : '') + text + ' · p2pchat';
  };
  blink();
  flash = setInterval(blink, 1000);
  notify();
}

// notify shows the ringing call as a system notification, if the page is
// hidden (now, or later while it rings) and the user allowed them.
function notify() {
  if (!nodes || note || !document.hidden || !('Notification' in window) || Notification.permission !== 'granted') return;
  try {
    note = new Notification(text, { tag: 'p2pchat-call', requireInteraction: true });
    note.onclick = () => { focus(); if (note) note.close(); };
  } catch { note = null; }
}
document.addEventListener('visibilitychange', notify);

function stop() {
  for (const o of nodes.osc) { o.stop(); o.disconnect(); }
  if (nodes.g) nodes.g.disconnect();
  nodes = null;
  clearInterval(flash);
  document.title = 'p2pchat';
  title = '';
  if (note) note.close();
  note = null;
}

/** askNotify asks once, on a user's click, to show calls as notifications. */
export function askNotify() {
  if ('Notification' in window && Notification.permission === 'default' && isSecureContext) {
    Notification.requestPermission().catch(() => {});
  }
}
