// i18n: English and Traditional Chinese. Elements carry data-i18n="key"
// (+ data-args, JSON) so switching re-translates texts set at run time too.

// Each key: [English, Traditional Chinese].
const strings = {
  lang: ['Language', '語言'],
  loginTitle: ['Choose a name', '取一個名字'],
  loginHint: ['Others see this name and can call you with it.', '其他人會看到這個名字，也能用它打給你。'],
  nameLabel: ['Your name', '你的名字'],
  join: ['Join', '加入'],
  joining: ['Joining…', '加入中…'],
  'err.name-taken': ['The name “{0}” is already in use. Please choose another.', '「{0}」這個名字已經有人使用，請換一個。'],
  'err.invalid-name': ['That name cannot be used. Use 1 to 32 visible characters.', '這個名字無法使用，請用 1 到 32 個可見字元。'],
  'err.already-logged-in': ['This page is already signed in. Reload the page to change your name.', '此頁面已經登入。要換名字請重新整理頁面。'],
  'err.login': ['Sign-in failed: {0}', '登入失敗：{0}'],
  'err.empty': ['Please enter a name.', '請輸入名字。'],
  'sig.connecting': ['Connecting to the server…', '正在連線到伺服器…'],
  'sig.connected': ['Server: connected', '伺服器：已連線'],
  'sig.reconnecting': ['Server: connection lost, reconnecting…', '伺服器：連線中斷，正在重新連線…'],
  'sig.wait': ['Server: connection lost, reconnecting in {0} s', '伺服器：連線中斷，{0} 秒後重新連線'],
  retry: ['Retry now', '立即重試'],
  signedInAs: ['Signed in as {0}', '目前身分：{0}'],
  callByName: ['Call someone by name', '輸入名字來撥打'],
  call: ['Call', '撥打'],
  callUser: ['Call {0}', '撥打給 {0}'],
  onlineTitle: ['Online now', '目前在線'],
  onlineCount: ['({0})', '（{0}）'],
  nobody: ['Nobody else is online yet. Send this page’s address to a friend.', '目前沒有其他人在線。把這個網頁的網址傳給朋友吧。'],
  truncated: ['Too many people online to list. Call someone by name.', '在線人數太多，無法列出。請輸入名字撥打。'],
  idleHint: ['Choose someone to start a private chat. Messages go directly between your browsers.', '選一個人開始私人聊天。訊息直接在你們的瀏覽器之間傳送。'],
  'call.idle': ['No call', '沒有通話'],
  'call.outgoing': ['Calling {0}…', '正在撥打給 {0}…'],
  'call.incoming': ['{0} is calling you', '{0} 正在打給你'],
  'call.connecting': ['Connecting to {0}…', '正在連線到 {0}…'],
  'call.connected': ['In a call with {0}', '正在與 {0} 通話'],
  'call.unstable': ['Connection to {0} is unstable, trying to recover…', '與 {0} 的連線不穩定，正在嘗試恢復…'],
  'call.ended': ['Call ended', '通話已結束'],
  kindLabel: ['Call as', '通話方式'],
  'kind.text': ['Text chat', '文字聊天'],
  'kind.voice': ['Voice call', '語音通話'],
  'kind.video': ['Video call', '視訊通話'],
  'call.incoming.voice': ['{0} is calling you (voice)', '{0} 正在打給你（語音）'],
  'call.incoming.video': ['{0} is calling you (video)', '{0} 正在打給你（視訊）'],
  acceptNoCam: ['Accept without camera', '接聽（不開鏡頭）'],
  controls: ['Call controls', '通話控制'],
  'mic.on': ['Turn on microphone (M)', '開啟麥克風 (M)'],
  mute: ['Mute (M)', '靜音 (M)'],
  unmute: ['Unmute (M)', '取消靜音 (M)'],
  'cam.on': ['Turn on camera (V)', '開啟鏡頭 (V)'],
  'cam.off': ['Turn off camera (V)', '關閉鏡頭 (V)'],
  share: ['Share screen', '分享螢幕'],
  'share.stop': ['Stop sharing', '停止分享'],
  'share.join': ['Share screen beside camera', '分享螢幕並保留鏡頭'],
  flip: ['Switch camera', '切換鏡頭'],
  full: ['Full screen', '全螢幕'],
  pip: ['Picture in picture', '子母畫面'],
  textOnly: ['Back to text', '改回文字'],
  devices: ['Devices', '裝置'],
  'dev.mic': ['Microphone', '麥克風'],
  'dev.cam': ['Camera', '鏡頭'],
  'dev.spk': ['Speaker', '喇叭'],
  'peer.muted': ['{0} muted their microphone', '{0} 已將麥克風靜音'],
  'peer.camOff': ['{0} turned their camera off', '{0} 已關閉鏡頭'],
  'peer.mutedCamOff': ['{0} muted their microphone and turned their camera off', '{0} 已靜音並關閉鏡頭'],
  'peer.screen': ['{0} is sharing their screen', '{0} 正在分享螢幕'],
  quality: ['Quality:', '品質：'],
  'q.good': ['● good', '● 良好'],
  'q.fair': ['● fair', '● 普通'],
  'q.poor': ['● poor', '● 不佳'],
  'q.info': ['Round trip {0} ms · loss {1}% · sending {2} kbit/s · receiving {3} kbit/s', '往返 {0} 毫秒 · 遺失 {1}% · 傳送 {2} kbit/s · 接收 {3} kbit/s'],
  'q.video': ['video {0} at {1} fps', '影像 {0}，每秒 {1} 格'],
  insecure: ['Voice and video need a secure connection: open {0} (the browser warns about its certificate once: Advanced, then Proceed).', '語音和視訊需要安全連線：請改開 {0}（瀏覽器會警告一次憑證：選「進階」再「繼續前往」）。'],
  'insecure.none': ['Voice and video need https, which this server does not offer. Text chat works.', '語音和視訊需要 https，這個伺服器沒有提供。文字聊天可以使用。'],
  'av.insecure': ['Voice and video need a secure connection: open {0} instead.', '語音和視訊需要安全連線：請改開 {0}。'],
  'av.denied.cam': ['The camera is blocked for this page. Allow it in the site settings (the icon left of the address), then turn it on.', '此網頁的鏡頭被封鎖了。請在網站設定（網址左邊的圖示）允許後再開啟。'],
  'av.denied.mic': ['The microphone is blocked for this page. Allow it in the site settings (the icon left of the address), then turn it on.', '此網頁的麥克風被封鎖了。請在網站設定（網址左邊的圖示）允許後再開啟。'],
  'av.missing.cam': ['No camera was found. Connect one, then turn it on.', '找不到鏡頭。接上鏡頭後再開啟。'],
  'av.missing.mic': ['No microphone was found. Connect one, then turn it on.', '找不到麥克風。接上麥克風後再開啟。'],
  'av.busy.cam': ['The camera is in use by another program. Close that program, then turn the camera on.', '鏡頭正被其他程式使用。關閉那個程式後再開啟鏡頭。'],
  'av.busy.mic': ['The microphone is in use by another program. Close that program, then turn it on.', '麥克風正被其他程式使用。關閉那個程式後再開啟。'],
  'av.other': ['The camera or microphone could not be started. Try again, or another one under Devices.', '無法啟動鏡頭或麥克風。請再試一次，或在「裝置」選別的。'],
  'av.screen': ['Screen sharing could not start.', '無法開始分享螢幕。'],
  'fb.video': ['The call goes on with video only.', '通話改為只有影像繼續。'],
  'fb.voice': ['The call goes on as a voice call.', '通話改為語音繼續。'],
  'fb.text': ['The call goes on as a text chat.', '通話改為文字聊天繼續。'],
  cancel: ['Cancel', '取消'],
  accept: ['Accept', '接聽'],
  decline: ['Decline', '拒絕'],
  hangup: ['Hang up', '掛斷'],
  close: ['Close', '關閉'],
  safety: ['Safety code:', '安全碼：'],
  safetyHint: ['Read it to each other. If both of you see the same code, nobody is listening in.', '互相念給對方聽。如果兩邊看到的一樣，就沒有人在中間偷聽。'],
  path: ['Path:', '路徑：'],
  'path.direct': ['direct', '直接連線'],
  'path.relay': ['relayed (TURN)', '經 TURN 中繼'],
  computing: ['…', '…'],
  msgLabel: ['Message', '訊息'],
  msgHint: ['Enter sends, Shift+Enter starts a new line.', '按 Enter 送出，Shift+Enter 換行。'],
  send: ['Send', '送出'],
  you: ['You', '你'],
  sending: ['sending…', '傳送中…'],
  delivered: ['✓ delivered', '✓ 已送達'],
  chatLog: ['Chat messages', '聊天訊息'],
  peerSigLost: ['{0} lost the connection to the server. The chat continues directly.', '{0} 與伺服器的連線中斷了，聊天仍直接進行中。'],
  'end.hangup.local': ['You hung up.', '你已掛斷。'],
  'end.hangup': ['{0} hung up.', '{0} 已掛斷。'],
  'end.declined.local': ['You declined the call.', '你拒絕了這通來電。'],
  'end.declined': ['{0} declined the call.', '{0} 拒絕了通話。'],
  'end.busy': ['{0} is in another call. Try again later.', '{0} 正在通話中，請稍後再試。'],
  'end.offline': ['{0} went offline.', '{0} 已離線。'],
  'end.timeout': ['No answer from {0}. The call was cancelled.', '{0} 沒有接聽，通話已取消。'],
  'end.timeout.in': ['Missed call from {0}.', '{0} 的未接來電。'],
  'end.cancelled.local': ['You cancelled the call.', '你取消了通話。'],
  'end.cancelled': ['{0} cancelled the call.', '{0} 取消了通話。'],
  'end.failed': ['Connection failed: your device and {0}’s could not reach each other. On different networks the server needs a TURN relay.', '連線失敗：你和 {0} 的裝置無法互相連上。若在不同網路，伺服器需要 TURN 中繼。'],
  'end.sigLost': ['The server could not be reached in time, so the call with {0} could not be set up.', '無法及時連上伺服器，所以無法與 {0} 建立通話。'],
  'end.lost': ['The connection to {0} was lost.', '與 {0} 的連線中斷了。'],
  'end.not-found': ['{0} is not online.', '{0} 不在線上。'],
  'end.self': ['You cannot call yourself.', '不能打給自己。'],
  'end.other': ['The call with {0} ended.', '與 {0} 的通話已結束。'],
  'file.attach': ['File…', '檔案…'],
  'file.save': ['Save', '儲存'],
  'file.waiting': ['Waiting for {0} to accept…', '等待 {0} 接受…'],
  'file.offer': ['{0} wants to send you this file.', '{0} 想傳這個檔案給你。'],
  'file.tooBig': ['Too big: this browser cannot save to disk as it receives, so up to {0} only.', '太大了：這個瀏覽器無法邊收邊存，最多 {0}。'],
  'file.progress': ['{4} % · {0} of {1} · {2} · {3} left', '{4}% · {0} / {1} · {2} · 剩 {3}'],
  'file.progress0': ['{4} % · {0} of {1}', '{4}% · {0} / {1}'],
  'file.verifying': ['Checking the file (SHA-256)…', '正在檢查檔案（SHA-256）…'],
  'file.paused': ['Paused: connection lost. It resumes when you call {0} again.', '已暫停：連線中斷。再和 {0} 通話時會接著傳。'],
  'file.done': ['Done: {1}, checked (SHA-256).', '完成：{1}，已驗證（SHA-256）。'],
  'file.declined': ['Declined.', '已拒絕。'],
  'file.cancelled': ['You cancelled the transfer.', '你取消了傳送。'],
  'file.cancelledBy': ['{0} cancelled the transfer.', '{0} 取消了傳送。'],
  'file.err.hash': ['Failed: the file arrived damaged (SHA-256 mismatch) and was not saved.', '失敗：檔案損壞（SHA-256 不符），未儲存。'],
  'file.err.proto': ['Failed: invalid data from the other side.', '失敗：對方送來無效資料。'],
  'file.err.peer': ['Failed on {0}’s side.', '在 {0} 那邊失敗了。'],
  'file.err.space': ['Failed: not enough space.', '失敗：空間不足。'],
  'file.err.io': ['Failed: the file could not be read or written.', '失敗：無法讀寫檔案。'],
};

/** @type {Record<string, number>} language code -> column */
const languages = { en: 0, 'zh-TW': 1 };

const storeKey = 'p2pchat.lang';
let current = 'en';

/** pickLanguage: the remembered choice, else the browser's (any zh -> zh-TW). */
export function pickLanguage() {
  try {
    const saved = localStorage.getItem(storeKey);
    if (saved && Object.hasOwn(languages, saved)) return saved;
  } catch { /* storage may be disabled */ }
  for (const l of navigator.languages || [navigator.language || 'en']) {
    const low = l.toLowerCase();
    if (low.startsWith('zh')) return 'zh-TW';
    if (low.startsWith('en')) return 'en';
  }
  return 'en';
}

export function lang() { return current; }

/**
 * t translates key, filling {0}, {1}… (unknown keys show as is).
 * @param {string} key
 * @param {...any} args
 */
export function t(key, ...args) {
  const row = /** @type {any} */ (strings)[key];
  const s = row ? row[languages[current]] : key;
  return s.replace(/\{(\d)\}/g, (_, i) => String(args[Number(i)] ?? ''));
}

/**
 * setText sets el's text (textContent: args are often strangers' names)
 * and remembers key and args for re-translation.
 * @param {HTMLElement} el
 * @param {string} key
 * @param {...any} args
 */
export function setText(el, key, ...args) {
  el.dataset.i18n = key;
  if (args.length) el.dataset.args = JSON.stringify(args);
  else delete el.dataset.args;
  el.textContent = t(key, ...args);
}

/**
 * setLanguage translates the page (data-i18n, data-i18n-label) to code.
 * @param {string} code
 * @param {boolean} [remember]
 */
export function setLanguage(code, remember = false) {
  if (!Object.hasOwn(languages, code)) code = 'en';
  current = code;
  if (remember) {
    try { localStorage.setItem(storeKey, code); } catch { /* ignore */ }
  }
  document.documentElement.lang = code;
  for (const el of document.querySelectorAll('[data-i18n]')) {
    const e = /** @type {HTMLElement} */ (el);
    const args = e.dataset.args ? JSON.parse(e.dataset.args) : [];
    e.textContent = t(e.dataset.i18n || '', ...args);
  }
  for (const el of document.querySelectorAll('[data-i18n-label]')) {
    const e = /** @type {HTMLElement} */ (el);
    const args = e.dataset.labelArgs ? JSON.parse(e.dataset.labelArgs) : [];
    el.setAttribute('aria-label', t(e.dataset.i18nLabel || '', ...args));
  }
}
