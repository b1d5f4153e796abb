// Safety code: SHA-256 of both sides' DTLS fingerprints, sorted, as four
// groups of four digits. A swapped key changes it (docs/client.md).

/** @param {string} sdp @returns {string[]} normalised a=fingerprint values */
export function fingerprints(sdp) {
  const out = [];
  for (const line of sdp.split(/\r?\n/)) {
    const m = /^a=fingerprint:(\S+)\s+([0-9A-Fa-f:]+)\s*$/.exec(line);
    if (m) out.push(m[1].toLowerCase() + ' ' + m[2].toUpperCase());
  }
  return [...new Set(out)];
}

/**
 * safetyCode derives the code from both SDPs ('' if one has no fingerprint).
 * @param {string} localSdp
 * @param {string} remoteSdp
 */
export async function safetyCode(localSdp, remoteSdp) {
  const l = fingerprints(localSdp);
  const r = fingerprints(remoteSdp);
  if (!l.length || !r.length) return '';
  const text = [l.join(','), r.join(',')].sort().join('\n');
  const h = await sha256(new TextEncoder().encode(text));
  const groups = [];
  for (let i = 0; i < 4; i++) groups.push(String(((h[2 * i] << 8) | h[2 * i + 1]) % 10000).padStart(4, '0'));
  return groups.join(' ');
}

/**
 * sha256 uses WebCrypto in a secure context, else plain JS: a page loaded
 * over http from a LAN address has no crypto.subtle, yet WebRTC works there.
 * @param {Uint8Array} data
 */
export async function sha256(data) {
  if (globalThis.crypto && crypto.subtle) return new Uint8Array(await crypto.subtle.digest('SHA-256', data));
  return sha256js(data);
}

// Round constants: fractional parts of the cube roots (K) and square roots
// (H) of the first primes; doubles are exact enough for 32 bits.
const primes = [];
for (let n = 2; primes.length < 64; n++) if (primes.every((p) => n % p)) primes.push(n);
const frac = (/** @type {number} */ x) => ((x - Math.floor(x)) * 2 ** 32) >>> 0;
const K = new Uint32Array(primes.map((p) => frac(Math.cbrt(p))));
const H0 = primes.slice(0, 8).map((p) => frac(Math.sqrt(p)));

/**
 * sha256js is FIPS 180-4 SHA-256 (inputs here are ~200 bytes).
 * @param {Uint8Array} data
 */
export function sha256js(data) {
  const n = ((data.length + 9 + 63) >> 6) << 6;
  const buf = new Uint8Array(n);
  buf.set(data);
  buf[data.length] = 0x80;
  const dv = new DataView(buf.buffer);
  dv.setUint32(n - 8, Math.floor(data.length / 0x20000000));
  dv.setUint32(n - 4, data.length * 8);
  const H = new Uint32Array(H0);
  const W = new Uint32Array(64);
  const rotr = (/** @type {number} */ x, /** @type {number} */ r) => (x >>> r) | (x << (32 - r));
  for (let off = 0; off < n; off += 64) {
    for (let i = 0; i < 16; i++) W[i] = dv.getUint32(off + 4 * i);
    for (let i = 16; i < 64; i++) {
      const a = W[i - 15], b = W[i - 2];
      W[i] = W[i - 16] + (rotr(a, 7) ^ rotr(a, 18) ^ (a >>> 3)) + W[i - 7] + (rotr(b, 17) ^ rotr(b, 19) ^ (b >>> 10));
    }
    let [a, b, c, d, e, f, g, h] = H;
    for (let i = 0; i < 64; i++) {
      const t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + W[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      h = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += h;
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) ov.setUint32(4 * i, H[i]);
  return out;
}
