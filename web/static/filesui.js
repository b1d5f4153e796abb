// Files UI: a row in the chat log per transfer (name as text, size, type,
// progress bar, speed, time left, accept/decline/cancel/save), the file
// button, drag and drop onto the call, and paste of images.

import { els } from './ui.js';
import { setText } from './i18n.js';
import { final, memLimit } from './files.js';

// Row elements by transfer.
const rows = new Map();
let files;
/** @type {() => string} */
let peerName;

/** @param {number} n bytes, decimal units */
export function fmtSize(n) {
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) n /= 1000, i++;
  return (i ? n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0) : String(n)) + ' ' + u[i];
}

function el(tag, cls = '') {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  return e;
}

function button(key, fn, cls = '') {
  const b = el('button', cls);
  b.type = 'button';
  setText(b, key);
  b.addEventListener('click', fn);
  return b;
}
function row(x) {
  const li = el('li', 'msg file ' + (x.out ? 'mine' : 'theirs'));
  li.dataset.fid = x.id;
  const meta = el('div', 'meta');
  const from = el('span', 'from');
  if (x.out) setText(from, 'you');
  else from.textContent = peerName();
  meta.append(from);
  const name = el('p', 'fname');
  name.textContent = x.name;
  const info = el('span', 'fsize');
  info.textContent = ' ' + fmtSize(x.size) + (x.type ? ' · ' + x.type : '');
  name.append(info);
  const img = el('img', 'preview');
  img.alt = '';
  const bar = el('progress');
  const stat = el('p', 'fstat');
  const acts = el('div', 'actions');
  const save = el('a', 'save');
  setText(save, 'file.save');
  const r = {
    li, img, bar, stat, save, at: 0, timer: 0,
    accept: button('accept', () => files.accept(x), 'ok'),
    decline: button('decline', () => files.decline(x)),
    cancel: button('cancel', () => files.cancel(x)),
  };
  acts.append(r.accept, r.decline, r.cancel, save);
  li.append(meta, name, img, bar, stat, acts);
  rows.set(x, r);
  return r;
}

/**
 * update shows x; progress-only updates are limited to a few per second.
 * @param {any} x
 * @param {boolean} [progress]
 */
function update(x, progress = false) {
  const r = rows.get(x) || row(x);
  const now = performance.now();
  // Skipped updates leave one for later, so a pause never shows stale bytes.
  if (progress && now - r.at < 150) return r.timer ||= setTimeout(() => (r.timer = 0, update(x)), 150);
  clearTimeout(r.timer);
  r.timer = 0;
  r.at = now;
  const s = x.status, open = files.open;
  r.li.dataset.status = s;
  r.bar.max = x.size || 1;
  r.bar.value = s === 'done' ? r.bar.max : x.done;
  r.bar.hidden = final.includes(s) || s === 'offered';
  const incoming = !x.out && s === 'offered';
  r.accept.hidden = r.decline.hidden = !incoming;
  r.accept.disabled = !open || x.big;
  r.cancel.hidden = incoming || final.includes(s);
  r.save.hidden = !(s === 'done' && x.file && !x.out);
  if (!r.save.hidden && !r.save.href) {
    if (!x.url) x.url = URL.createObjectURL(x.file);
    r.save.href = x.url;
    r.save.download = x.save;
  }
  r.img.hidden = !(x.url && (s === 'done' || x.out) && !['failed', 'cancelled'].includes(s));
  if (!r.img.hidden && !r.img.src) r.img.src = x.url;
  const peer = peerName();
  if (s === 'offered') {
    if (x.out) setText(r.stat, 'file.waiting', peer);
    else if (x.big) setText(r.stat, 'file.tooBig', fmtSize(memLimit));
    else setText(r.stat, 'file.offer', peer);
  } else if (['sending', 'receiving', 'opening'].includes(s)) {
    const secs = (now - x.t0) / 1000, speed = secs > 0.2 ? (x.done - x.d0) / secs : 0;
    const left = speed ? Math.ceil((x.size - x.done) / speed) : 0;
    setText(r.stat, speed ? 'file.progress' : 'file.progress0', fmtSize(x.done), fmtSize(x.size),
      fmtSize(speed) + '/s', left >= 60 ? Math.ceil(left / 60) + ' min' : left + ' s',
      Math.floor(100 * x.done / (x.size || 1)));
  } else if (s === 'failed') setText(r.stat, 'file.' + (x.err || 'err.proto'), peer);
  else if (s === 'cancelled') setText(r.stat, x.by === 'peer' ? 'file.cancelledBy' : 'file.cancelled', peer);
  else setText(r.stat, 'file.' + s, peer, fmtSize(x.size));
  r.stat.classList.toggle('error', s === 'failed');
}

/**
 * initFiles wires the file button, drop and paste to f (a Files).
 * @param {any} f
 * @param {() => string} peer
 */
export function initFiles(f, peer) {
  files = f;
  peerName = peer;
  /** @param {FileList|File[]|null|undefined} list */
  const send = (list) => { if (list && list.length && files.open) files.sendFiles(list); };
  els.attach.addEventListener('click', () => els.fileIn.click());
  els.fileIn.addEventListener('change', () => {
    send(els.fileIn.files);
    els.fileIn.value = '';
  });
  els.call.addEventListener('dragover', e => {
    if (files.open && e.dataTransfer && [...e.dataTransfer.types].includes('Files')) e.preventDefault();
  });
  els.call.addEventListener('drop', e => {
    e.preventDefault();
    send(e.dataTransfer && e.dataTransfer.files);
  });
  els.msg.addEventListener('paste', e => {
    const list = [...(e.clipboardData ? e.clipboardData.files : [])].filter((x) => x.type.startsWith('image/'));
    if (list.length) e.preventDefault(), send(list);
  });
  Object.assign(files.h, {
    onNew(x) {
      update(x);
      els.log.append(rows.get(x).li);
      els.log.scrollTop = els.log.scrollHeight;
    },
    onChange: update,
    onAttach() {
      for (const [x, r] of rows) if (!files.list.includes(x)) r.li.remove(), rows.delete(x);
      // Back in the new call's (emptied) chat log.
      for (const x of files.list) {
        update(x);
        if (!rows.get(x).li.isConnected) els.log.append(rows.get(x).li);
      }
    },
  });
}
