package e2e

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// writePNG writes a small gradient picture.
func writePNG(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 160, 90))
	for y := range 90 {
		for x := range 160 {
			img.Set(x, y, color.RGBA{uint8(x * 255 / 160), uint8(y * 255 / 90), 180, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return saveFile(t, dir, name, buf.Bytes())
}

// TestFileScreenshots writes PNGs of the file transfer states into
// $P2PCHAT_SCREENSHOTS (`make screenshots`): an offer, progress on both
// sides, done with a picture's preview, cancelled, failed (hash mismatch),
// on a 360 px phone and in Traditional Chinese.
func TestFileScreenshots(t *testing.T) {
	dir := os.Getenv("P2PCHAT_SCREENSHOTS")
	if dir == "" {
		t.Skip("set P2PCHAT_SCREENSHOTS=<dir> to write screenshots")
	}
	ctx := browserTestFor(t, 2*fileDeadline)
	srv := startServer(t)
	desk := peerOptions{width: 1000, height: 700, lang: "en-US"}
	alice := newPeer(t, ctx, srv.URL(""), "alice", desk)
	bob := newPeer(t, ctx, srv.URL(""), "bob", desk)
	mei := newPeer(t, ctx, srv.URL(""), "mei", peerOptions{width: 1000, height: 700, lang: "zh-TW"})
	dan := newPeer(t, ctx, srv.URL(""), "dan", desk)
	for _, p := range []*peer{alice, bob, mei} {
		p.do("desktop size", chromedp.EmulateViewport(1000, 700))
	}
	dan.do("phone size", chromedp.EmulateViewport(360, 740, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	shot := func(p *peer, name string) {
		t.Helper()
		p.do("scroll", chromedp.Evaluate[chromedp.Void](`(() => { const l = document.querySelector('#log'); l.scrollTop = l.scrollHeight; })()`))
		p.do("settle", chromedp.Sleep(200*time.Millisecond))
		png, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("%s: screenshot %s: %v", p.name, name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", filepath.Join(dir, name))
	}
	files := t.TempDir()
	pic, _ := writePNG(t, files, "sunset.png")
	video, _ := writeFile(t, files, "holiday-video.mp4", 8<<20, 11)
	notes, _ := writeFile(t, files, "notes.pdf", 3<<20, 12)
	slides, _ := writeFile(t, files, "slides.key", 2<<20, 13)
	report, _ := writeFile(t, files, "期末報告.pdf", 6<<20, 14)

	for _, p := range []*peer{alice, bob, mei, dan} {
		p.login(p.name)
	}
	connect(t, alice, bob, "alice", "bob")
	alice.say("Here are the pictures from Saturday, and the video.")
	bob.got("Here are the pictures from Saturday, and the video.")
	alice.hold(3 << 20)
	alice.upload(pic, video)
	bob.fileStatus("holiday-video.mp4", "offered")
	shot(bob, "file-offer.png")
	bob.fileClick("sunset.png", "button.ok")
	bob.fileClick("holiday-video.mp4", "button.ok")
	alice.waitLong("held", fileJS("holiday-video.mp4")+`.acked === 3 << 20`)
	bob.fileStatus("sunset.png", "done")
	shot(alice, "file-progress-sender.png")
	shot(bob, "file-progress-receiver.png")
	alice.release()
	bob.fileStatus("holiday-video.mp4", "done")
	bob.wait("preview", `[...document.querySelectorAll('img.preview')].some((i) => !i.hidden && i.complete && i.naturalWidth > 0)`)
	shot(bob, "file-done.png")
	alice.hold(1 << 20)
	alice.upload(notes)
	bob.fileClick("notes.pdf", "button.ok")
	alice.waitLong("held", fileJS("notes.pdf")+`.acked === 1 << 20`)
	bob.fileClick("notes.pdf", `button[data-i18n="cancel"]`)
	alice.fileStatus("notes.pdf", "cancelled")
	alice.release()
	shot(alice, "file-cancelled.png")
	eval[bool](alice, `(__files.tamper = true, true)`)
	alice.upload(slides)
	bob.fileClick("slides.key", "button.ok")
	bob.fileStatus("slides.key", "failed")
	shot(bob, "file-failed.png")

	connect(t, mei, dan, "mei", "dan")
	mei.hold(2 << 20)
	mei.upload(pic, report)
	dan.fileClick("sunset.png", "button.ok")
	dan.fileStatus("sunset.png", "done")
	dan.fileClick("期末報告.pdf", "button.ok")
	mei.waitLong("held", fileJS("期末報告.pdf")+`.acked === 2 << 20`)
	shot(mei, "file-zh-tw.png")
	shot(dan, "file-mobile.png")
	mei.release()
}
