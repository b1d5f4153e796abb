// Chat: JSON on the data channel, browser to browser:
// {t:'msg',id,text,ts}, {t:'ack',id} (receipt), {t:'bye',reason} (leaving;
// direct, so the reason arrives even if the channel closes before the leave).

export const maxText = 4000;

/** newId: crypto.randomUUID needs a secure context, this does not. */
export function newId() {
  const b = crypto.getRandomValues(new Uint8Array(9));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export class Chat {
  /** @param {any} h send(m), onMessage(m), onAck(id), onBye(reason) */
  constructor(h) { this.h = h; }

  /**
   * post sends text; null if empty or the channel is closed.
   * @param {string} text
   * @param {string} me
   */
  post(text, me) {
    text = text.replace(/\s+$/, '');
    if (!text.trim()) return null;
    text = text.slice(0, maxText);
    const m = { id: newId(), mine: true, from: me, text, ts: Date.now(), acked: false };
    if (!this.h.send({ t: 'msg', id: m.id, text, ts: m.ts })) return null;
    this.h.onMessage(m);
    return m;
  }

  /**
   * @param {any} m from the channel
   * @param {string} peer
   */
  handle(m, peer) {
    if (m.t === 'msg' && typeof m.id === 'string' && typeof m.text === 'string') {
      this.h.send({ t: 'ack', id: m.id });
      this.h.onMessage({ id: m.id.slice(0, 64), mine: false, from: peer, text: m.text.slice(0, maxText), ts: Date.now(), acked: true });
    } else if (m.t === 'ack' && typeof m.id === 'string') {
      this.h.onAck(m.id);
    } else if (m.t === 'bye') {
      this.h.onBye(typeof m.reason === 'string' ? m.reason : '');
    }
  }

  /** @param {string} reason */
  bye(reason) { this.h.send({ t: 'bye', reason }); }
}
