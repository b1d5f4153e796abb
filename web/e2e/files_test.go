package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The receiver's copy of a file is checked against the bytes on the
// sender's disk by hashing it in the page (crypto.subtle over the whole
// received File, independent of the transfer's own piece-list hash).
const wholeSHA = `(async (name) => {
  const x = state.files.find((f) => f.name === name && f.file);
  if (!x) return 'no file';
  const d = await crypto.subtle.digest('SHA-256', await x.file.arrayBuffer());
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, '0')).join('');
})`

// fileTest writes a file of n pseudo-random bytes (seeded) into dir and
// returns its path and SHA-256.
func writeFile(t *testing.T, dir, name string, n int, seed uint64) (string, string) {
	t.Helper()
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return saveFile(t, dir, name, b)
}

func saveFile(t *testing.T, dir, name string, b []byte) (string, string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return p, hex.EncodeToString(sum[:])
}

// upload picks files with the page's real file input.
func (p *peer) upload(paths ...string) {
	p.t.Helper()
	p.wait("file button enabled", `!document.querySelector('#attach').disabled`)
	p.do("pick files", chromedp.SetUploadFiles(chromedp.CSS("#fileIn"), paths))
}

// fileJS is a JS expression for the transfer named name.
func fileJS(name string) string {
	return fmt.Sprintf(`state.files.find((f) => f.name === %q)`, name)
}

// fileStatus waits until the transfer named name is in status s.
func (p *peer) fileStatus(name, s string) {
	p.t.Helper()
	p.waitLong(name+" "+s, fmt.Sprintf(`(%s || {}).status === %q`, fileJS(name), s))
}

// fileClick clicks a button of the transfer's row.
func (p *peer) fileClick(name, button string) {
	p.t.Helper()
	x := fileJS(name)
	p.wait(name+" row", x)
	p.do(button+" "+name, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`[...document.querySelectorAll('#log li.file')]
		.find((li) => li.dataset.fid === %s.id).querySelector(%q).click()`, x, button)))
}

// rowText is the status line of the transfer's row.
func (p *peer) rowText(name string) string {
	p.t.Helper()
	return eval[string](p, fmt.Sprintf(`[...document.querySelectorAll('#log li.file')].find((li) => li.dataset.fid === %s.id).querySelector('.fstat').textContent`, fileJS(name)))
}

// checkReceived compares the received file with the sender's bytes, and
// the two sides' transfer hashes.
func checkReceived(t *testing.T, from, to *peer, name, want string) {
	t.Helper()
	from.fileStatus(name, "done")
	to.fileStatus(name, "done")
	if got := evalAwait[string](to, wholeSHA+fmt.Sprintf(`(%q)`, name)); got != want {
		t.Errorf("%s: received SHA-256 %s, sent %s", name, got, want)
	}
	hs, hr := eval[string](from, fileJS(name)+`.hash`), eval[string](to, fileJS(name)+`.hash`)
	if len(hs) != 64 || hs != hr {
		t.Errorf("%s: transfer hash sender %q, receiver %q", name, hs, hr)
	}
	for _, p := range []*peer{from, to} {
		if v := eval[string](p, fmt.Sprintf(`(() => { const li = [...document.querySelectorAll('#log li.file')].find((li) => li.dataset.fid === %s.id);
			const b = li.querySelector('progress'); return b.value + '/' + b.max; })()`, fileJS(name))); !strings.HasPrefix(v, "") || strings.Split(v, "/")[0] != strings.Split(v, "/")[1] {
			t.Errorf("%s: %s's progress bar at %s, want full", name, p.name, v)
		}
	}
}

// TestFileTransfer: several files at once through the real file input (a
// few MiB of random bytes, a PNG, an empty file, a name with markup and
// Chinese): each is offered, accepted, streamed to disk and arrives with
// the sender's SHA-256; the picture is previewed; the name stays text.
func TestFileTransfer(t *testing.T) {
	a, b := filePair(t, "fay", "finn")
	connect(t, a, b, "fay", "finn")
	dir := t.TempDir()
	const evil = `<img src=x onerror=alert(1)> 照片 報告.txt`
	big, bigSum := writeFile(t, dir, "data.bin", 5<<20+12345, 1)
	pic, picSum := writePNG(t, dir, "pic.png")
	empty, emptySum := saveFile(t, dir, "empty.txt", nil)
	bad, badSum := writeFile(t, dir, evil, 3000, 2)
	a.upload(big, pic, empty, bad)
	for _, n := range []string{"data.bin", "pic.png", "empty.txt", evil} {
		b.fileStatus(n, "offered")
	}
	if got := b.rowText("data.bin"); got != "fay wants to send you this file." {
		t.Errorf("offer text %q", got)
	}
	if got := a.rowText("data.bin"); got != "Waiting for finn to accept…" {
		t.Errorf("sender's text %q", got)
	}
	for _, n := range []string{"data.bin", "pic.png", "empty.txt", evil} {
		b.fileClick(n, "button.ok")
	}
	checkReceived(t, a, b, "data.bin", bigSum)
	checkReceived(t, a, b, "pic.png", picSum)
	checkReceived(t, a, b, "empty.txt", emptySum)
	checkReceived(t, a, b, evil, badSum)
	if !eval[bool](b, fileJS("data.bin")+`.sink.disk`) {
		t.Error("the file was held in memory, not streamed to disk")
	}
	if got := b.rowText("data.bin"); got != "Done: 5.26 MB, checked (SHA-256)." {
		t.Errorf("done text %q", got)
	}
	// The picture shows on both sides, decoded from its blob: URL.
	for _, p := range []*peer{a, b} {
		p.wait("preview", fmt.Sprintf(`(() => { const li = [...document.querySelectorAll('#log li.file')].find((li) => li.dataset.fid === %s.id);
			const img = li.querySelector('img.preview'); return !img.hidden && img.complete && img.naturalWidth === 160; })()`, fileJS("pic.png")))
	}
	// Markup in the name: shown as text, nothing injected, saved under a
	// sanitised name.
	for _, p := range []*peer{a, b} {
		if n := eval[int](p, `document.querySelectorAll('img:not(.preview), main script').length`); n != 0 {
			t.Errorf("%s: %d elements injected", p.name, n)
		}
		if !eval[bool](p, fmt.Sprintf(`[...document.querySelectorAll('#log .fname')].some((e) => e.firstChild.textContent === %q)`, evil)) {
			t.Errorf("%s: the name is not shown as text", p.name)
		}
	}
	if got := eval[string](b, fmt.Sprintf(`[...document.querySelectorAll('#log li.file')].find((li) => li.dataset.fid === %s.id).querySelector('a.save').download`, fileJS(evil))); got != "_img src=x onerror=alert(1)_ 照片 報告.txt" {
		t.Errorf("saved as %q", got)
	}
	// The name rules themselves.
	names := evalAwait[string](b, `import('/files.js').then((m) => JSON.stringify([
		'a\u202egnp.exe', '../../etc/passwd', ' .hidden. ', 'CON.txt', 'nul', 'a:b*c?"d<e>f|g\\h', '\u0000\u0007', '報告\u200b.pdf',
	].map((n) => [m.showName(n), m.saveName(n)])))`)
	if want := `[["agnp.exe","agnp.exe"],["../../etc/passwd","_.._etc_passwd"],[" .hidden. ","hidden"],["CON.txt","_CON.txt"],["nul","_nul"],` +
		`["a:b*c?\"d<e>f|g\\h","a_b_c__d_e_f_g_h"],["file","file"],["報告.pdf","報告.pdf"]]`; names != want {
		t.Errorf("names:\n got %s\nwant %s", names, want)
	}
	// Chat still flows beside the files.
	a.say("all there?")
	b.got("all there?")
	// The received files are on disk, one each; a call with someone else
	// drops the old transfers (reset), and their files with them.
	if n := b.opfsFiles(); n != 4 {
		t.Errorf("%d received files in the origin private file system, want 4", n)
	}
	eval[bool](b, `(__files.reset(), true)`)
	b.noOPFSFiles()
}

// opfsFiles counts the received files (p2p-<id>) in the page's origin
// private file system.
func (p *peer) opfsFiles() int {
	p.t.Helper()
	return evalAwait[int](p, `(async () => { let n = 0;
		for await (const k of (await navigator.storage.getDirectory()).keys()) if (k.startsWith('p2p-')) n++;
		return n; })()`)
}

// noOPFSFiles waits until no received file is left on disk (deleting is
// asynchronous: the sink worker closes its handle first).
func (p *peer) noOPFSFiles() {
	p.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		n := p.opfsFiles()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: %d files of transfers that are over left on disk", p.name, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Transfers on a busy 2-core machine shared with other tests can crawl:
// waits for bytes get longer than a step, and file tests a longer deadline.
const (
	byteWait     = 45 * time.Second
	fileDeadline = 3 * time.Minute
)

func (p *peer) waitLong(what, js string) {
	p.t.Helper()
	p.waitFor(what, js, byteWait)
}

// filePair is loggedInPair with the file tests' deadline.
func filePair(t *testing.T, nameA, nameB string, query ...string) (*peer, *peer) {
	t.Helper()
	ctx := browserTestFor(t, fileDeadline)
	srv := startServer(t)
	q := append(query, "", "")
	a := newPeer(t, ctx, srv.URL(q[0]), nameA)
	b := newPeer(t, ctx, srv.URL(q[1]), nameB)
	a.login(nameA)
	b.login(nameB)
	return a, b
}

// held makes the sender stop before the byte at off, until release.
func (p *peer) hold(off int) {
	p.t.Helper()
	eval[bool](p, fmt.Sprintf(`(__files.hold = %d, true)`, off))
}

func (p *peer) release() {
	p.t.Helper()
	eval[bool](p, `(__files.hold = Infinity, __files.wake(), true)`)
}

// TestFileCancelDeclineDamage: cancel from the sender, cancel from the
// receiver, decline, a chunk damaged in flight (caught by the hash, not
// offered as done), and garbage on the file channel, which ends only the
// transfer it hits: the call and the chat go on.
func TestFileCancelDeclineDamage(t *testing.T) {
	a, b := filePair(t, "cara", "cole")
	connect(t, a, b, "cara", "cole")
	dir := t.TempDir()
	one, _ := writeFile(t, dir, "one.bin", 4<<20, 3)
	two, _ := writeFile(t, dir, "two.bin", 4<<20, 4)
	three, _ := writeFile(t, dir, "three.bin", 1000, 5)
	four, _ := writeFile(t, dir, "four.bin", 3<<20, 6)
	five, _ := writeFile(t, dir, "five.bin", 4<<20, 7)
	a.hold(2 << 20)
	a.upload(one, two, three)

	// The sender cancels mid-file.
	b.fileClick("one.bin", "button.ok")
	a.waitLong("one.bin held", fileJS("one.bin")+`.acked === 2 << 20`)
	b.waitLong("one.bin half there", fileJS("one.bin")+`.done === 2 << 20`)
	a.fileClick("one.bin", `button[data-i18n="cancel"]`)
	a.fileStatus("one.bin", "cancelled")
	b.fileStatus("one.bin", "cancelled")
	if got := b.rowText("one.bin"); got != "cara cancelled the transfer." {
		t.Errorf("receiver's text %q", got)
	}
	if got := a.rowText("one.bin"); got != "You cancelled the transfer." {
		t.Errorf("sender's text %q", got)
	}

	// The receiver cancels mid-file.
	b.fileClick("two.bin", "button.ok")
	a.waitLong("two.bin held", fileJS("two.bin")+`.acked === 2 << 20`)
	b.fileClick("two.bin", `button[data-i18n="cancel"]`)
	b.fileStatus("two.bin", "cancelled")
	a.fileStatus("two.bin", "cancelled")
	if got := a.rowText("two.bin"); got != "cole cancelled the transfer." {
		t.Errorf("sender's text %q", got)
	}

	// The receiver declines.
	b.fileClick("three.bin", `button[data-i18n="decline"]`)
	a.fileStatus("three.bin", "declined")
	b.fileStatus("three.bin", "declined")
	a.release()

	// One bit flipped in flight: the hash check fails on both sides and
	// nothing is offered for saving.
	eval[bool](a, `(__files.tamper = true, true)`)
	a.upload(four)
	b.fileClick("four.bin", "button.ok")
	b.fileStatus("four.bin", "failed")
	a.fileStatus("four.bin", "failed")
	for _, p := range []*peer{a, b} {
		if got := p.rowText("four.bin"); got != "Failed: the file arrived damaged (SHA-256 mismatch) and was not saved." {
			t.Errorf("%s: text %q", p.name, got)
		}
	}
	if eval[bool](b, fileJS("four.bin")+`.file !== undefined || !!document.querySelector('#log a.save:not([hidden])')`) {
		t.Error("the damaged file is offered for saving")
	}

	// Garbage on the file channel: ignored, or the end of the one transfer
	// it names, never the call.
	a.hold(1 << 20)
	a.upload(five)
	b.fileClick("five.bin", "button.ok")
	a.waitLong("five.bin held", fileJS("five.bin")+`.acked === 1 << 20`)
	eval[bool](a, `(() => { const fc = __files.fc;
		fc.send('not json'); fc.send('{"t":"offer","id":"x","n":-1}'); fc.send(new Uint8Array(5));
		const c = new Uint8Array(40); new DataView(c.buffer).setUint32(0, 999); fc.send(c);
		return true; })()`)
	b.wait("logged", `state.log.filter((l) => l.startsWith('files: bad message')).length >= 2 && state.log.some((l) => l.startsWith('files: offer refused'))`)
	b.fileStatus("five.bin", "receiving")
	// A chunk at the wrong offset for the live transfer ends it.
	eval[bool](a, fmt.Sprintf(`(() => { const c = new Uint8Array(40); const v = new DataView(c.buffer);
		v.setUint32(0, %s.n); v.setFloat64(4, 0); __files.fc.send(c); return true; })()`, fileJS("five.bin")))
	b.fileStatus("five.bin", "failed")
	a.fileStatus("five.bin", "failed")
	if got := b.rowText("five.bin"); !strings.HasPrefix(got, "Failed: invalid data") {
		t.Errorf("receiver's text %q", got)
	}
	a.release()
	// Random frames, text and binary, some naming the transfers that are
	// over: no exception (the harness fails on any), no state changes.
	eval[bool](a, `(() => { const fc = __files.fc, ids = state.files.map((f) => f.id).concat(['zz']);
		const ts = ['offer', 'accept', 'decline', 'cancel', 'ack', 'end', 'done', 'x'];
		const any = () => [0, -1, 1.5, 2 ** 53, 'x', null, {}, [], true, 1 << 20][Math.floor(Math.random() * 10)];
		for (let i = 0; i < 300; i++) {
			if (i % 3) fc.send(JSON.stringify({ t: ts[i % 8], id: ids[i % ids.length], n: any(), off: any(), size: any(), name: any(), type: any(), hash: any(), ok: any() }));
			else { const c = crypto.getRandomValues(new Uint8Array(1 + (i % 40))); fc.send(c); }
		}
		fc.send('{"t":"ping","id":"end-of-noise"}');
		return true; })()`)
	b.wait("noise read", `state.log.length > 0`)
	for _, n := range []string{"one.bin", "two.bin", "three.bin", "four.bin", "five.bin"} {
		if s := eval[string](b, fileJS(n)+`.status`); s == "receiving" || s == "done" {
			t.Errorf("%s: %s after the noise", n, s)
		}
	}
	a.callState("connected", "cole")
	b.callState("connected", "cara")
	a.say("still talking")
	b.got("still talking")
	// Cancelled, declined and failed: nothing of them stays on disk.
	b.noOPFSFiles()
}

// TestFileResume: an ICE restart in the middle of a file, then the
// connection lost in the middle of another and a new call between the
// same two: the transfer goes on from the last confirmed piece, and both
// files arrive with the sender's SHA-256, once into each sink: the disk
// (the sink worker writes each piece at its offset), and memory
// (?filemem=1, as a browser without the file system API does), where the
// receiver also refuses an offer above its memory limit.
func TestFileResume(t *testing.T) {
	for _, memory := range []bool{false, true} {
		t.Run(map[bool]string{false: "disk", true: "memory"}[memory], func(t *testing.T) { fileResume(t, memory) })
	}
}

func fileResume(t *testing.T, memory bool) {
	ctx := browserTestFor(t, fileDeadline)
	srv := startServer(t)
	query := ""
	if memory {
		query = "filemem=1"
	}
	a := newPeer(t, ctx, srv.URL(""), "rae")
	b := newPeer(t, ctx, srv.URL(query), "ray")
	for _, p := range []*peer{a, b} {
		eval[any](p, recordPCs)
	}
	a.login("rae")
	b.login("ray")
	connect(t, a, b, "rae", "ray")
	dir := t.TempDir()
	one, oneSum := writeFile(t, dir, "one.bin", 5<<20+7, 8)
	two, twoSum := writeFile(t, dir, "two.bin", 6<<20+9, 9)

	a.hold(2 << 20)
	a.upload(one)
	b.fileClick("one.bin", "button.ok")
	a.waitLong("one.bin held", fileJS("one.bin")+`.acked === 2 << 20`)
	const ufrag = `(window.__pcs.at(-1).currentLocalDescription.sdp.match(/a=ice-ufrag:(\S+)/) || [])[1]`
	before := map[*peer]string{a: eval[string](a, ufrag), b: eval[string](b, ufrag)}
	eval[bool](a, `(window.__pcs.at(-1).restartIce(), true)`)
	for _, p := range []*peer{a, b} {
		p.wait("new ICE credentials", fmt.Sprintf(`(() => { const pc = window.__pcs.at(-1);
			return pc.signalingState === 'stable' && %s !== %q &&
				['connected', 'completed'].includes(pc.iceConnectionState); })()`, ufrag, before[p]))
	}
	a.release()
	checkReceived(t, a, b, "one.bin", oneSum)

	// The connection goes away behind the pages' backs mid-file.
	a.hold(3 << 20)
	a.upload(two)
	b.fileClick("two.bin", "button.ok")
	a.waitLong("two.bin held", fileJS("two.bin")+`.acked === 3 << 20`)
	eval[bool](a, `(window.__pcs.at(-1).close(), true)`)
	b.ended("end.lost")
	b.fileStatus("two.bin", "paused")
	if got := b.rowText("two.bin"); got != "Paused: connection lost. It resumes when you call rae again." {
		t.Errorf("paused text %q", got)
	}
	a.wait("ended", `state.call.state === 'ended'`)
	a.release()
	a.do("close", chromedp.Click(chromedp.CSS("#close")))
	connect(t, a, b, "rae", "ray")
	checkReceived(t, a, b, "two.bin", twoSum)
	if got := eval[int](b, fileJS("two.bin")+`.resumedAt`); got != 3<<20 {
		t.Errorf("resumed at %d, want %d", got, 3<<20)
	}
	if got := eval[bool](b, fileJS("two.bin")+`.sink.disk`); got == memory {
		t.Errorf("streamed to disk: %v, with ?filemem=1: %v", got, memory)
	}
	if got := eval[int](b, `state.files.length`); got != 2 {
		t.Errorf("receiver lists %d transfers, want 2", got)
	}
	if !memory {
		return
	}

	// An offer above the memory limit cannot be accepted, and says why.
	eval[bool](a, `(__files.fc.send(JSON.stringify({t: 'offer', id: 'huge', n: 77, name: 'huge.iso', size: 300e6, type: ''})), true)`)
	b.fileStatus("huge.iso", "offered")
	if got := b.rowText("huge.iso"); got != "Too big: this browser cannot save to disk as it receives, so up to 268 MB only." {
		t.Errorf("text %q", got)
	}
	if !eval[bool](b, `[...document.querySelectorAll('#log li.file')].find((li) => li.dataset.fid === 'huge').querySelector('button.ok').disabled`) {
		t.Error("an offer above the limit can be accepted")
	}
}

// crossFiles is TestCrossBrowser's "files" case: for each caller, callee
// pair, the caller sends a generated file of a few MiB (and an empty one)
// and the callee's copy must have the SHA-256 of the sender's bytes.
func crossFiles(t *testing.T, pairs [][2]*tab) {
	for _, p := range pairs {
		a, b := p[0], p[1]
		dial(a, b)
		name := "from-" + a.browser + "-to-" + b.browser + ".bin"
		want := tabEval[string](a, fmt.Sprintf(`(async () => {
  const n = (3 << 20) + 123, bytes = new Uint8Array(n);
  for (let i = 0, x = 12345; i < n; i++) x = (Math.imul(x, 1103515245) + 12345) >>> 0, bytes[i] = x >>> 24;
  __files.sendFiles([new File([bytes], %q), new File([], 'empty-' + %q)]);
  const d = await crypto.subtle.digest('SHA-256', bytes);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, '0')).join('');
})()`, name, name))
		for _, n := range []string{name, "empty-" + name} {
			row := fmt.Sprintf(`[...document.querySelectorAll('#log li.file')].find((li) => li.dataset.fid === (%s || {}).id)`, fileJS(n))
			b.wait("offer of "+n, fmt.Sprintf(`(%s || {}).status === 'offered' && %s`, fileJS(n), row))
			b.click(fmt.Sprintf(`#log li.file[data-fid=%q] button.ok`, tabEval[string](b, fileJS(n)+`.id`)))
			for _, u := range []*tab{a, b} {
				if !u.within(byteWait, fmt.Sprintf(`(%s || {}).status === 'done'`, fileJS(n))) {
					t.Fatalf("%v: %s not done", u, n)
				}
			}
			if hs, hr := tabEval[string](a, fileJS(n)+`.hash`), tabEval[string](b, fileJS(n)+`.hash`); len(hs) != 64 || hs != hr {
				t.Errorf("%v -> %v: %s: transfer hashes %q and %q", a, b, n, hs, hr)
			}
		}
		if got := tabEval[string](b, wholeSHA+fmt.Sprintf(`(%q)`, name)); got != want {
			t.Errorf("%v -> %v: received SHA-256 %s, sent %s", a, b, got, want)
		}
		if !tabEval[bool](b, fileJS(name)+`.sink.disk`) {
			t.Errorf("%v: the file was not streamed to disk", b)
		}
		hangUp(a, b)
	}
}
