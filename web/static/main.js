// main: the state (window.state, for tests) and the call state machine
// (docs/client.md): idle -> outgoing | incoming -> connecting -> connected
// -> ended. While active, other callers get leave "busy".

import { Signaling } from './signaling.js';
import { PeerLink } from './call.js';
import { Chat } from './chat.js';
import { els, render as renderUI, addMessage, markDelivered, clearLog, activeStates } from './ui.js';
import { pickLanguage, setLanguage, lang } from './i18n.js';
import { Files } from './files.js';
import { initFiles } from './filesui.js';
import * as media from './media.js';
import { ring, askNotify } from './ring.js';
import { init as initControls, renderAv } from './controls.js';

const params = new URLSearchParams(location.search);
// Unanswered calls end after this on both sides; ?ring=N (s) is for tests.
const ringMs = (Number(params.get('ring')) || 30) * 1000;
// ?relay=1 forces every call through the TURN relay, for tests of the relay.
// It counts only if the server's hello allows it (-allow-relay-only-test).
const relayParam = params.get('relay') === '1';
// A channel closed without "bye" waits this long for the server's leave.
const lostGraceMs = 1500;
const connectMs = 30000;

const state = {
  sig: 'connecting',
  retryAt: 0,
  taken: 0,
  name: '',
  joined: false,
  joining: false,
  loggedIn: false,
  logins: 0,
  /** @type {any} {key, args} */
  loginError: null,
  dialError: null,
  /** @type {string[]} */
  users: [],
  online: 0,
  truncated: false,
  iceServers: [],
  relayOnly: false,
  httpsPort: 0,
  ring: 'off',
  call: newCall('', 'idle'),
  /** @type {any[]} */
  messages: [],
  /** @type {any[]} file transfers with the peer (files.js) */
  files: [],
  /** @type {number[]} ms from Call/Accept click to open channel */
  setupTimes: [],
  /** @type {string[]} */
  log: [],
  /** @type {any} the Signaling, for tests */
  signaling: null,
};
/** @type {any} */ (window).state = state;

function newCall(peer, s) {
  return { peer, state: s, reason: '', open: false, unstable: false, peerSigLost: false, safety: '', path: '', setupMs: 0,
    kind: 'text', av: media.newAv(), peerAv: null, peerHad: null, q: null, videoMs: 0 };
}

function render(s) {
  renderUI(s);
  renderAv(s);
  ring(s);
}
media.init(state, () => render(state));
const refreshDevices = initControls(state);

/** @param {...any} a */
function log(...a) {
  const line = a.map(String).join(' ');
  state.log.push(line);
  if (state.log.length > 200) state.log.shift();
  console.log('[p2pchat]', line);
}

/** @type {PeerLink|null} */
let link = null;
/** @type {any} the ringing offer and its candidates */
let pendingOffer = null;
/** @type {any[]} */
let pendingCands = [];
let ringTimer, lostTimer;
let t0 = 0;
let relogins = 0;

const sig = new Signaling({
  onStatus(s) {
    state.sig = s;
    state.retryAt = sig.retryAt;
    if (s !== 'connected') state.loggedIn = false;
    render(state);
  },
  onLogin(m, again) {
    if (m.success) {
      state.name = typeof m.name === 'string' ? m.name : sig.name;
      state.joined = state.loggedIn = true;
      state.joining = false;
      state.loginError = null;
      state.logins++;
      relogins = 0;
      if (Array.isArray(m.iceServers)) state.iceServers = m.iceServers;
      log('logged in as', state.name, again ? '(again)' : '', m.resumed ? '(resumed)' : '');
      render(state);
      if (!again) els.dial.focus();
      // What went to the old socket may be lost: restart ICE, with the
      // fresh TURN credentials of this login, unless the call is fine. A
      // callee still setting up waits a little: its peer may have gone.
      else if (link && !(link.open && link.healthy)) {
        if (link.open || link.pc.signalingState === 'have-local-offer') link.restart(state.iceServers);
        link.watch(3000);
      }
      return;
    }
    state.taken = sig.taken;
    if (again && m.code === 'name-taken' && ++relogins <= 10) return;
    // Refused, or our name is gone for good: back to the form.
    sig.name = '';
    sig.joined = false;
    state.joined = state.joining = state.loggedIn = false;
    const code = typeof m.code === 'string' ? m.code : '';
    state.loginError = ['name-taken', 'invalid-name', 'already-logged-in'].includes(code)
      ? { key: 'err.' + code, args: [els.name.value.trim()] }
      : { key: 'err.login', args: [String(m.message || code)] };
    render(state);
    els.name.focus();
    els.name.select();
  },
  onMessage,
  onStale() {
    if (!link || !link.open) leave('offline', 'end.sigLost');
  },
  log,
});

state.signaling = sig;

function onMessage(m) {
  const from = typeof m.name === 'string' ? m.name : '';
  const c = state.call;
  switch (m.type) {
    case 'hello':
      state.relayOnly = relayParam && m.testRelay === true;
      state.httpsPort = Number(m.httpsPort) || 0;
    // fall through
    case 'ice':
      if (Array.isArray(m.iceServers)) state.iceServers = m.iceServers;
      for (const f of iceWaiters.splice(0)) f(m.iceServers);
      break;
    case 'presence':
      onPresence(m);
      break;
    case 'offer':
      onOffer(m, from);
      break;
    case 'answer':
      if (from !== c.peer || !link) return;
      if (c.state === 'outgoing') {
        answered();
        render(state);
      }
      link.receive(m);
      break;
    case 'candidate':
      if (from !== c.peer) return;
      if (c.state === 'incoming' || !link) pendingCands.push(m);
      else if (link) link.receive(m);
      break;
    case 'leave':
      onLeave(from, typeof m.reason === 'string' ? m.reason : '');
      break;
    case 'error':
      log('server error', m.code, m.message, from);
      // Our messages found no peer, or no call: it ended while we were away.
      if (['user-not-found', 'not-in-call'].includes(m.code) && from === c.peer && activeStates.includes(c.state) && !(link && link.open)) {
        end(m.code === 'not-in-call' ? 'end.other' : c.state === 'outgoing' ? 'end.not-found' : 'end.offline');
      }
      break;
  }
}

/** @type {Set<string>} */
const online = new Set();

function onPresence(m) {
  if (m.full) online.clear();
  for (const u of (m.full ? m.users : m.joined) || []) online.add(String(u));
  for (const u of m.left || []) online.delete(String(u));
  state.users = [...online].sort((a, b) => a.localeCompare(b));
  state.online = Number(m.online) || online.size;
  state.truncated = !!m.truncated;
  if (state.call.peerSigLost && online.has(state.call.peer)) state.call.peerSigLost = false;
  render(state);
}

function onOffer(m, from) {
  const c = state.call;
  if (!from) return;
  if (activeStates.includes(c.state) && c.peer !== from) {
    log('busy: refusing', from);
    sig.post({ type: 'leave', name: from, reason: 'busy' });
    return;
  }
  if (!activeStates.includes(c.state)) {
    resetCall(from, 'incoming');
    state.call.kind = media.kindOf(m.offer && m.offer.sdp);
    pendingOffer = m;
    pendingCands = [];
    ringTimer = setTimeout(() => end('end.timeout.in'), ringMs);
    render(state);
    els.accept.focus();
    return;
  }
  if (c.state === 'incoming' || (c.state === 'connecting' && !link)) {
    pendingOffer = m; // the caller offered again: the newest offer counts
    pendingCands = [];
    return;
  }
  if (c.state === 'outgoing') {
    // Glare: we rang each other, a yes from both. The impolite side's link
    // ignores this offer. The polite side answers it from a fresh
    // connection: Chromium gathers no candidates after a first offer is
    // rolled back.
    log('glare with', from);
    answered();
    if (polite(from)) connect(from, false);
    render(state);
  }
  if (link) link.receive(m);
}

function onLeave(from, reason) {
  const c = state.call;
  if (from !== c.peer || !activeStates.includes(c.state)) return;
  if (reason === 'offline' && link && link.open) {
    // Only the peer's server link dropped: the direct channel still works.
    // If the peer is really gone, the channel closes.
    c.peerSigLost = true;
    render(state);
    return;
  }
  end(reasonKey(reason, c.state === 'incoming'));
}

/**
 * @param {string} r reason from leave or bye
 * @param {boolean} ringing
 */
function reasonKey(r, ringing) {
  if (r === 'timeout') return ringing ? 'end.timeout.in' : 'end.timeout';
  return ['hangup', 'declined', 'busy', 'offline', 'cancelled', 'failed'].includes(r) ? 'end.' + r : 'end.other';
}

function resetCall(peer, s) {
  teardown();
  state.call = newCall(peer, s);
  state.messages = [];
  state.dialError = null;
  clearLog();
}

// answered moves to "connecting", which must end with an open channel
// within connectMs: without usable candidates ICE may never report failure.
function answered() {
  clearTimeout(ringTimer);
  state.call.state = 'connecting';
  ringTimer = setTimeout(() => leave('failed', 'end.failed'), connectMs);
}

function teardown() {
  clearTimeout(ringTimer);
  clearTimeout(lostTimer);
  if (link) link.close();
  media.stop();
  link = pendingOffer = null;
  pendingCands = [];
}

/** @param {string} key i18n key of the reason */
function end(key) {
  const c = state.call;
  teardown();
  c.state = 'ended';
  c.reason = key;
  c.open = false;
  log('call ended:', key);
  render(state);
  els.close.focus();
}

const chat = new Chat({
  send: (m) => !!link && link.send(m),
  onMessage(m) {
    state.messages.push(m);
    if (state.messages.length > 1000) state.messages.shift();
    addMessage(m);
  },
  onAck(id) {
    const m = state.messages.find((x) => x.id === id && x.mine);
    if (m) m.acked = true;
    markDelivered(id);
  },
  onBye(reason) {
    if (activeStates.includes(state.call.state)) end(reasonKey(reason, false));
  },
});

function connect(peer, initiator) {
  if (link) link.close();
  const l = new PeerLink({
    peer,
    polite: polite(peer),
    initiator,
    iceServers: state.iceServers,
    relayOnly: state.relayOnly,
    signal: (m) => sig.post({ ...m, name: peer }),
    freshIce,
    onOpen() {
      const c = state.call;
      clearTimeout(ringTimer);
      c.open = true;
      c.state = 'connected';
      c.setupMs = Math.round(performance.now() - t0);
      state.setupTimes.push(c.setupMs);
      log('channel open after', c.setupMs, 'ms');
      render(state);
      els.msg.focus({ preventScroll: true }); // a video call keeps its top in view
      showTrust(l);
    },
    onData: (m) => (m.t === 'av' ? media.peer(m) : chat.handle(m, peer)),
    onClose() {
      state.call.open = false;
      render(state);
      clearTimeout(lostTimer);
      lostTimer = setTimeout(() => {
        if (link === l && activeStates.includes(state.call.state)) end('end.lost');
      }, lostGraceMs);
    },
    onHealth(h) {
      const c = state.call;
      if (h === 'failed') return leave('failed', 'end.failed');
      c.unstable = h === 'unstable';
      render(state);
      if (h === 'ok' && c.open) showTrust(l);
    },
    onStable: () => state.call.open && showTrust(l),
    log,
  });
  link = l;
  files.attach(l);
  media.attach(l);
  return l;
}

/** @type {((s: any) => void)[]} */
const iceWaiters = [];
/** freshIce asks the server for new iceServers; null if it cannot answer soon. */
function freshIce() {
  return new Promise((done) => {
    if (!sig.online || !sig.send({ type: 'ice' })) return done(null);
    const t = setTimeout(() => done(null), 3000);
    iceWaiters.push((s) => { clearTimeout(t); done(Array.isArray(s) ? s : null); });
  });
}

// Names are unique, so both sides agree on the roles without talking.
const polite = (/** @type {string} */ peer) => state.name > peer;

let trustRuns = 0;
/** @param {PeerLink} l */
async function showTrust(l) {
  const n = ++trustRuns;
  try {
    const [code, path] = await Promise.all([l.safety(), l.path()]);
    if (link !== l || n !== trustRuns) return;
    // '' mid-negotiation: keep the code; the next stable state recomputes.
    if (code) state.call.safety = code;
    state.call.path = path;
    render(state);
  } catch (e) {
    log('trust info failed', String(e));
  }
}

/** @param {string} peer */
async function call(peer) {
  peer = peer.trim();
  state.dialError = null;
  if (!peer || !state.loggedIn || activeStates.includes(state.call.state)) return;
  if (peer === state.name) {
    state.dialError = { key: 'end.self', args: [] };
    render(state);
    return;
  }
  resetCall(peer, 'outgoing');
  const c = state.call;
  t0 = c.clickAt = performance.now();
  c.kind = els.kind.value;
  render(state);
  if (c.kind !== 'text') {
    // Camera and microphone first, so that the first offer carries them.
    await media.capture(c.kind === 'video');
    refreshDevices();
    if (state.call !== c || !activeStates.includes(c.state)) return;
  }
  if (!link) connect(peer, true); // the data channel triggers negotiationneeded -> offer
  ringTimer = setTimeout(() => {
    sig.post({ type: 'leave', name: peer, reason: 'timeout' });
    end('end.timeout');
  }, ringMs);
  render(state);
  els.cancel.focus();
}

/** @param {boolean} cam accept a video call with the camera on */
async function accept(cam) {
  const c = state.call;
  if (c.state !== 'incoming' || !pendingOffer) return;
  answered();
  t0 = c.clickAt = performance.now();
  if (c.kind !== 'text') {
    render(state);
    // Tracks added before the offer is applied answer it in one round.
    await media.capture(cam && c.kind === 'video');
    refreshDevices();
    if (state.call !== c || c.state !== 'connecting' || link) return;
  }
  const l = connect(c.peer, false);
  l.receive(pendingOffer);
  for (const m of pendingCands) l.receive(m);
  pendingOffer = null;
  pendingCands = [];
  render(state);
  els.hangup.focus();
}

/**
 * leave ends the call, telling the peer why.
 * @param {string} reason
 * @param {string} key
 */
function leave(reason, key) {
  const c = state.call;
  if (!activeStates.includes(c.state)) return;
  chat.bye(reason);
  sig.post({ type: 'leave', name: c.peer, reason });
  end(key);
}

// Wiring.
els.loginForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const name = els.name.value.trim();
  if (!name) {
    state.loginError = { key: 'err.empty', args: [] };
    render(state);
    els.name.focus();
    return;
  }
  state.loginError = null;
  state.joining = true;
  render(state);
  askNotify();
  sig.login(name);
});
els.dialForm.addEventListener('submit', (e) => {
  e.preventDefault();
  call(els.dial.value);
});
els.users.addEventListener('click', (e) => {
  const b = /** @type {HTMLElement} */ (e.target).closest('button.user');
  if (b instanceof HTMLElement && b.dataset.name) call(b.dataset.name);
});
els.accept.addEventListener('click', () => accept(true));
els.acceptNoCam.addEventListener('click', () => accept(false));
els.retry.addEventListener('click', () => sig.retryNow());
// The status line counts down to the next attempt.
setInterval(() => state.retryAt && !sig.ws && render(state), 1000);
els.decline.addEventListener('click', () => leave('declined', 'end.declined.local'));
els.cancel.addEventListener('click', () => leave('cancelled', 'end.cancelled.local'));
els.hangup.addEventListener('click', () => leave('hangup', 'end.hangup.local'));
els.close.addEventListener('click', () => {
  resetCall('', 'idle');
  render(state);
  els.dial.focus();
});
els.composer.addEventListener('submit', (e) => {
  e.preventDefault();
  if (chat.post(els.msg.value, state.name)) els.msg.value = '';
  els.msg.focus();
});
els.msg.addEventListener('keydown', (e) => {
  // Enter sends, Shift+Enter is a new line; not while an IME composes.
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    els.composer.requestSubmit();
  }
});
els.lang.addEventListener('change', () => {
  setLanguage(els.lang.value, true);
  render(state);
});
// Leaving the page ends the call and goes offline. The page may live on in
// the back/forward cache, where an open socket would keep us "online":
// close it; if the page comes back, the reconnect logs in again.
addEventListener('pagehide', () => {
  const s = state.call.state;
  leave(s === 'incoming' ? 'declined' : s === 'outgoing' ? 'cancelled' : 'hangup', '');
  if (sig.ws) sig.ws.close(1000);
});

// TURN credentials expire (-turn-ttl, 1 h by default): fetch fresh ones
// now and then, so a call made hours after login can still use the relay.
setInterval(() => state.loggedIn && sig.send({ type: 'ice' }), 600000);

const files = new Files(log);
state.files = files.list;
/** @type {any} */ (window).__files = files; // for tests
Object.defineProperty(window, '__link', { get: () => link });
initFiles(files, () => state.call.peer);

setLanguage(pickLanguage());
els.lang.value = lang();
render(state);
sig.connect();
els.name.focus();
