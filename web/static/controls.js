// Controls: renders the call's voice and video (stage, buttons, the peer's
// state, errors in words, quality) from the state, and wires the buttons
// and the m / v shortcuts to media.js. Decides nothing itself.

import { els } from './ui.js';
import { setText, t } from './i18n.js';
import * as media from './media.js';

let S;
let cams = 0;

/** httpsURL: this page on the server's HTTPS listener (hello's httpsPort). */
function httpsURL() {
  const u = new URL(location.href);
  u.protocol = 'https:';
  u.port = String(S.httpsPort || '');
  return u.origin + '/';
}

/** @param {HTMLElement} el @param {boolean} on */
const show = (el, on) => { el.hidden = !on; };

/**
 * renderAv updates everything voice and video after ui.render.
 * @param {any} s
 */
export function renderAv(s) {
  const c = s.call, av = c.av, p = c.peerAv || {}, had = c.peerHad || {};
  show(els.insecure, !isSecureContext);
  if (!isSecureContext) setText(els.insecure, S.httpsPort ? 'insecure' : 'insecure.none', httpsURL());
  if (c.state === 'incoming' && c.kind !== 'text') {
    setText(els.callTitle, 'call.incoming.' + c.kind, c.peer);
  }
  show(els.acceptNoCam, c.state === 'incoming' && c.kind === 'video');

  show(els.avMsg, !!av.err);
  if (av.err) setText(els.avErr, 'av.' + av.err, httpsURL());
  setText(els.avFb, av.fb ? 'fb.' + av.fb : '');

  const on = c.state === 'connected';
  show(els.av, on);
  if (!on) return;
  const anyAv = av.mic || av.cam || av.screen || p.mic || p.cam || p.screen || had.mic || had.cam;
  const remote = media.hasRemoteVideo(), screen = media.hasRemoteScreen();
  const mine = av.cam || av.screen, theirs = remote || screen;
  show(els.stage, theirs || mine);
  els.callBox.classList.toggle('video', theirs || mine);
  show(els.remote, remote);
  show(els.remote2, screen);
  show(els.self, mine);
  els.stage.classList.toggle('solo', !theirs);
  els.stage.classList.toggle('both', remote && screen); // the screen big, the camera a tile
  // The stage takes the shape of its big picture (portrait from an upright phone).
  const big = screen ? els.remote2 : remote ? els.remote : els.self;
  els.stage.classList.toggle('tall', big.videoHeight > big.videoWidth);
  if (els.self.srcObject !== media.localStream()) els.self.srcObject = media.localStream();
  els.self.classList.toggle('mirror', !av.screen || av.join);
  const muted = had.mic && !p.mic, camOff = had.cam && !p.cam && !p.screen;
  setText(els.peerAv, p.screen ? 'peer.screen' : muted && camOff ? 'peer.mutedCamOff' : muted ? 'peer.muted' : camOff ? 'peer.camOff' : '', c.peer);
  show(els.peerAv, !!els.peerAv.textContent);

  setText(els.mic, !av.mic ? 'mic.on' : av.muted ? 'unmute' : 'mute');
  els.mic.setAttribute('aria-pressed', String(av.mic && av.muted));
  els.mic.classList.toggle('danger', av.mic && av.muted);
  setText(els.cam, av.cam ? 'cam.off' : 'cam.on');
  setText(els.share, av.screen ? 'share.stop' : 'share');
  els.share.setAttribute('aria-pressed', String(av.screen));
  const canShare = !!(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);
  show(els.share, canShare);
  show(els.share2, canShare && av.cam && !av.screen);
  show(els.flip, av.cam && cams > 1);
  show(els.full, theirs);
  show(els.pip, theirs && !!document.pictureInPictureEnabled);
  show(els.textOnly, anyAv);
  show(els.devBtn, av.mic || av.cam);
  if (!(av.mic || av.cam)) show(els.devs, false);
  els.devBtn.setAttribute('aria-expanded', String(!els.devs.hidden));
  show(els.spkRow, 'setSinkId' in HTMLMediaElement.prototype);

  const q = c.q;
  setText(els.qual, q ? 'q.' + q.level : 'computing');
  els.qual.dataset.level = q ? q.level : '';
  if (q) {
    els.qualInfo.textContent = t('q.info', q.rtt < 0 ? '–' : q.rtt, (q.loss * 100).toFixed(1), q.up, q.down) +
      (q.w ? ' · ' + t('q.video', q.w + '×' + q.h, q.fps) : '');
    els.qual.title = els.qualInfo.textContent;
  }
  els.qual.setAttribute('aria-expanded', String(!els.qualInfo.hidden));
}

const names = { audioinput: 'dev.mic', videoinput: 'dev.cam', audiooutput: 'dev.spk' };

/** refresh re-reads the devices: the selects and the camera count. */
async function refresh() {
  const list = navigator.mediaDevices ? await navigator.mediaDevices.enumerateDevices().catch(() => []) : [];
  cams = list.filter((d) => d.kind === 'videoinput').length;
  const av = S.call.av;
  const fill = (/** @type {HTMLSelectElement} */ sel, kind, current) => {
    sel.replaceChildren(...list.filter((d) => d.kind === kind).map((d, i) => {
      const o = document.createElement('option');
      o.value = d.deviceId;
      o.textContent = d.label || t(names[kind]) + ' ' + (i + 1);
      o.selected = d.deviceId === current;
      return o;
    }));
  };
  fill(els.micSel, 'audioinput', media.trackDevice('mic'));
  fill(els.camSel, 'videoinput', av.camId);
  fill(els.spkSel, 'audiooutput', '');
  renderAv(S);
}

/**
 * init wires the controls.
 * @param {any} state
 */
export function init(state) {
  S = state;
  const on = (/** @type {HTMLElement} */ el, f) => el.addEventListener('click', () => { f(); });
  on(els.mic, () => media.mic().then(refresh));
  on(els.cam, () => media.cam().then(refresh));
  on(els.share, media.share);
  on(els.share2, () => media.share(true));
  on(els.flip, media.flip);
  on(els.full, media.full);
  on(els.pip, media.pip);
  on(els.textOnly, () => media.toText(true));
  on(els.devBtn, () => { els.devs.hidden = !els.devs.hidden; refresh(); });
  on(els.qual, () => { els.qualInfo.hidden = !els.qualInfo.hidden; renderAv(S); });
  els.micSel.addEventListener('change', () => media.device('mic', els.micSel.value));
  els.camSel.addEventListener('change', () => media.device('cam', els.camSel.value));
  els.spkSel.addEventListener('change', () => media.device('spk', els.spkSel.value));
  if (navigator.mediaDevices) navigator.mediaDevices.addEventListener('devicechange', refresh);
  for (const v of [els.remote, els.remote2, els.self]) v.addEventListener('resize', () => renderAv(S));
  document.addEventListener('keydown', (e) => {
    const el = /** @type {HTMLElement} */ (e.target);
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat || S.call.state !== 'connected') return;
    if (el && (/^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName) || el.isContentEditable)) return;
    const k = e.key.toLowerCase();
    if (k === 'm') els.mic.click();
    else if (k === 'v') els.cam.click();
  });
  return refresh;
}
