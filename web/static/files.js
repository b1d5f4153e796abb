// Files: transfers on their own pre-negotiated data channel ("files", id 1),
// so chat never waits behind a file. JSON control messages, binary chunks
// (u32 transfer, f64 offset, bytes); the protocol, the hash (SHA-256 of the
// SHA-256s of 1 MiB pieces) and where bytes go: docs/client.md#files.

import { sha256js } from './safety.js';
import { newId } from './chat.js';

const piece = 1 << 20;
const hdr = 12;
// Send-buffer high-water mark (Chrome kills a channel at 16 MiB queued),
// and unacknowledged bytes in flight, which bound the receiver's memory.
const high = 8 << 20, low = 2 << 20, inFlight = 16 << 20;
/** receivers without a disk sink hold the file in memory up to this */
export const memLimit = 256 << 20;
const maxOffers = 50;
/** transfer states that are over */
export const final = ['done', 'declined', 'cancelled', 'failed'];

const digest = (b) => crypto.subtle ? crypto.subtle.digest('SHA-256', b) : Promise.resolve(sha256js(new Uint8Array((b))));

async function listHash(list) {
  const all = new Uint8Array(32 * list.length);
  (await Promise.all(list)).forEach((d, i) => all.set(new Uint8Array(d), 32 * i));
  return Array.from(new Uint8Array(await digest(all)), (x) => x.toString(16).padStart(2, '0')).join('');
}

// Control, bidi and other invisible format characters: never shown.
const hidden = /[\0-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g;

/** @param {string} s shown as text, never as markup */
export const showName = (s) => s.replace(hidden, '').slice(0, 255) || 'file';

/** @param {string} s a name safe on any file system */
export function saveName(s) {
  s = showName(s).replace(/[\\/:*?"<>|]/g, '_').replace(/^[\s.]+|[\s.]+$/g, '').slice(0, 200);
  if (/^(con|prn|aux|nul|com\d|lpt\d)(\.|$)/i.test(s)) s = '_' + s;
  return s || 'file';
}

/** disk sink: into the origin private file system by sink.js (no dialog, works headless) */
const canDisk = !!(navigator.storage && navigator.storage.getDirectory && self.Worker) && !location.search.includes('filemem=1');

const opfs = () => navigator.storage.getDirectory();

// Files left by an earlier visit of the page.
if (canDisk) opfs().then(async (d) => {
  for await (const k of d.keys()) if (k.startsWith('p2p-')) d.removeEntry(k).catch(() => {});
}).catch(() => {});

/** x's file in OPFS, by sink.js. @param {any} x */
async function diskSink(x) {
  const name = 'p2p-' + x.id, wk = new Worker('sink.js'), q = [];
  // Answers come in order: '' or an error.
  const call = (m, t = []) => new Promise((ok, no) => { q.push((e) => e ? no(Error(e)) : ok(0)); wk.postMessage(m, t); });
  wk.onmessage = (e) => q.shift()(e.data);
  wk.onerror = (e) => { for (const f of q.splice(0)) f('worker ' + e.message); };
  const gone = () => { wk.terminate(); opfs().then(d => d.removeEntry(name)).catch(() => {}); };
  let open = true;
  await call(['open', name]).catch((e) => { gone(); throw e; });
  return {
    disk: true,
    // b moves to the worker, empty after.
    write: (b, at) => call(['write', b, at], [b.buffer]),
    async close() {
      await call(['close']);
      open = false;
      wk.terminate();
      return new File([await (await (await opfs()).getFileHandle(name)).getFile()], x.save, { type: x.type });
    },
    drop() { open ? call(['close']).finally(gone).catch(() => {}) : gone(); },
  };
}

/** @param {any} x @returns {Promise<any>} write(bytes, at), close() -> File, drop() */
async function openSink(x) {
  if (canDisk) {
    try {
      const est = await navigator.storage.estimate();
      if ((est.quota || 0) - (est.usage || 0) < x.size) throw new Error('space');
      return await diskSink(x);
    } catch (e) {
      if (String(e).includes('space') || x.size > memLimit) throw e;
    }
  }
  if (x.size > memLimit) throw new Error('space');
  let parts = [];
  return {
    disk: false,
    write: async b => { parts.push(new Blob([b])); },
    close: async () => new File(parts, x.save, { type: x.type }),
    drop() { parts = []; },
  };
}

export class Files {
  /** @param {(...a: any[]) => void} log */
  constructor(log) {
    /** @type {any} the UI's onNew(x), onChange(x, progressOnly), onAttach() */
    this.h = { log, onNew() {}, onChange() {}, onAttach() {} };
    /** @type {any[]} every transfer with this peer, shown in order */
    this.list = [];
    /** @type {Map<number, any>} incoming transfers by number */
    this.rx = new Map();
    this.n = 0;
    this.peer = '';
    this.link = null;
    this.fc = null;
    this.waiting = [];
    this.sending = false;
    // Test hooks: flip a bit in the next chunk; hold the sender at an offset.
    this.tamper = false;
    this.hold = Infinity;
  }

  /** attach takes the file channel of a new call; a call with someone else drops the old transfers. @param {any} link */
  attach(link) {
    if (link.o.peer !== this.peer) this.reset();
    this.peer = link.o.peer;
    this.link = link;
    this.pause();
    const fc = this.fc = link.fc;
    fc.binaryType = 'arraybuffer';
    fc.bufferedAmountLowThreshold = low;
    fc.onopen = () => {
      for (const x of this.list) if (x.out && !final.includes(x.status)) this.offer(x);
      this.h.onAttach();
    };
    fc.onclose = () => {
      if (fc !== this.fc) return;
      this.pause();
      this.h.onAttach();
    };
    fc.onbufferedamountlow = () => this.wake();
    fc.onmessage = ev => {
      try {
        if (typeof ev.data === 'string') this.control(JSON.parse(ev.data));
        else this.chunk(ev.data);
      } catch (e) {
        this.h.log('files: bad message', String(e));
      }
    };
    this.h.onAttach();
  }

  /** pause marks transfers on a lost channel as waiting for the next one. */
  pause() {
    for (const x of this.list) if (['sending', 'receiving', 'verifying'].includes(x.status)) this.set(x, 'paused');
  }

  get open() { return !!this.fc && this.fc.readyState === 'open'; }

  reset() {
    for (const x of this.list) this.drop(x);
    this.list.length = 0;
    this.rx.clear();
    this.wake();
  }

  send(m) { if (this.open) this.fc.send(JSON.stringify(m)); }

  wake() { for (const f of this.waiting.splice(0)) f(); }

  // wait: until the next ack, low buffer or state change.
  wait() { return new Promise((r) => this.waiting.push(r)); }
  set(x, s, err = '') {
    x.status = s;
    if (s === 'failed') x.err = err;
    if (s === 'done') x.done = x.size;
    if (final.includes(s)) this.drop(x, s === 'done');
    this.wake();
    this.h.onChange(x);
  }

  drop(x, keep = false) {
    if (x.sink && !keep) x.sink.drop();
    if (!keep && x.url) URL.revokeObjectURL(x.url);
  }

  /** sendFiles offers each file to the peer. @param {Iterable<File>} files */
  sendFiles(files) {
    for (const f of files) {
      const x = { id: newId(), n: ++this.n, out: true, file: f, name: showName(f.name), size: f.size, type: cleanType(f.type),
        status: 'offered', done: 0, off: 0, acked: 0, digests: [] };
      if (f.size && /^image\//.test(x.type)) x.url = URL.createObjectURL(f);
      this.list.push(x);
      this.h.onNew(x);
      this.offer(x);
    }
  }
  offer(x) { this.send({ t: 'offer', id: x.id, n: x.n, name: x.name, size: x.size, type: x.type }); }
  async accept(x) {
    if (x.status !== 'offered' || !this.open) return;
    this.set(x, 'opening');
    try {
      x.sink = await openSink(x);
    } catch (e) {
      this.h.log('files: no room', String(e));
      this.send({ t: 'cancel', id: x.id, why: 'failed' });
      return this.set(x, 'failed', 'err.space');
    }
    if (x.status !== 'opening') return x.sink.drop();
    this.resumeAt(x, 0);
  }
  decline(x) {
    if (x.status !== 'offered') return;
    this.send({ t: 'decline', id: x.id });
    this.set(x, 'declined');
  }
  cancel(x) {
    if (final.includes(x.status)) return;
    this.send({ t: 'cancel', id: x.id });
    x.by = 'me';
    this.set(x, 'cancelled');
  }

  /** @param {any} x @param {string} err i18n key; the peer is told */
  fail(x, err) {
    this.send({ t: 'cancel', id: x.id, why: 'failed' });
    this.set(x, 'failed', err);
  }

  /** resumeAt (receiver) asks for the bytes from off, a piece boundary. @param {any} x @param {number} off */
  resumeAt(x, off) {
    x.got = x.written = off;
    x.digests.length = off / piece;
    x.buf = null;
    x.t0 = performance.now();
    x.d0 = x.done = off;
    x.resumedAt = off;
    this.rx.set(x.n, x);
    this.set(x, 'receiving');
    this.send({ t: 'accept', id: x.id, off });
  }

  control(m) {
    if (!m || typeof m.id !== 'string') throw new Error('no id');
    const x = this.list.find((y) => y.id === m.id), off = m.off, s = x && x.status;
    if (m.t === 'offer') return this.offered(m, x);
    if (!x || final.includes(s)) return;
    if (m.t === 'cancel') {
      x.by = 'peer';
      this.set(x, m.why === 'failed' ? 'failed' : 'cancelled', m.why === 'failed' ? 'err.peer' : '');
    } else if (!x.out) {
      if (m.t === 'end' && s === 'receiving') this.ended(x, m.hash);
    } else if (m.t === 'accept' && ['offered', 'paused'].includes(s)) {
      if (!Number.isSafeInteger(off) || off < 0 || off > x.size || (off % piece && off !== x.size)) return this.fail(x, 'err.proto');
      x.off = x.acked = x.done = x.d0 = off;
      x.digests.length = off / piece;
      x.t0 = performance.now();
      this.set(x, 'sending');
      this.pump();
    } else if (m.t === 'ack' && Number.isSafeInteger(off) && off <= x.off && off >= x.acked) {
      x.acked = x.done = off;
      this.wake();
      this.h.onChange(x, true);
    } else if (m.t === 'done' && ['verifying', 'paused'].includes(s)) {
      this.set(x, m.ok === true ? 'done' : 'failed', 'err.hash');
    } else if (m.t === 'decline' && s === 'offered') this.set(x, 'declined');
  }

  /** @param {any} m @param {any} x the transfer with m.id, if known */
  async offered(m, x) {
    if (x) {
      if (x.out) return;
      // The same offer on a new channel: the sender resumes.
      if (x.n !== m.n && this.rx.get(x.n) === x) this.rx.delete(x.n);
      x.n = m.n;
      if (x.status === 'paused' || x.status === 'receiving') {
        x.status = 'paused';
        await x.chain;
        if (x.status === 'paused') this.resumeAt(x, x.written);
      } else if (x.status === 'done') this.send({ t: 'done', id: x.id, ok: true });
      else if (final.includes(x.status)) this.send({ t: 'cancel', id: x.id, why: x.status === 'failed' ? 'failed' : '' });
      return;
    }
    const ok = Number.isSafeInteger(m.n) && m.n > 0 && m.n < 2 ** 32 && Number.isSafeInteger(m.size) && m.size >= 0 &&
      typeof m.name === 'string' && m.id.length <= 64 && !this.rx.has(m.n);
    if (!ok || this.list.filter((y) => y.status === 'offered').length >= maxOffers) {
      this.h.log('files: offer refused', ok ? 'too many' : 'invalid');
      return this.send({ t: 'decline', id: m.id });
    }
    const name = showName(m.name);
    x = { id: m.id, n: m.n, out: false, name, save: saveName(name), size: m.size, type: cleanType(m.type), status: 'offered',
      done: 0, digests: [], chain: Promise.resolve(), big: !canDisk && m.size > memLimit };
    this.list.push(x);
    this.h.onNew(x);
  }

  chunk(ab) {
    if (ab.byteLength < hdr) throw new Error('short chunk');
    const v = new DataView(ab);
    const x = this.rx.get(v.getUint32(0));
    // Late chunks of a cancelled transfer, or a number never offered.
    if (!x || x.status !== 'receiving') return;
    const off = v.getFloat64(4), len = ab.byteLength - hdr;
    if (!x.buf) x.buf = new Uint8Array(Math.min(piece, x.size - x.got)), x.pos = 0;
    if (off !== x.got || x.pos + len > x.buf.length) return this.fail(x, 'err.proto');
    x.buf.set(new Uint8Array(ab, hdr), x.pos);
    x.pos += len;
    x.got = x.done = off + len;
    if (x.pos === x.buf.length) this.flush(x);
    this.h.onChange(x, true);
  }

  /** flush hashes and writes a full piece, then acknowledges it. @param {any} x */
  flush(x) {
    const b = x.buf;
    x.buf = null;
    x.digests.push(digest(b));
    // Written bytes count even if the channel closed meanwhile: they are
    // where a resume starts.
    x.chain = x.chain.then(async () => {
      if (final.includes(x.status)) return;
      const n = b.length;
      await x.sink.write(b, x.written);
      x.written += n;
      if (x.status === 'receiving') this.send({ t: 'ack', id: x.id, off: x.written });
    }).catch(e => {
      this.h.log('files: write failed', String(e));
      if (!final.includes(x.status)) this.fail(x, 'err.io');
    });
  }
  async ended(x, hash) {
    if (x.got !== x.size || x.buf) return this.fail(x, 'err.proto');
    this.set(x, 'verifying');
    await x.chain;
    x.hash = await listHash(x.digests);
    if (x.status !== 'verifying') return;
    if (x.hash !== hash) {
      this.send({ t: 'done', id: x.id, ok: false });
      return this.set(x, 'failed', 'err.hash');
    }
    x.file = await x.sink.close();
    if (x.file.size !== x.size) return this.fail(x, 'err.io');
    if (/^image\/(png|jpeg|gif|webp|avif|bmp)$/.test(x.type)) x.url = URL.createObjectURL(x.file);
    this.send({ t: 'done', id: x.id, ok: true });
    this.set(x, 'done');
  }

  /** pump sends the accepted files one after the other. */
  async pump() {
    if (this.sending) return;
    this.sending = true;
    try {
      for (let x; this.open && (x = this.list.find((y) => y.out && y.status === 'sending'));) await this.sendFile(x);
    } catch (e) {
      this.h.log('files: send failed', String(e));
    } finally {
      this.sending = false;
    }
  }
  async sendFile(x) {
    const fc = this.fc;
    const live = () => this.fc === fc && fc.readyState === 'open' && x.status === 'sending';
    const mms = this.link.pc.sctp && this.link.pc.sctp.maxMessageSize;
    const size = (mms > hdr ? Math.min(mms, 262144) : 65536) - hdr;
    // A chunk's header overwrites the 12 bytes before it (spare, or the
    // sent chunk's tail): no copy per chunk. digest and send copy at once.
    const read = o => new Blob([new Uint8Array(hdr), x.file.slice(o, Math.min(o + piece, x.size))]).arrayBuffer();
    let off = x.off;
    let next = off < x.size ? read(off) : null;
    while (next) {
      let buf;
      try {
        buf = new Uint8Array(await next);
      } catch (e) {
        this.h.log('files: read failed', String(e));
        return this.fail(x, 'err.io');
      }
      const len = buf.length - hdr, end = off + len, v = new DataView(buf.buffer);
      next = end < x.size ? read(end) : null;
      while (live() && off >= this.hold) await this.wait();
      if (!live()) return;
      x.digests.push(digest(buf.subarray(hdr)));
      for (let i = 0; i < len; i += size) {
        while (live() && fc.bufferedAmount > high) await this.wait();
        if (!live()) return;
        v.setUint32(i, x.n);
        v.setFloat64(i + 4, off + i);
        if (this.tamper) this.tamper = false, buf[i + hdr] ^= 1;
        fc.send(buf.subarray(i, i + hdr + Math.min(size, len - i)));
      }
      x.off = off = end;
      while (live() && off - x.acked > inFlight) await this.wait();
    }
    if (!live()) return;
    x.hash = await listHash(x.digests);
    if (!live()) return;
    this.send({ t: 'end', id: x.id, hash: x.hash });
    this.set(x, 'verifying');
  }
}

// A MIME type from the peer, if it looks like one.
const cleanType = (t) => typeof t === 'string' && /^[\w.+-]{1,40}\/[\w.+-]{1,60}$/.test(t) ? t.toLowerCase() : '';
