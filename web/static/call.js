// Call: one RTCPeerConnection with perfect negotiation, a pre-negotiated
// chat channel (id 0, so glare never leaves two) and trickle ICE: nothing
// waits for gathering. See docs/client.md.

import { safetyCode } from './safety.js';

// "disconnected" this long triggers an ICE restart; short drops heal alone.
const restartAfterMs = 3000;
// A restart can leave ICE "connected" on a pair that carries nothing
// (Chromium -> Firefox, docs/client.md): a ping on the chat channel, sent
// probeDelayMs after the restart, must come back within probeMs, or ICE
// restarts again, at most probeTries times in a row.
const probeMs = 2500;
const probeDelayMs = 1000;
const probeTries = 3;
// Firefox 153 fails DTLS if it restarts ICE about 100 ms after it answered
// a restart (0 of 2 runs; 300 ms later: 10 of 10): a restart waits until
// the last negotiation is this old.
const settleMs = 1000;

const setup = (d) => (/^a=setup:(\w+)/m.exec(d ? d.sdp : '') || [])[1];

/**
 * keepRole keeps the peer's DTLS role in a renegotiation answer (RFC 8842):
 * Firefox 153, the DTLS server, answers an ICE restart "active", which
 * Chromium refuses ("Failed to set SSL role").
 * @param {RTCPeerConnection} pc
 * @param {any} desc
 */
function keepRole(pc, desc) {
  const r = setup(pc.currentRemoteDescription);
  const l = setup(pc.currentLocalDescription);
  const role = r === 'active' || r === 'passive' ? r : l === 'active' ? 'passive' : l === 'passive' ? 'active' : '';
  return role ? { type: desc.type, sdp: desc.sdp.replace(/^a=setup:\w+/gm, 'a=setup:' + role) } : desc;
}

export class PeerLink {
  /**
   * o: peer (name), polite (we yield in a collision), initiator (we offer
   * first), iceServers, relayOnly (test switch: TURN only), signal(msg)
   * (to the peer via the server), onOpen, onData(msg), onClose (chat
   * channel), onHealth('unstable'|'ok'|'failed'), onStable (a negotiation
   * completed), freshIce() (a promise of new iceServers, or null), log.
   * @param {any} o
   */
  constructor(o) {
    this.o = o;
    this.closed = false;
    this.makingOffer = false;
    this.ignoreOffer = false;
    // The callee must not offer before it has answered the caller.
    this.mayOffer = o.initiator;
    /** @type {any[]} candidates that came before a remote description */
    this.pending = [];
    this.restartTimer = 0;
    this.probeTimer = 0;
    this.probes = 0;
    this.ufrags = '';
    this.probeN = 0;
    this.stableAt = 0;
    // Test hook: leave this many pings unanswered.
    this.mute = 0;
    const pc = new RTCPeerConnection({ iceServers: o.iceServers, iceTransportPolicy: o.relayOnly ? 'relay' : 'all' });
    this.pc = pc;
    this.dc = pc.createDataChannel('chat', { negotiated: true, id: 0 });
    // Files on their own channel (files.js), so chat never waits behind one.
    this.fc = pc.createDataChannel('files', { negotiated: true, id: 1 });
    this.dc.onopen = () => { if (!this.closed) o.onOpen(); };
    this.dc.onclose = () => { if (!this.closed) o.onClose(); };
    this.dc.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      if (this.closed || !m || typeof m !== 'object') return;
      if (m.t === 'ping') this.mute > 0 ? this.mute-- : this.send({ t: 'pong', n: m.n });
      else if (m.t === 'pong') this.pong(m.n);
      else o.onData(m);
    };
    pc.onnegotiationneeded = () => this.offer();
    pc.onicecandidate = (ev) => {
      if (ev.candidate) o.signal({ type: 'candidate', candidate: ev.candidate.toJSON() });
    };
    pc.oniceconnectionstatechange = () => this.iceChanged();
    // Both descriptions are applied only now: the safety code's moment.
    pc.onsignalingstatechange = () => {
      if (pc.signalingState !== 'stable' || this.closed) return;
      this.stableAt = performance.now();
      this.probe();
      o.onStable();
    };
    pc.onconnectionstatechange = () => {
      o.log('connection', pc.connectionState);
      if (pc.connectionState === 'failed' && !this.closed) o.onHealth('failed');
    };
  }

  async offer() {
    if (!this.mayOffer || this.closed) return;
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      this.sendDescription();
    } catch (e) {
      this.o.log('offer failed', String(e));
    } finally {
      this.makingOffer = false;
    }
  }

  sendDescription() {
    const d = this.pc.localDescription;
    if (!d || this.closed) return;
    const desc = { type: d.type, sdp: d.sdp };
    // The server relays offer and answer under their own message types.
    this.o.signal(d.type === 'offer' ? { type: 'offer', offer: desc } : { type: 'answer', answer: desc });
  }

  /**
   * receive applies a relayed offer, answer or candidate, in arrival order.
   * @param {any} m
   */
  receive(m) {
    this.queue = (this.queue || Promise.resolve()).then(() => this.apply(m));
    return this.queue;
  }

  async apply(m) {
    if (this.closed) return;
    const pc = this.pc;
    const desc = m.type === 'offer' ? m.offer : m.type === 'answer' ? m.answer : null;
    try {
      if (desc) {
        if (!desc.type || typeof desc.sdp !== 'string') return;
        const collision = desc.type === 'offer' && (this.makingOffer || pc.signalingState !== 'stable');
        this.ignoreOffer = !this.o.polite && collision;
        if (this.ignoreOffer) { this.o.log('glare: ignoring offer'); return; }
        if (desc.type === 'answer' && pc.signalingState !== 'have-local-offer') return;
        await pc.setRemoteDescription(desc.type === 'answer' ? keepRole(pc, desc) : desc);
        if (desc.type === 'offer') {
          await pc.setLocalDescription();
          this.sendDescription();
        }
        this.mayOffer = true;
        const waiting = this.pending;
        this.pending = [];
        // Left from an offer we ignored (glare): Firefox rejects them.
        for (const c of waiting) {
          if (this.ours(c)) await this.addCandidate(c);
          else this.o.log('stale candidate dropped');
        }
      } else if (m.type === 'candidate' && m.candidate) {
        // Not (yet) ours: it may belong to the next description.
        if (!this.ours(m.candidate)) this.pending.push(m.candidate);
        else await this.addCandidate(m.candidate);
      }
    } catch (e) {
      this.o.log('negotiation error', String(e));
    }
  }

  /**
   * ours: c belongs to the applied remote description (same ICE ufrag).
   * @param {RTCIceCandidateInit} c
   */
  ours(c) {
    const d = this.pc.remoteDescription;
    return !!d && (!c.usernameFragment || d.sdp.split(/\r?\n/).includes('a=ice-ufrag:' + c.usernameFragment));
  }

  /** @param {RTCIceCandidateInit} c */
  async addCandidate(c) {
    try {
      await this.pc.addIceCandidate(c);
    } catch (e) {
      // Candidates of an ignored (glare) offer fail here harmlessly.
      if (!this.ignoreOffer) this.o.log('candidate rejected', String(e));
    }
  }

  iceChanged() {
    const s = this.pc.iceConnectionState;
    this.o.log('ice', s);
    if (this.closed) return;
    if (s === 'disconnected') {
      this.o.onHealth('unstable');
      if (!this.restartTimer) this.watch(restartAfterMs);
    } else if (this.healthy) {
      clearTimeout(this.restartTimer);
      this.restartTimer = 0;
      this.o.onHealth('ok');
    }
  }

  /** @returns {boolean} ICE has a working path */
  get healthy() { return ['connected', 'completed'].includes(this.pc.iceConnectionState); }

  /**
   * watch restarts ICE after ms unless it recovers, and again, less and
   * less often, while it does not: a restart offer can be lost too.
   * @param {number} ms
   */
  watch(ms) {
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(async () => {
      this.restartTimer = 0;
      if (this.closed || this.healthy) return;
      // TURN credentials expire (-turn-ttl): a call older than that gets
      // a relay only with fresh ones.
      const servers = await this.o.freshIce();
      await this.restart(servers);
      if (!this.restartTimer) this.watch(Math.min(ms * 2, 20000));
    }, ms);
  }

  /**
   * restart: ICE restart with servers (if given). With our offer still
   * unanswered (lost with a dead socket, perhaps) it offers again at once.
   * @param {any[]|null} servers
   */
  async restart(servers) {
    const pc = this.pc;
    const wait = this.stableAt + settleMs - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (this.closed) return;
    this.o.log('ice restart');
    try {
      if (servers) pc.setConfiguration({ ...pc.getConfiguration(), iceServers: servers });
      if (pc.signalingState !== 'have-local-offer') return pc.restartIce();
      this.makingOffer = true;
      await pc.setLocalDescription(await pc.createOffer({ iceRestart: true }));
      this.sendDescription();
    } catch (e) {
      this.o.log('restart failed', String(e));
    } finally {
      this.makingOffer = false;
    }
  }

  /**
   * probe, after a negotiation that changed the ICE credentials of an open
   * channel, checks that data flows: ICE and SCTP can both say "connected"
   * on a pair the peer no longer answers. Without a pong in probeMs, and
   * with ICE still claiming a path (else watch is on it), it restarts.
   */
  probe() {
    const ufrags = [this.pc.currentLocalDescription, this.pc.currentRemoteDescription]
      .map((d) => (/a=ice-ufrag:(\S+)/.exec(d ? d.sdp : '') || [])[1]).join();
    if (ufrags.length < 3) return; // a rollback: nothing applied yet
    const changed = this.ufrags && ufrags !== this.ufrags;
    this.ufrags = ufrags;
    if (!changed || !this.open) return;
    clearTimeout(this.probeTimer);
    // Not at once: the old pair still carries data until ICE nominates
    // a new one, which may be the dead one.
    this.probeTimer = setTimeout(() => {
      const n = this.probeN = Date.now();
      this.send({ t: 'ping', n });
      this.probeTimer = setTimeout(async () => {
        if (this.closed || !this.healthy || this.probes >= probeTries) return;
        this.probes++;
        this.o.log('no pong after ICE restart: restarting again');
        await this.restart(await this.o.freshIce());
      }, probeMs);
    }, probeDelayMs);
  }

  pong(n) {
    if (n !== this.probeN) return;
    clearTimeout(this.probeTimer);
    this.probes = 0;
    this.o.log('pong after ICE restart');
  }

  /**
   * send writes m on the chat channel; false if it is not open.
   * @param {any} m
   */
  send(m) {
    if (this.dc.readyState !== 'open') return false;
    this.dc.send(JSON.stringify(m));
    return true;
  }

  /** @returns {boolean} */
  get open() { return !this.closed && this.dc.readyState === 'open'; }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.restartTimer);
    clearTimeout(this.probeTimer);
    try { this.dc.close(); this.fc.close(); } catch { /* already closed */ }
    this.pc.close();
  }

  /** path is 'relay' if the selected candidate pair uses a TURN relay, else 'direct' ('' if none yet). */
  async path() {
    const stats = await this.pc.getStats();
    let pair = null;
    stats.forEach((r) => {
      if (r.type === 'transport' && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId);
    });
    if (!pair) {
      stats.forEach((r) => {
        if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') pair = r;
      });
    }
    if (!pair) return '';
    const l = stats.get(pair.localCandidateId);
    const r = stats.get(pair.remoteCandidateId);
    if (!l || !r) return '';
    return l.candidateType === 'relay' || r.candidateType === 'relay' ? 'relay' : 'direct';
  }

  /**
   * safety returns the safety code of this connection's DTLS keys, from
   * the applied descriptions only: '' while a negotiation is half done
   * (the channel can open before the answer is applied).
   */
  async safety() {
    const pc = this.pc;
    const l = pc.currentLocalDescription;
    const r = pc.currentRemoteDescription;
    if (pc.signalingState !== 'stable' || !l || !r) return '';
    return safetyCode(l.sdp, r.sdp);
  }
}
