// UI: renders the state object into the DOM; decides nothing. All user and
// peer text goes in via textContent, never as HTML.

import { setText, t, lang } from './i18n.js';

/** @type {any} els.x is the element with id "x" (looked up on use). */
export const els = new Proxy({}, { get: (_, id) => document.getElementById(String(id)) });

/** Calls in these states occupy the user: new callers get "busy". */
export const activeStates = ['outgoing', 'incoming', 'connecting', 'connected'];

/**
 * render updates all but the chat log.
 * @param {any} s
 */
export function render(s) {
  const c = s.call;
  const active = activeStates.includes(c.state);
  const wait = Math.ceil((s.retryAt - Date.now()) / 1000);
  if (wait > 0) setText(els.sig, 'sig.wait', wait);
  else setText(els.sig, 'sig.' + s.sig);
  els.retry.hidden = !s.retryAt;
  if (c.state === 'idle') setText(els.callStatus, 'call.idle');
  else if (c.state === 'ended') setText(els.callStatus, 'call.ended');
  else setText(els.callStatus, c.unstable ? 'call.unstable' : 'call.' + c.state, c.peer);
  els.callStatus.dataset.state = c.state;
  // A ringing call shows in the tab title too, for pages in the background.
  document.title = (c.state === 'incoming' ? t('call.incoming', c.peer) + ' · ' : '') + 'p2pchat';
  els.sig.dataset.state = s.sig;

  els.login.hidden = s.joined;
  els.app.hidden = !s.joined;
  els.join.disabled = s.joining;
  setText(els.join, s.joining ? 'joining' : 'join');
  if (s.loginError) setText(els.nameErr, s.loginError.key, ...s.loginError.args);
  else setText(els.nameErr, '');
  els.name.setAttribute('aria-invalid', String(!!s.loginError));

  setText(els.me, 'signedInAs', s.name);
  if (s.dialError) setText(els.dialErr, s.dialError.key, ...s.dialError.args);
  else setText(els.dialErr, '');
  const canCall = s.loggedIn && !active;
  els.dialBtn.disabled = !canCall;
  renderUsers(s, canCall);

  document.body.classList.toggle('incall', c.state !== 'idle');
  els.idle.hidden = c.state !== 'idle';
  els.callBox.hidden = c.state === 'idle';
  els.callBox.dataset.state = c.state;
  if (c.state === 'ended') setText(els.callTitle, 'call.ended');
  else if (c.state !== 'idle') setText(els.callTitle, 'call.' + c.state, c.peer);
  els.accept.hidden = els.decline.hidden = c.state !== 'incoming';
  els.cancel.hidden = c.state !== 'outgoing';
  els.hangup.hidden = !(c.state === 'connecting' || c.state === 'connected');
  els.close.hidden = c.state !== 'ended';

  els.trust.hidden = c.state !== 'connected' || !(c.safety || c.path);
  if (c.safety) setRaw(els.safety, c.safety);
  else setText(els.safety, 'computing');
  setText(els.path, c.path ? 'path.' + c.path : 'computing');

  if (c.state === 'ended') setText(els.notice, c.reason, c.peer);
  else if (c.peerSigLost) setText(els.notice, 'peerSigLost', c.peer);
  else setText(els.notice, '');

  // The chat shows once the call is answered, and stays (read-only) after.
  els.log.hidden = ['outgoing', 'incoming'].includes(c.state) || (c.state === 'ended' && !s.messages.length);
  els.composer.hidden = els.log.hidden || c.state === 'ended';
  const open = c.state === 'connected' && c.open;
  els.msg.disabled = !open;
  els.send.disabled = els.attach.disabled = !open;
}

/** @param {HTMLElement} el @param {string} text untranslated */
function setRaw(el, text) {
  delete el.dataset.i18n;
  delete el.dataset.args;
  el.textContent = text;
}

/** the last rendered list, to skip needless updates */
let shownUsers = '';

/** rows by name, kept while online: a join must not replace a focused row
 * @type {Map<string, HTMLLIElement>} */
const userRows = new Map();

function renderUsers(s, canCall) {
  const others = s.users.filter(u => u !== s.name);
  setText(els.count, 'onlineCount', Math.max(0, s.online - 1)); // others: the list includes us
  if (s.truncated) setText(els.nobody, 'truncated');
  else if (!others.length) setText(els.nobody, 'nobody');
  else setText(els.nobody, '');
  const key = JSON.stringify([others, canCall, lang()]);
  if (key === shownUsers) return;
  shownUsers = key;
  const on = new Set(others);
  for (const [u, li] of userRows) if (!on.has(u)) li.remove(), userRows.delete(u);
  let at = els.users.firstElementChild;
  for (const u of others) {
    let li = userRows.get(u);
    if (!li) userRows.set(u, li = userRow(u));
    const b = /** @type {HTMLButtonElement} */ (li.firstElementChild);
    b.disabled = !canCall;
    b.setAttribute('aria-label', t('callUser', u));
    setText(/** @type {HTMLElement} */ (b.lastElementChild), 'call');
    if (li === at) at = at.nextElementSibling;
    else els.users.insertBefore(li, at);
  }
}

/** @param {string} u */
function userRow(u) {
  const li = document.createElement('li');
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'user';
  b.dataset.name = u;
  const dot = document.createElement('span');
  dot.className = 'dot';
  dot.setAttribute('aria-hidden', 'true');
  const n = document.createElement('span');
  n.textContent = u;
  const act = document.createElement('span');
  act.className = 'act';
  act.setAttribute('aria-hidden', 'true');
  b.dataset.i18nLabel = 'callUser';
  b.dataset.labelArgs = JSON.stringify([u]);
  b.append(dot, n, act);
  li.append(b);
  return li;
}

/** @type {Map<string, HTMLElement>} receipts of sent messages by id */
const receipts = new Map();

/** clearLog empties the chat pane for a new call. */
export function clearLog() {
  els.log.replaceChildren();
  receipts.clear();
}

/**
 * addMessage appends a message; scrolls if the reader was at the bottom.
 * @param {any} m
 */
export function addMessage(m) {
  const log = els.log;
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  const li = document.createElement('li');
  li.className = 'msg ' + (m.mine ? 'mine' : 'theirs');
  li.dataset.id = m.id;
  const meta = document.createElement('div');
  meta.className = 'meta';
  const from = document.createElement('span');
  from.className = 'from';
  if (m.mine) setText(from, 'you');
  else from.textContent = m.from;
  const time = document.createElement('time');
  time.dateTime = new Date(m.ts).toISOString();
  time.textContent = new Date(m.ts).toLocaleTimeString(lang(), { hour: '2-digit', minute: '2-digit' });
  meta.append(from, ' ', time);
  if (m.mine) {
    const r = document.createElement('span');
    r.className = 'receipt';
    setText(r, 'sending');
    meta.append(' ', r);
    receipts.set(m.id, r);
  }
  const text = document.createElement('p');
  text.className = 'text';
  text.textContent = m.text;
  li.append(meta, text);
  log.append(li);
  if (atBottom || m.mine) log.scrollTop = log.scrollHeight;
}

/** @param {string} id */
export function markDelivered(id) {
  const r = receipts.get(id);
  if (!r) return;
  setText(r, 'delivered');
  r.classList.add('done');
  receipts.delete(id);
}
