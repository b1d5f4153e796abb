// Media: the microphone, camera and screen of a call. Tracks go onto the
// PeerLink's connection (addTrack/removeTrack renegotiate over its perfect
// negotiation; mute, camera off and device changes use replaceTrack and do
// not). Each side tells the other its state on the chat channel:
// {t:'av', mic, cam, screen, sid} and {t:'av', text:true}. See
// docs/client.md.

import { sample } from './quality.js';

let S;
let rerender = () => {};
let link = null;
/** @type {Record<string, MediaStreamTrack|null>} */
const tr = { mic: null, cam: null, screen: null };
/** @type {Record<string, RTCRtpSender|null>} */
let snd = { audio: null, video: null, screen: null };
const local = new MediaStream();
/** @type {MediaStream|null} a screen shared beside the camera */
let scr = null;
// #remote shows remote, #remote2 the peer's screen beside its camera (sid).
let remote = new MediaStream(), remote2 = new MediaStream();
/** @type {Map<MediaStreamTrack, string>} */
let got = new Map();
let statsTimer = 0, prevStats = null, wake = null;

/** @param {any} state @param {() => void} render */
export function init(state, render) { S = state; rerender = render; }

/** newAv: a call's local media state, for rendering and tests. */
export const newAv = () => ({ mic: false, muted: false, cam: false, screen: false, join: false, err: '', fb: '', camId: '' });

/**
 * kindOf tells what an offer asks for: 'video' if it sends video, 'voice'
 * if it sends audio only, else 'text'.
 * @param {string} sdp
 */
export function kindOf(sdp) {
  const sends = (k) => String(sdp).split(/\r?\nm=/).slice(1)
    .some((sec) => sec.startsWith(k) && !/a=(recvonly|inactive)/.test(sec) && !/^\S+ 0 /.test(sec));
  return sends('video') ? 'video' : sends('audio') ? 'voice' : 'text';
}

function errName(e) {
  const n = e && e.name;
  if (n === 'NotAllowedError' || n === 'SecurityError') return 'denied';
  if (n === 'NotFoundError' || n === 'OverconstrainedError') return 'missing';
  if (n === 'NotReadableError' || n === 'AbortError') return 'busy';
  return 'other';
}

/**
 * gum opens the microphone or a camera; null (and av.err) if it cannot.
 * @param {'mic'|'cam'} dev
 * @param {string} [id] deviceId
 * @param {string} [facing] facingMode ('user', 'environment')
 */
async function gum(dev, id, facing) {
  const av = S.call.av;
  if (!navigator.mediaDevices || !isSecureContext) {
    av.err = 'insecure';
    return null;
  }
  const c = dev === 'cam' ? { width: { ideal: 640 }, height: { ideal: 480 } } : {};
  if (id) c.deviceId = { exact: id };
  if (facing) c.facingMode = { exact: facing };
  try {
    const s = await navigator.mediaDevices.getUserMedia(dev === 'mic' ? { audio: c } : { video: c });
    return s.getTracks()[0];
  } catch (e) {
    const n = errName(e);
    av.err = n === 'other' ? n : n + '.' + dev;
    return null;
  }
}

/**
 * capture opens the microphone (and camera) before a call connects. What
 * fails is left out: av.err says why, av.fb what the call goes on as.
 * @param {boolean} video
 */
export async function capture(video) {
  const c = S.call;
  const [mic, cam] = await Promise.all([gum('mic'), video ? gum('cam') : null]);
  if (S.call !== c || c.state === 'ended') {
    for (const x of [mic, cam]) if (x) x.stop();
    return;
  }
  set('mic', mic);
  set('cam', cam);
  if (c.av.err) c.av.fb = cam ? 'video' : mic ? 'voice' : 'text';
  rerender();
}

/** set makes t the track of slot, stopping the old one. */
function set(slot, t) {
  const old = tr[slot];
  if (old === t) return;
  if (old) { old.stop(); local.removeTrack(old); }
  tr[slot] = t;
  if (t) {
    local.addTrack(t);
    if (slot === 'screen') t.onended = () => share();
  }
  const av = S.call.av;
  av.mic = !!tr.mic;
  av.cam = !!tr.cam;
  av.screen = !!tr.screen;
  if (!av.screen) av.join = false;
  if (slot === 'mic' && t) t.enabled = !av.muted;
  if (slot === 'cam') av.camId = t ? t.getSettings().deviceId || '' : '';
}

/**
 * put sends t: replaceTrack if we have a sender of its kind, else addTrack.
 * @param {'audio'|'video'} kind
 * @param {MediaStreamTrack|null} t
 */
async function put(kind, t) {
  if (!link || link.closed) return;
  const s = snd[kind];
  if (s) await s.replaceTrack(t);
  else if (t) snd[kind] = link.pc.addTrack(t, local);
}

/**
 * attach puts our tracks on a new PeerLink, shows the peer's, and samples
 * quality once a second.
 * @param {any} l
 */
export function attach(l) {
  link = l;
  snd = { audio: null, video: null, screen: null };
  remote = new MediaStream();
  remote2 = new MediaStream();
  got = new Map();
  const v = /** @type {HTMLVideoElement} */ (document.getElementById('remote'));
  const v2 = /** @type {HTMLVideoElement} */ (document.getElementById('remote2'));
  v.srcObject = remote;
  v2.srcObject = remote2;
  v.onresize = () => {
    const c = S.call;
    if (v.videoWidth && !c.videoMs && c.clickAt) c.videoMs = Math.round(performance.now() - c.clickAt);
  };
  l.pc.addEventListener('track', (/** @type {RTCTrackEvent} */ ev) => {
    if (link !== l) return;
    const st = ev.streams[0];
    got.set(ev.track, st ? st.id : '');
    if (st) st.onremovetrack = (e) => {
      got.delete(e.track);
      remote.removeTrack(e.track);
      remote2.removeTrack(e.track);
      rerender();
    };
    ev.track.onunmute = ev.track.onmute = ev.track.onended = () => rerender();
    place();
    v.play().catch(() => {});
    rerender();
  });
  put('audio', tr.mic);
  put('video', tr.screen && !scr ? tr.screen : tr.cam);
  if (scr && tr.screen) snd.screen = l.pc.addTrack(tr.screen, scr);
  l.dc.addEventListener('open', sendState);
  clearInterval(statsTimer);
  prevStats = null;
  statsTimer = setInterval(async () => {
    if (link !== l || !l.open) return;
    try {
      const q = await sample(l.pc, prevStats);
      if (link !== l) return;
      prevStats = q;
      S.call.q = q;
      rerender();
    } catch { /* closed meanwhile */ }
  }, 1000);
}

function sendState() {
  const av = S.call.av;
  if (link) link.send({ t: 'av', mic: av.mic && !av.muted, cam: av.cam, screen: av.screen, sid: scr ? scr.id : '' });
  wakeLock();
}

/**
 * peer applies the peer's {t:'av'} message.
 * @param {any} m
 */
export function peer(m) {
  if (m.text) return toText(false);
  const c = S.call, h = c.peerHad || {};
  c.peerAv = { mic: !!m.mic, cam: !!m.cam, screen: !!m.screen, sid: typeof m.sid === 'string' ? m.sid : '' };
  c.peerHad = { mic: h.mic || !!m.mic, cam: h.cam || !!m.cam };
  place();
  rerender();
}

/** place puts the peer's tracks into remote or remote2. */
function place() {
  const sid = (S.call.peerAv || {}).sid;
  for (const [t, id] of got) {
    const [to, from] = sid && id === sid ? [remote2, remote] : [remote, remote2];
    from.removeTrack(t);
    if (!to.getTracks().includes(t)) to.addTrack(t);
  }
  const v2 = /** @type {HTMLVideoElement} */ (document.getElementById('remote2'));
  if (v2 && remote2.getTracks().length) v2.play().catch(() => {});
}

/** stop ends all local media (the call is over). */
export function stop() {
  clearInterval(statsTimer);
  for (const k of Object.keys(tr)) set(k, null);
  link = scr = null;
  if (wake && wake.release) wake.release().catch(() => {});
  wake = null;
  for (const id of ['remote', 'remote2']) {
    const v = /** @type {HTMLVideoElement} */ (document.getElementById(id));
    if (v) v.srcObject = null;
  }
}

/** changed sends our state and re-renders after a control was used. */
function changed() {
  sendState();
  rerender();
}

/** mic: mute and unmute; with no microphone yet, turn it on (a text call becomes a voice call). */
export async function mic() {
  const av = S.call.av;
  av.err = av.fb = '';
  if (!tr.mic) {
    const t = await gum('mic');
    if (!t || !link) return t && t.stop(), rerender();
    set('mic', t);
    await put('audio', t);
  } else {
    av.muted = !av.muted;
    tr.mic.enabled = !av.muted;
  }
  changed();
}

/** cam: camera on and off (off stops it: frames stop), or with id or facing another camera. */
export async function cam(id = '', facing = '') {
  const av = S.call.av;
  av.err = av.fb = '';
  if (tr.cam && !id && !facing) {
    set('cam', null);
    if (!tr.screen || scr) await put('video', null);
  } else {
    const t = await gum('cam', id, facing);
    if (!t || !link) return t && t.stop(), rerender();
    set('cam', t);
    if (!tr.screen || scr) await put('video', t);
  }
  changed();
}

/** flip: front/back where the camera says which it is (phones), else the next camera. */
export async function flip() {
  const f = tr.cam && tr.cam.getSettings().facingMode;
  if (f === 'user' || f === 'environment') {
    const before = tr.cam;
    await cam('', f === 'user' ? 'environment' : 'user');
    if (tr.cam !== before) return;
    S.call.av.err = '';
  }
  const cams = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'videoinput');
  if (cams.length < 2) return;
  const i = cams.findIndex((d) => d.deviceId === S.call.av.camId);
  await cam(cams[(i + 1) % cams.length].deviceId);
}

/**
 * device switches the microphone or camera to deviceId, or the speaker.
 * @param {'mic'|'cam'|'spk'} dev
 * @param {string} id
 */
export async function device(dev, id) {
  if (dev === 'spk') {
    const v = /** @type {any} */ (document.getElementById('remote'));
    return v.setSinkId && v.setSinkId(id).catch(() => {});
  }
  if (dev === 'cam') return cam(id);
  const t = await gum('mic', id);
  if (!t || !link) return t && t.stop();
  set('mic', t);
  await put('audio', t);
  changed();
}

/**
 * share starts or stops screen sharing: replacing the camera, or with join
 * beside it (a second track in its own stream, which renegotiates).
 * @param {boolean} [join]
 */
export async function share(join = false) {
  const av = S.call.av;
  av.err = av.fb = '';
  if (tr.screen) {
    if (snd.screen && link && !link.closed) link.pc.removeTrack(snd.screen);
    const was = scr;
    snd.screen = scr = null;
    set('screen', null);
    if (!was) await put('video', tr.cam);
  } else {
    let t;
    try {
      const s = await navigator.mediaDevices.getDisplayMedia({ video: true });
      t = s.getVideoTracks()[0];
    } catch (e) {
      if (errName(e) !== 'denied') av.err = 'screen';
      return rerender();
    }
    if (!link) return t.stop();
    if (join && tr.cam) {
      scr = new MediaStream([t]);
      set('screen', t);
      av.join = true;
      snd.screen = link.pc.addTrack(t, scr);
    } else {
      set('screen', t);
      await put('video', t);
    }
  }
  changed();
}

/**
 * toText ends voice and video: our tracks go (renegotiating), and with
 * tell the peer is asked to do the same.
 * @param {boolean} tell
 */
export async function toText(tell) {
  if (tell && link) link.send({ t: 'av', text: true });
  for (const k of Object.keys(tr)) set(k, null);
  S.call.av.muted = false;
  S.call.peerHad = S.call.peerAv = null;
  if (link && !link.closed) {
    for (const s of [snd.audio, snd.video, snd.screen]) if (s) link.pc.removeTrack(s);
  }
  snd = { audio: null, video: null, screen: null };
  scr = null;
  changed();
}

/** full shows the remote video full screen. */
export function full() {
  const e = document.getElementById('stage');
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  else if (e && e.requestFullscreen) e.requestFullscreen().catch(() => {});
}

/** pip puts the remote video in a picture-in-picture window. */
export function pip() {
  const v = /** @type {any} */ (document.getElementById(hasRemoteScreen() ? 'remote2' : 'remote'));
  if (document.pictureInPictureElement) document.exitPictureInPicture().catch(() => {});
  else if (v.requestPictureInPicture) v.requestPictureInPicture().catch(() => {});
}

/** hasRemoteVideo: the peer sends video (in remote). */
export function hasRemoteVideo() {
  const p = S.call.peerAv;
  return !!p && (p.cam || (p.screen && !p.sid)) && remote.getVideoTracks().some((t) => t.readyState === 'live');
}

/** hasRemoteScreen: the peer shares a screen beside its camera. */
export function hasRemoteScreen() {
  const p = S.call.peerAv;
  return !!p && p.screen && !!p.sid && remote2.getVideoTracks().some((t) => t.readyState === 'live');
}

/** trackDevice: the deviceId of a local track ('' if none). @param {string} slot */
export const trackDevice = (slot) => (tr[slot] ? tr[slot].getSettings().deviceId || '' : '');

/** localStream is what the self-view shows. */
export const localStream = () => local;

// A screen that locks in a video call pauses the camera on phones; keep
// it awake while the call has video, as far as the browser allows.
function wakeLock() {
  const av = S.call.av;
  const want = av.cam || av.screen || (S.call.peerAv && S.call.peerAv.cam);
  const n = /** @type {any} */ (navigator);
  if (want && !wake && n.wakeLock && document.visibilityState === 'visible') {
    wake = 'pending';
    n.wakeLock.request('screen').then((w) => { wake = w; }, () => { wake = null; });
  }
}
document.addEventListener('visibilitychange', () => {
  if (wake && wake.released) wake = null;
  if (link) wakeLock();
});
