package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/heapprofiler"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The benchmark's page-side code: a bare channel pushing max-size messages
// (the raw limit), and a PairDrop-style sender (64,000-byte chunks, wait
// for an acknowledgement every 1,000,000 bytes; the receiver keeps the
// chunks, as PairDrop does). Both run on extra negotiated channels of the
// call's own RTCPeerConnection, next to p2pchat's file channel.
const benchJS = `window.__bench = {
  chan(id) { return __files.link.pc.createDataChannel('bench' + id, { negotiated: true, id }); },
  // Receiver: count bytes; answer "part" messages; note the last byte's time.
  recv(id, total, keep) {
    const dc = this.chan(id), r = { got: 0, end: 0, parts: [] };
    dc.binaryType = 'arraybuffer';
    dc.onmessage = (e) => {
      if (typeof e.data === 'string') return dc.send('ack');
      r.got += e.data.byteLength;
      if (keep) r.parts.push(e.data);
      if (r.got >= total) { r.end = Date.now(); if (keep) r.blob = new Blob(r.parts), r.parts = []; }
    };
    return new Promise((ok) => dc.onopen = ok).then(() => { this['r' + id] = r; return true; });
  },
  send(id) {
    const dc = this.chan(id);
    dc.binaryType = 'arraybuffer';
    return new Promise((ok) => dc.onopen = ok).then(() => { this['s' + id] = dc; return true; });
  },
  // Raw: one preallocated message, backpressure on bufferedAmount only.
  async raw(dc, total) {
    const pc = __files.link.pc;
    const size = Math.min(pc.sctp.maxMessageSize, 262144), buf = new ArrayBuffer(size);
    dc.bufferedAmountLowThreshold = 2 << 20;
    this.start = Date.now();
    for (let sent = 0; sent < total; sent += size) {
      if (dc.bufferedAmount > 8 << 20) await new Promise((ok) => dc.onbufferedamountlow = ok);
      dc.send(total - sent < size ? buf.slice(0, total - sent) : buf);
    }
  },
  // PairDrop: read 64,000 bytes, send, and after each 1,000,000 wait for "ack".
  async pairdrop(dc, file) {
    this.start = Date.now();
    let part = 0;
    for (let off = 0; off < file.size; off += 64000) {
      dc.send(await file.slice(off, off + 64000).arrayBuffer());
      part += 64000;
      if (part >= 1e6 && off + 64000 < file.size) {
        part = 0;
        const acked = new Promise((ok) => dc.onmessage = ok);
        dc.send('part');
        await acked;
      }
    }
  },
};
// Note when p2pchat's transfers start sending and are done (checked).
{ const h = __files.h, on = h.onChange;
  h.onChange = (x, p) => { if (x.status === 'sending' && !x.startAt) x.startAt = Date.now();
    if (x.status === 'done' && !x.doneAt) x.doneAt = Date.now(); return on(x, p); }; }
true`

// heapBytes is the page's JavaScript heap in use plus ArrayBuffer backing
// stores, after a garbage collection if gc is set.
func heapBytes(p *peer, gc bool) float64 {
	p.t.Helper()
	var used, backing float64
	err := chromedp.Do(p.ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if gc {
			if _, err := cdp.Call(ctx, tg, heapprofiler.CollectGarbage, cdp.Empty{}); err != nil {
				return err
			}
		}
		r, err := cdp.Call(ctx, tg, runtime.GetHeapUsage, cdp.Empty{})
		if err != nil {
			return err
		}
		used, backing = r.UsedSize, r.BackingStorageSize
		return nil
	}))
	if err != nil {
		p.t.Fatalf("%s: heap usage: %v", p.name, err)
	}
	return used + backing
}

// benchFile writes n pseudo-random bytes to a file.
func benchFile(t *testing.T, dir string, n int64) string {
	t.Helper()
	p := filepath.Join(dir, fmt.Sprintf("bench-%dMiB.bin", n>>20))
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.NewChaCha8([32]byte{7})
	buf := make([]byte, 1<<20)
	for left := n; left > 0; left -= int64(len(buf)) {
		_, _ = r.Read(buf)
		if _, err := f.Write(buf[:min(left, int64(len(buf)))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBenchFiles is `make bench-files`: throughput of the raw data channel,
// of p2pchat's file transfer (its real code, real file input, streamed to
// disk, hash checked) and of a PairDrop-style sender between two headless
// Chromiums on loopback, and the receiver's heap growth for the largest
// file. It prints a table and, last, one JSON line. Not part of make test.
func TestBenchFiles(t *testing.T) {
	if os.Getenv("P2PCHAT_BENCH_FILES") != "1" {
		t.Skip("set P2PCHAT_BENCH_FILES=1 (make bench-files)")
	}
	reps, _ := strconv.Atoi(os.Getenv("BENCH_REPS"))
	reps = max(reps, 1)
	bigMiB, _ := strconv.ParseInt(os.Getenv("BENCH_BIG_MIB"), 10, 64)
	if bigMiB == 0 {
		bigMiB = 1024
	}
	const smallMiB = 100
	ctx, cancel := context.WithTimeout(context.WithoutCancel(browserTest(t)), 20*time.Minute)
	t.Cleanup(cancel)
	srv := startServer(t)
	a := newPeer(t, ctx, srv.URL(""), "sender")
	b := newPeer(t, ctx, srv.URL(""), "receiver")
	a.login("sender")
	b.login("receiver")
	connect(t, a, b, "sender", "receiver")
	for _, p := range []*peer{a, b} {
		eval[bool](p, benchJS)
	}
	dir := t.TempDir()
	small := benchFile(t, dir, smallMiB<<20)
	big := benchFile(t, dir, bigMiB<<20)
	long := 10 * time.Minute
	mbps := func(bytes int64, ms int64) float64 { return float64(bytes) * 8 / float64(ms) / 1000 }

	// p2pchat: pick the file in the real input, accept, wait for "done".
	n := 0
	// The receiver's heap is sampled every 200 ms; every fifth sample
	// collects garbage first. Without that, the peak includes received
	// chunks already dropped but not yet collected (V8 collects when
	// about 64 MiB of ArrayBuffers have been allocated since the last
	// collection); with it, what the page really holds.
	p2p := func(path string, size int64, heap bool) (float64, float64, float64) {
		n++
		name := filepath.Base(path)
		var before, peak, live float64
		if heap {
			before = heapBytes(b, true)
			peak, live = before, before
		}
		a.upload(path)
		x := fmt.Sprintf(`state.files[%d]`, n-1)
		b.wait("offer", x+` && `+x+`.status === 'offered'`)
		eval[bool](b, fmt.Sprintf(`([...document.querySelectorAll('#log li.file')].find((li) => li.dataset.fid === %s.id).querySelector('button.ok').click(), true)`, x))
		for i, deadline := 0, time.Now().Add(long); ; i++ {
			switch {
			case !heap:
			case i%5 == 4:
				live = max(live, heapBytes(b, true))
			default:
				peak = max(peak, heapBytes(b, false))
			}
			if eval[bool](b, x+`.status === 'done' || `+x+`.status === 'failed'`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not done", name)
			}
			time.Sleep(200 * time.Millisecond)
		}
		b.fileStatus(name, "done")
		a.fileStatus(name, "done")
		if hs, hr := eval[string](a, x+`.hash`), eval[string](b, x+`.hash`); hs != hr || !eval[bool](b, x+`.sink.disk`) {
			t.Fatalf("%s: hash %s != %s, or not on disk", name, hs, hr)
		}
		ms := eval[int64](b, x+`.doneAt`) - eval[int64](a, x+`.startAt`)
		return mbps(size, ms), (max(peak, live) - before) / (1 << 20), (live - before) / (1 << 20)
	}
	// The machine's busy CPU time per transfer: with both browsers on the
	// same cores every transfer is CPU-bound, and what a sender and a
	// receiver cost per byte varies far less between runs than their rate.
	var raw, pd, p2pSmall, cpuRaw, cpuPD, cpuP2P []float64
	cpu := func(into *[]float64, f func()) {
		c0 := busyCPU(t)
		f()
		*into = append(*into, busyCPU(t)-c0)
	}
	for i := range reps {
		// Fresh channel numbers each round: a closed one's cannot be reused
		// until its stream reset completes.
		rid, pid := 10+2*i, 11+2*i
		evalAwait[bool](b, fmt.Sprintf(`__bench.recv(%d, %d)`, rid, smallMiB<<20))
		evalAwait[bool](a, fmt.Sprintf(`__bench.send(%d)`, rid))
		cpu(&cpuRaw, func() {
			eval[bool](a, fmt.Sprintf(`(__bench.raw(__bench.s%d, %d), true)`, rid, smallMiB<<20))
			b.waitFor("raw done", fmt.Sprintf(`__bench.r%d.end > 0`, rid), long)
		})
		raw = append(raw, mbps(smallMiB<<20, eval[int64](b, fmt.Sprintf(`__bench.r%d.end`, rid))-eval[int64](a, `__bench.start`)))
		cpu(&cpuP2P, func() {
			s, _, _ := p2p(small, smallMiB<<20, false)
			p2pSmall = append(p2pSmall, s)
		})
		evalAwait[bool](b, fmt.Sprintf(`__bench.recv(%d, %d, true)`, pid, smallMiB<<20))
		evalAwait[bool](a, fmt.Sprintf(`__bench.send(%d)`, pid))
		cpu(&cpuPD, func() {
			eval[bool](a, fmt.Sprintf(`(__bench.pairdrop(__bench.s%d, state.files[%d].file), true)`, pid, n-1))
			b.waitFor("pairdrop done", fmt.Sprintf(`__bench.r%d.end > 0`, pid), long)
		})
		pd = append(pd, mbps(smallMiB<<20, eval[int64](b, fmt.Sprintf(`__bench.r%d.end`, pid))-eval[int64](a, `__bench.start`)))
		eval[bool](b, fmt.Sprintf(`(__bench.r%d = null, true)`, pid))
	}
	bigMbps, heapPeak, heap := p2p(big, bigMiB<<20, true)
	med := func(v []float64) float64 {
		s := slices.Clone(v)
		slices.Sort(s)
		return s[len(s)/2]
	}
	var tab strings.Builder
	fmt.Fprintf(&tab, "\n%-34s %10s %10s %8s   runs (Mbit/s; CPU s)\n", "transfer (loopback, 2 Chromiums)", "Mbit/s", "MB/s", "CPU s")
	row := func(name string, v, c []float64) {
		cs, cr := "", ""
		if len(c) > 0 {
			cs, cr = strconv.FormatFloat(med(c), 'f', 2, 64), "; "+fmtRuns(c, 2)
		}
		fmt.Fprintf(&tab, "%-34s %10.0f %10.1f %8s   %s%s\n", name, med(v), med(v)/8, cs, fmtRuns(v, 0), cr)
	}
	row(fmt.Sprintf("(a) raw, %d MiB max-size messages", smallMiB), raw, cpuRaw)
	row(fmt.Sprintf("(b) p2pchat, %d MiB file", smallMiB), p2pSmall, cpuP2P)
	row(fmt.Sprintf("(b) p2pchat, %d MiB file", bigMiB), []float64{bigMbps}, nil)
	row(fmt.Sprintf("(c) PairDrop-style, %d MiB", smallMiB), pd, cpuPD)
	fmt.Fprintf(&tab, "CPU s: the machine's busy CPU time (all cores, /proc/stat) from the start to the end of each transfer\n")
	// The machine's speed drifts between rounds (raw alone moves by
	// half): each p2pchat round over the raw round just before it
	// compares like with like.
	var rounds []float64
	for i := range raw {
		rounds = append(rounds, p2pSmall[i]/raw[i])
	}
	fmt.Fprintf(&tab, "p2pchat/raw: %.2f of the medians; %.2f, the median of each round's (%s)\n", med(p2pSmall)/med(raw), med(rounds), fmtRuns(rounds, 2))
	fmt.Fprintf(&tab, "receiver heap growth (JS heap + ArrayBuffers) for %d MiB: %.1f MiB live at most, %.1f MiB with uncollected garbage\n", bigMiB, heap, heapPeak)
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(&tab, "load average at the end (other work on the machine skews every figure): %s", load)
	out, _ := json.Marshal(map[string]any{
		"raw_mbps": round1(med(raw)), "p2pchat_mbps": round1(med(p2pSmall)), "p2pchat_big_mbps": round1(bigMbps),
		"pairdrop_style_mbps": round1(med(pd)), "ratio": math.Round(med(p2pSmall)/med(raw)*100) / 100,
		"ratio_rounds": round2(med(rounds)),
		"raw_cpu_s":    round2(med(cpuRaw)), "p2pchat_cpu_s": round2(med(cpuP2P)), "pairdrop_style_cpu_s": round2(med(cpuPD)),
		"heap_mib": round1(heap), "heap_peak_mib": round1(heapPeak), "big_mib": bigMiB, "runs": reps, "loadavg": strings.Fields(string(load) + " ?")[0],
	})
	fmt.Println(tab.String())
	fmt.Println(string(out))
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }
func round2(v float64) float64 { return math.Round(v*100) / 100 }

func fmtRuns(v []float64, prec int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatFloat(x, 'f', prec, 64)
	}
	return strings.Join(s, " ")
}

// busyCPU is the machine's CPU time so far, in seconds, not counting idle
// and I/O wait (/proc/stat; USER_HZ is 100 on Linux).
func busyCPU(t *testing.T) float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatalf("reading /proc/stat: %v", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	var busy float64
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseFloat(f, 64)
		if i != 3 && i != 4 && i < 8 { // idle, iowait; guest time is in user already
			busy += v
		}
	}
	return busy / 100
}
