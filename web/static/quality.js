// Quality: one getStats() sample of a call, compared with earlier ones to
// get rates, summarised as good / fair / poor. Loss levels are Jitsi
// Meet's (lib-jitsi-meet ConnectionQuality, jitsi-meet's indicator), the
// round trip limits ITU-T G.114's; docs/client.md has the figures.

/** @type {[number, number][]} loss up to which a score holds */
const steps = [[0.02, 100], [0.04, 70], [0.06, 50], [0.08, 30], [0.12, 10]];

/** score: Jitsi's quality (0-100) for a loss fraction. @param {number} loss */
export const score = (loss) => (steps.find(([l]) => loss <= l) || [0, 0])[1];

/** level: 30 and up good, 10 fair; a round trip over 300 ms at best fair, over 800 poor. @param {number} s @param {number} rtt */
export function level(s, rtt) {
  const l = s >= 30 ? 0 : s >= 10 ? 1 : 2, r = rtt > 800 ? 2 : rtt > 300 ? 1 : 0;
  return ['good', 'fair', 'poor'][Math.max(l, r)];
}

const lossWindow = 10000; // ms, Jitsi's stats interval

/**
 * sample reads pc's statistics. Counters (packets, bytes, frames, audio
 * energy) are totals; rates are over the time since prev, loss over the
 * loss window, the score limited by prev's.
 * @param {RTCPeerConnection} pc
 * @param {any} prev the previous sample, or null
 */
export async function sample(pc, prev) {
  const stats = await pc.getStats();
  const q = {
    at: performance.now(), rtt: -1, loss: 0, up: 0, down: 0, w: 0, h: 0, fps: 0, level: 'good', score: 100,
    sent: 0, recv: 0, lost: 0, frames: 0, aIn: 0, vIn: 0, aOut: 0, energy: 0,
    /** @type {number[][]} [at, lost, lost + received] in the loss window */
    win: [],
  };
  stats.forEach((r) => {
    if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') {
      if (r.currentRoundTripTime !== undefined) q.rtt = Math.round(r.currentRoundTripTime * 1000);
      q.sent += r.bytesSent || 0;
      q.recv += r.bytesReceived || 0;
    } else if (r.type === 'inbound-rtp') {
      q.lost += Math.max(0, r.packetsLost || 0);
      if (r.kind === 'video') {
        q.frames += r.framesDecoded || 0;
        q.vIn += r.packetsReceived || 0;
        if (r.frameWidth) { q.w = r.frameWidth; q.h = r.frameHeight; q.fps = Math.round(r.framesPerSecond || 0); }
      } else {
        q.aIn += r.packetsReceived || 0;
        q.energy += r.totalAudioEnergy || 0;
      }
    } else if (r.type === 'outbound-rtp' && r.kind === 'audio') {
      q.aOut += r.packetsSent || 0;
    }
  });
  q.win = [...(prev ? prev.win : []).filter((w) => w[0] >= q.at - lossWindow), [q.at, q.lost, q.lost + q.aIn + q.vIn]];
  if (prev) {
    const s = (q.at - prev.at) / 1000 || 1;
    q.up = Math.round(((q.sent - prev.sent) * 8) / s / 1000);
    q.down = Math.round(((q.recv - prev.recv) * 8) / s / 1000);
    const [, lost0, all0] = q.win[0], all = q.lost + q.aIn + q.vIn - all0;
    q.loss = all > 0 ? Math.max(0, (q.lost - lost0) / all) : 0;
    q.score = Math.min(score(q.loss), prev.score + 2 * s);
  }
  q.level = level(q.score, q.rtt);
  return q;
}
