// Signaling: the WebSocket to /ws. Reconnects with jittered backoff, logs
// in again with the same name and session token (the server hands the name
// back at once), and keeps call messages posted while it is down to send
// them after that login, in order. See docs/client.md.

const backoffFirstMs = 250;
const backoffMaxMs = 15000;
// Call messages older than this when the socket is back are not sent: the
// call has moved on (its peer gave up on it after 30 s).
const outboxMaxMs = 20000;
// A page that is back (online, woken) and hears nothing for this long
// after asking treats its socket as dead.
const probeMs = 4000;

export class Signaling {
  /**
   * h: onMessage(m), onStatus(s) ('connecting', 'connected', 'reconnecting';
   * retryAt: when the next attempt starts, 0 if one runs), onLogin(m, again)
   * (again: an automatic re-login), onStale() (call messages could not be
   * sent in time), log.
   * @param {any} h
   */
  constructor(h) {
    this.h = h;
    /** @type {WebSocket|null} */
    this.ws = null;
    // name to claim after every reconnect; joined once it succeeded
    this.name = '';
    this.token = '';
    this.joined = false;
    this.loggedIn = false;
    this.retries = 0;
    this.retryAt = 0;
    this.taken = 0; // "name taken" answers to a re-login (tests read it)
    this.timer = 0;
    this.probe = 0;
    /** @type {{m: any, at: number}[]} */
    this.outbox = [];
    this.status = 'connecting';
    this.url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
    // Back online, or woken up: retry now, and make sure an open socket
    // still works (after a network change it may be dead without knowing).
    const wake = () => {
      if (document.visibilityState === 'hidden') return;
      if (!this.ws) return this.retryNow();
      if (!this.loggedIn || this.probe) return;
      const ws = this.ws;
      this.probe = setTimeout(() => { this.log('socket silent: reconnecting'); this.lost(ws); }, probeMs);
      this.send({ type: 'ice' });
    };
    addEventListener('online', wake);
    document.addEventListener('visibilitychange', wake);
  }

  /** @param {...any} a */
  log(...a) { this.h.log(...a); }

  /** connect opens the socket; on close it schedules another attempt. */
  connect() {
    clearTimeout(this.timer);
    this.retryAt = 0;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    this.h.onStatus(this.status);
    ws.onmessage = (ev) => {
      clearTimeout(this.probe);
      this.probe = 0;
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      if (!m || typeof m.type !== 'string') return;
      if (m.type === 'hello') {
        this.setStatus('connected');
        if (this.name) this.sendLogin();
      } else if (m.type === 'login') {
        const again = this.joined;
        if (m.success) {
          this.retries = 0;
          this.joined = this.loggedIn = true;
          this.token = typeof m.token === 'string' ? m.token : '';
          this.flush();
        }
        this.h.onLogin(m, again);
        if (!m.success && again && m.code === 'name-taken') {
          // A server without sessions may still hold the old connection.
          this.taken++;
          setTimeout(() => { if (this.ws === ws) this.sendLogin(); }, 1000);
        }
      }
      this.h.onMessage(m);
    };
    ws.onclose = () => this.lost(ws);
  }

  /** lost forgets ws (closed, or silent) and schedules the next attempt. @param {WebSocket} ws */
  lost(ws) {
    if (this.ws !== ws) return;
    ws.onclose = ws.onmessage = null;
    ws.close();
    clearTimeout(this.probe);
    this.probe = 0;
    this.ws = null;
    this.loggedIn = false;
    const base = Math.min(backoffMaxMs, backoffFirstMs * 2 ** this.retries++);
    const ms = base / 2 + Math.random() * base / 2;
    this.retryAt = Date.now() + ms;
    this.timer = setTimeout(() => this.connect(), ms);
    this.status = this.joined ? 'reconnecting' : 'connecting';
    this.h.onStatus(this.status);
  }

  /** retryNow skips the wait for the next attempt. */
  retryNow() {
    if (!this.ws && this.retryAt) this.connect();
  }

  /** @param {string} s */
  setStatus(s) {
    if (s === this.status) return;
    this.status = s;
    this.h.onStatus(s);
  }

  /** @param {string} name claimed now or once connected */
  login(name) {
    this.name = name;
    if (this.status === 'connected') this.sendLogin();
  }

  sendLogin() {
    // presence (ext): the server then sends who is online; token (ext):
    // our name back even if the server still holds our old connection.
    this.send({ type: 'login', name: this.name, presence: true, ...(this.token && { token: this.token }) });
  }

  /**
   * send writes m if connected, else drops it and returns false.
   * @param {any} m
   */
  send(m) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(m));
    return true;
  }

  /**
   * post sends a call message now, or after the next login. A newer offer
   * or answer replaces the queued description and candidates of the same
   * peer: they belong to a negotiation that is over.
   * @param {any} m
   */
  post(m) {
    if (this.loggedIn && this.send(m)) return;
    if (m.type === 'offer' || m.type === 'answer') {
      this.outbox = this.outbox.filter((e) => e.m.name !== m.name || e.m.type === 'leave');
    }
    if (this.outbox.length < 500) this.outbox.push({ m, at: Date.now() });
    else this.full = 1;
  }

  flush() {
    const now = Date.now();
    let stale = this.full || 0;
    this.full = 0;
    for (const { m, at } of this.outbox.splice(0)) {
      // A leave is always worth sending: it ends the call on the other side.
      if (m.type === 'leave' || now - at < outboxMaxMs) this.send(m);
      else stale++;
    }
    if (stale) {
      this.log('dropped', stale, 'stale call messages');
      this.h.onStale();
    }
  }

  get online() { return this.loggedIn; }
}
