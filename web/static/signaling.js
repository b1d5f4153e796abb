// Signaling: the WebSocket to /ws; reconnects with backoff and logs in
// again with the same name (calls keep running peer to peer meanwhile).

// Short first retry to rejoin a restarted server fast; capped backoff.
const backoffFirstMs = 250;
const backoffMaxMs = 4000;

export class Signaling {
  /**
   * h: onMessage(m), onStatus('connecting'|'connected'|'reconnecting'),
   * onLogin(m, again) (again: an automatic re-login), log.
   * @param {any} h
   */
  constructor(h) {
    this.h = h;
    /** @type {WebSocket|null} */
    this.ws = null;
    // name to claim after every reconnect; joined once it succeeded
    this.name = '';
    this.joined = false;
    this.loggedIn = false;
    this.retries = 0;
    this.status = 'connecting';
    this.url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
  }

  /** connect opens the socket; on close it schedules another attempt. */
  connect() {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      if (!m || typeof m.type !== 'string') return;
      if (m.type === 'hello') {
        this.retries = 0;
        this.setStatus('connected');
        if (this.name) this.sendLogin();
      } else if (m.type === 'login') {
        const again = this.joined;
        if (m.success) this.joined = this.loggedIn = true;
        this.h.onLogin(m, again);
        if (!m.success && again && m.code === 'name-taken') {
          // The old session may not be released yet: try again shortly.
          setTimeout(() => { if (this.ws === ws) this.sendLogin(); }, 1000);
        }
      }
      this.h.onMessage(m);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.loggedIn = false;
      this.setStatus(this.status === 'connecting' && !this.joined ? 'connecting' : 'reconnecting');
      const base = Math.min(backoffMaxMs, backoffFirstMs * 2 ** this.retries++);
      setTimeout(() => this.connect(), base / 2 + Math.random() * base / 2);
    };
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
    // presence (ext): the server then sends who is online.
    this.send({ type: 'login', name: this.name, presence: true });
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

  get online() { return this.loggedIn; }
}
