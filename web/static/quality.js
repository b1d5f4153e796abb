// Quality: one getStats() sample of a call, compared with the previous one
// to get rates, summarised as good / fair / poor. Thresholds follow common
// VoIP practice: ITU-T G.114 finds one-way delays under 150 ms
// transparent and above 400 ms unusable (round trip 300 / 800 ms), and
// Opus and VP8 hide packet loss of a few percent while above ~10% speech
// and video break up.

/** loss (fraction) and round trip (ms) limits of good and fair */
const good = { loss: 0.02, rtt: 300 };
const fair = { loss: 0.1, rtt: 800 };

/**
 * sample reads pc's statistics. Counters (packets, bytes, frames, audio
 * energy) are totals; rates and loss are over the time since prev.
 * @param {RTCPeerConnection} pc
 * @param {any} prev the previous sample, or null
 */
export async function sample(pc, prev) {
  const stats = await pc.getStats();
  const q = {
    at: performance.now(), rtt: -1, loss: 0, up: 0, down: 0, w: 0, h: 0, fps: 0, level: 'good',
    sent: 0, recv: 0, lost: 0, frames: 0, aIn: 0, vIn: 0, aOut: 0, energy: 0,
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
  if (prev) {
    const s = (q.at - prev.at) / 1000 || 1;
    q.up = Math.round(((q.sent - prev.sent) * 8) / s / 1000);
    q.down = Math.round(((q.recv - prev.recv) * 8) / s / 1000);
    const lost = q.lost - prev.lost;
    const got = lost + q.aIn - prev.aIn + q.vIn - prev.vIn;
    q.loss = got > 0 ? Math.max(0, lost / got) : 0;
  }
  q.level = q.loss <= good.loss && q.rtt <= good.rtt ? 'good' : q.loss <= fair.loss && q.rtt <= fair.rtt ? 'fair' : 'poor';
  return q;
}
