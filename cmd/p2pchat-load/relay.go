package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// epoch is the zero of the timestamps embedded in relayed payloads. Sender
// and receiver are in this process, so time.Since(epoch) is a monotonic
// clock both sides share: one-way latency needs no clock sync.
var epoch = time.Now()

func now() int64 { return int64(time.Since(epoch)) }

// party is one side of a call pair. Its reader goroutine owns lat and last.
type party struct {
	c        *websocket.Conn
	name     string
	peer     string
	other    *party          // the other side of the pair
	sent     [3]atomic.Int64 // by msgKind, what this party sent
	got      [3]atomic.Int64 // by msgKind, what it received
	lat      []time.Duration
	last     int64 // last sequence number received, to spot reordering
	readDone chan struct{}
}

// msgKind indexes the relayed message types the tool sends.
type msgKind int

const (
	kindOffer msgKind = iota
	kindCandidate
	kindAnswer
)

var kindNames = [...]string{"offer", "candidate", "answer"}

// payloads builds relay messages of realistic sizes with a sequence number
// and a send timestamp inside the payload, where the server relays them
// untouched.
type payloads struct {
	sdp  string // JSON-escaped filler for offers and answers
	cand string
}

// sdpLines look like the SDP of a browser data-channel offer.
var sdpLines = []string{
	`v=0`, `o=- 4611731400430051336 2 IN IP4 127.0.0.1`, `s=-`, `t=0 0`,
	`a=group:BUNDLE 0`, `a=extmap-allow-mixed`, `a=msid-semantic: WMS`,
	`m=application 9 UDP/DTLS/SCTP webrtc-datachannel`, `c=IN IP4 0.0.0.0`,
	`a=ice-ufrag:Xk3v`, `a=ice-pwd:8hT2LwQ5fZp1rN9yK0mBc7dE`, `a=ice-options:trickle`,
	`a=fingerprint:sha-256 3B:8A:1F:90:CC:2E:45:D1:0B:7E:A4:66:F2:19:5C:83:DE:27:B0:4A:91:6D:E8:3C:50:12:AF:7B:C4:09:E5:36`,
	`a=setup:actpass`, `a=mid:0`, `a=sctp-port:5000`, `a=max-message-size:262144`,
}

func newPayloads(offerSize, candSize int) payloads {
	var sdp strings.Builder
	for i := 0; sdp.Len() < offerSize; i++ {
		sdp.WriteString(sdpLines[i%len(sdpLines)])
		sdp.WriteString(`\r\n`)
	}
	// The envelope ({"type":"offer","name":…,"offer":{…"t":…}}) is ~100
	// bytes; trim the filler so the whole frame is close to offerSize.
	s := sdp.String()[:max(0, offerSize-110)]
	s = strings.TrimSuffix(s, `\`)
	cand := `candidate:842163049 1 udp 1677729535 203.0.113.7 49152 typ srflx raddr 192.168.1.20 rport 49152 generation 0 ufrag Xk3v network-cost 999`
	cand = cand[:max(0, min(len(cand), candSize-120))]
	return payloads{sdp: s, cand: cand}
}

// build appends one relay message of kind k to target onto b.
func (pl payloads) build(b []byte, k msgKind, target string, seq int64) []byte {
	typ := kindNames[k]
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","name":`...)
	b = strconv.AppendQuote(b, target)
	b = append(b, `,"`...)
	b = append(b, typ...)
	b = append(b, `":{`...)
	if k != kindCandidate {
		b = append(b, `"type":"`...)
		b = append(b, typ...)
		b = append(b, `",`...)
	}
	b = append(b, `"s":`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, now(), 10)
	if k == kindCandidate {
		b = append(b, `,"candidate":"`...)
		b = append(b, pl.cand...)
		b = append(b, `","sdpMid":"0","sdpMLineIndex":0}}`...)
		return b
	}
	b = append(b, `,"sdp":"`...)
	b = append(b, pl.sdp...)
	return append(b, `"}}`...)
}

// read consumes one party's incoming relays; a callee answers each offer.
// Only messages sent at or after latFrom (see now) count towards latency,
// so the warm-up does not colour the figures.
func (p *party) read(ctx context.Context, cfg *config, pl payloads, errs *counters, stopping *atomic.Bool, latFrom int64) {
	defer close(p.readDone)
	buf := make([]byte, 0, 4096)
	out := make([]byte, 0, 2048)
	for {
		var err error
		buf, err = readMsg(ctx, p.c, buf)
		if err != nil {
			if ctx.Err() == nil && !stopping.Load() {
				errs.add("closed", 1, fmt.Errorf("%s: connection ended: %w", p.name, err))
			}
			return
		}
		recv := now()
		if stopping.Load() {
			continue // leave/offline notices of the teardown
		}
		typ := string(field(buf, "type"))
		k := -1
		for i, n := range kindNames {
			if typ == n {
				k = i
			}
		}
		switch {
		case typ == "presence" && cfg.presence:
			continue
		case typ == "error":
			errs.add("server-error", 1, fmt.Errorf("%s got %.160q", p.name, buf))
			continue
		case k < 0 || !p.fromPeer(buf, msgKind(k), cfg.tutorial):
			errs.add("unexpected", 1, fmt.Errorf("%s got %.160q", p.name, buf))
			continue
		}
		ts, ok1 := intField(buf, "t")
		seq, ok2 := intField(buf, "s")
		if !ok1 || !ok2 || seq <= p.last {
			errs.add("unexpected", 1, fmt.Errorf("%s: bad or out-of-order payload (last seq %d): %.160q", p.name, p.last, buf))
			continue
		}
		p.last = seq
		if ts >= latFrom {
			p.lat = append(p.lat, time.Duration(recv-ts))
		}
		p.got[k].Add(1)
		if msgKind(k) == kindOffer {
			out = pl.build(out[:0], kindAnswer, p.peer, p.sent[kindAnswer].Load()+1)
			if err := p.c.Write(ctx, websocket.MessageText, out); err != nil {
				errs.add("send", 1, fmt.Errorf("%s answering: %w", p.name, err))
				return
			}
			p.sent[kindAnswer].Add(1)
		}
	}
}

// fromPeer reports whether a relayed message of kind k names this party's
// peer as its sender. The tutorial's server names the sender on offers
// only; with tutorial, a message without a name is taken as the peer's
// (each party talks to one peer), but a wrong name is still wrong.
func (p *party) fromPeer(msg []byte, k msgKind, tutorial bool) bool {
	name := field(msg, "name")
	if name == nil && tutorial && k != kindOffer {
		return true
	}
	return string(name) == p.peer
}

// send paces one caller: offer, candidate, offer, … every interval, from
// start+offset until end. The schedule is open-loop: a late send does not
// push the following ones back. It returns how far behind schedule the
// caller fell at worst.
func (p *party) send(ctx context.Context, pl payloads, errs *counters, start time.Time, offset, interval time.Duration, end time.Time) time.Duration {
	b := make([]byte, 0, 2048)
	var lag time.Duration
	for k := int64(0); ctx.Err() == nil; k++ {
		at := start.Add(offset + time.Duration(k)*interval)
		if !at.Before(end) {
			break
		}
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		} else {
			lag = max(lag, -d)
		}
		kind := kindOffer
		if k%2 == 1 {
			kind = kindCandidate
		}
		b = pl.build(b[:0], kind, p.peer, k+1)
		if err := p.c.Write(ctx, websocket.MessageText, b); err != nil {
			errs.add("send", 1, fmt.Errorf("%s sending: %w", p.name, err))
			return lag
		}
		p.sent[kind].Add(1)
	}
	return lag
}

// runRelay runs cfg.pairs caller/callee pairs at cfg.rate offers+candidates
// per second in all, optionally among cfg.idle idle users (held by child
// processes with -procs). With several instances, the servers' RSS is
// read once the idle users are in, per instance.
func runRelay(ctx context.Context, cfg *config, ds []*dialer, errs *counters, res *result) error {
	if cfg.rate <= 0 || cfg.pairs <= 0 {
		return fmt.Errorf("relay mode needs -pairs > 0 and -rate > 0")
	}
	d := ds[0] // stalled users and their flooders
	rss := startRSS(cfg)
	var shards *shardSet
	if cfg.idle > 0 {
		_, sh, release, err := holdIdle(ctx, cfg, ds, errs, cfg.idle, res)
		if err != nil {
			return err
		}
		defer release()
		shards = sh
	}
	var rssBefore int64
	if len(ds) > 1 && cfg.pid > 0 {
		rssBefore, _ = rss.stop(res, spread(0, cfg.idle, len(ds)))
		logInstances(cfg.log, res)
	} else if cfg.pid > 0 {
		rssBefore = rss.before[0]
	}
	var st *stalled
	if cfg.stalled > 0 {
		st = connectStalled(ctx, cfg, d, errs, cfg.stalled)
		defer st.close()
		fmt.Fprintf(cfg.log, "logged in %d users that never read\n", cfg.stalled)
	}
	pl := newPayloads(cfg.offerSize, cfg.candSize)
	callers, callees, err := connectPairs(ctx, cfg, ds, errs)
	if err != nil {
		return err
	}
	stopRSS := make(chan struct{})
	defer func() {
		select {
		case <-stopRSS:
		default:
			close(stopRSS)
		}
	}()
	var peak <-chan int64
	if cfg.pid > 0 {
		peak = rssPeak(cfg.pid, stopRSS)
	}
	var stopping atomic.Bool
	all := append(append([]*party(nil), callers...), callees...)
	res.Logins += int64(len(all))
	start := time.Now().Add(10 * time.Millisecond)
	latFrom := int64(start.Add(cfg.warmup).Sub(epoch))
	for _, p := range all {
		go p.read(ctx, cfg, pl, errs, &stopping, latFrom)
	}
	var lat samples
	var closeOnce sync.Once
	closeAll := func() {
		closeOnce.Do(func() {
			stopping.Store(true)
			var wg sync.WaitGroup
			for _, p := range all {
				wg.Go(func() { p.c.Close(websocket.StatusNormalClosure, ""); <-p.readDone })
			}
			wg.Wait()
			for _, p := range all {
				lat.add(p.lat)
			}
		})
	}
	defer closeAll()

	interval := time.Duration(float64(time.Second) * float64(cfg.pairs) / cfg.rate)
	end := start.Add(cfg.warmup + cfg.duration)
	flooded := make(chan struct{})
	if st != nil {
		go func() {
			defer close(flooded)
			time.Sleep(time.Until(start))
			st.flood(ctx, cfg, d, errs)
		}()
	} else {
		close(flooded)
	}
	var lagMu sync.Mutex
	var lag time.Duration
	var senders sync.WaitGroup
	for i, p := range callers {
		offset := interval * time.Duration(i) / time.Duration(len(callers))
		senders.Go(func() {
			l := p.send(ctx, pl, errs, start, offset, interval, end)
			lagMu.Lock()
			lag = max(lag, l)
			lagMu.Unlock()
		})
	}

	var churned sync.WaitGroup
	if cfg.churn > 0 {
		churned.Go(func() {
			time.Sleep(time.Until(start))
			var every time.Duration
			if cfg.churnRate > 0 {
				every = time.Duration(float64(time.Second) * float64(cfg.churn) / cfg.churnRate)
			}
			n, _, ls := churn(ctx, cfg, ds, errs, cfg.churn, 0, every, end, cfg.prefix+"x")
			res.ChurnLogins, res.ChurnLogin = n, &ls
			res.ChurnPerSec = round3(float64(n) / end.Sub(start).Seconds())
		})
	}

	// Measure CPU and throughput after the warm-up, until everything sent
	// has arrived (or the drain time runs out).
	time.Sleep(time.Until(start.Add(cfg.warmup)))
	got0 := received(all)
	meter := startCPU(cfg, shards.pids())
	senders.Wait()
	sendEnd := time.Now()
	drainUntil := sendEnd.Add(cfg.drain)
	for !drained(callers) && time.Now().Before(drainUntil) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	res.CPU = meter.stop()
	got := received(all) - got0
	churned.Wait()
	if cfg.churn > 0 {
		fmt.Fprintf(cfg.log, "%d logins by %d churn workers meanwhile (%.0f/s); login %v\n", res.ChurnLogins, cfg.churn, res.ChurnPerSec, *res.ChurnLogin)
	}
	<-flooded
	close(stopRSS)
	if st != nil {
		res.StalledCutOff, res.FloodOffers = st.nCut.Load(), st.floodTx.Load()
		if !st.allCut() {
			errs.add("stalled-not-cut", int64(cfg.stalled)-res.StalledCutOff,
				fmt.Errorf("%d of %d users that never read were still connected at the end", int64(cfg.stalled)-res.StalledCutOff, cfg.stalled))
		}
		fmt.Fprintf(cfg.log, "%d flood offers; %d of %d users that never read were cut off\n", res.FloodOffers, res.StalledCutOff, cfg.stalled)
	}

	lost := int64(0)
	for i, c := range callers {
		e := callees[i]
		lost += c.sent[kindOffer].Load() - e.got[kindOffer].Load()
		lost += c.sent[kindCandidate].Load() - e.got[kindCandidate].Load()
		lost += e.sent[kindAnswer].Load() - c.got[kindAnswer].Load()
		res.SentOffers += c.sent[kindOffer].Load()
		res.SentCandidates += c.sent[kindCandidate].Load()
		res.SentAnswers += e.sent[kindAnswer].Load()
	}
	if lost > 0 {
		errs.add("lost", lost, fmt.Errorf("%d relayed messages did not arrive within %v", lost, cfg.drain))
	}
	closeAll() // stops the readers, so their latency slices can be read
	res.Received = got
	secs := sendEnd.Sub(start.Add(cfg.warmup)).Seconds()
	res.RelayedPerSec = round3(float64(got) / secs)
	res.OfferedPerSec = round3(float64(res.SentOffers+res.SentCandidates) / sendEnd.Sub(start).Seconds())
	res.SenderLagMaxMs = ms(lag)
	ls := lat.summary()
	res.Latency = &ls
	fmt.Fprintf(cfg.log, "sent %d offers, %d candidates, %d answers; %d relayed in the %.1fs window (%.0f/s); lost %d\n",
		res.SentOffers, res.SentCandidates, res.SentAnswers, got, secs, res.RelayedPerSec, lost)
	fmt.Fprintf(cfg.log, "one-way latency %v; worst sender lag %.1fms\n", ls, res.SenderLagMaxMs)
	fmt.Fprintln(cfg.log, res.CPU)
	if cfg.pid > 0 {
		rss := sumRSS(cfg.pids)
		res.Server = &serverFigures{PID: cfg.pid, RSSBeforeKiB: rssBefore, RSSAfterKiB: rss, RSSPeakKiB: <-peak}
		if cfg.rssLimit > 0 && res.Server.RSSPeakKiB > cfg.rssLimit {
			errs.add("rss-limit", 1, fmt.Errorf("server RSS peaked at %d KiB, over -rss-limit %d KiB", res.Server.RSSPeakKiB, cfg.rssLimit))
		}
		if got > 0 {
			res.Server.CPUPerMsgUs = round3(res.CPU.ServerCPUS * 1e6 / float64(got))
			res.Server.SystemPerMsgUs = round3(res.CPU.ServerSystemS * 1e6 / float64(got))
		}
		fmt.Fprintf(cfg.log, "server CPU per relayed message %.1fµs (%.1fµs in the kernel); RSS %d KiB, peak %d KiB\n",
			res.Server.CPUPerMsgUs, res.Server.SystemPerMsgUs, rss, res.Server.RSSPeakKiB)
	}
	return nil
}

// connectPairs logs in callees e<i> and callers c<i>, spread over the
// instances of ds (see pairInstances).
func connectPairs(ctx context.Context, cfg *config, ds []*dialer, errs *counters) (callers, callees []*party, err error) {
	mk := func(role, peerRole string) ([]*party, error) {
		ps := make([]*party, cfg.pairs)
		var wg sync.WaitGroup
		var failed atomic.Int64
		sem := make(chan struct{}, cfg.concurrency)
		for i := range ps {
			ps[i] = &party{name: cfg.prefix + role + strconv.Itoa(i), peer: cfg.prefix + peerRole + strconv.Itoa(i), readDone: make(chan struct{})}
			callee, caller := pairInstances(i, len(ds), cfg.cross)
			d := ds[callee]
			if role == "c" {
				d = ds[caller]
			}
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				opCtx, cancel := context.WithTimeout(ctx, cfg.timeout)
				defer cancel()
				c, err := d.dial(opCtx)
				if err == nil {
					if err = login(opCtx, c, ps[i].name, cfg.presence); err != nil {
						c.CloseNow()
					}
				}
				if err != nil {
					errs.classify(err)
					failed.Add(1)
					return
				}
				ps[i].c = c
			})
		}
		wg.Wait()
		if n := failed.Load(); n > 0 {
			for _, p := range ps {
				if p.c != nil {
					p.c.CloseNow()
				}
			}
			return nil, fmt.Errorf("%d of %d %s logins failed", n, len(ps), role)
		}
		return ps, nil
	}
	if callees, err = mk("e", "c"); err != nil {
		return nil, nil, err
	}
	if callers, err = mk("c", "e"); err != nil {
		for _, p := range callees {
			p.c.CloseNow()
		}
		return nil, nil, err
	}
	for i, c := range callers {
		c.other, callees[i].other = callees[i], c
	}
	return callers, callees, nil
}

func received(ps []*party) int64 {
	var n int64
	for _, p := range ps {
		for k := range p.got {
			n += p.got[k].Load()
		}
	}
	return n
}

// drained tells whether every offer and candidate sent has arrived and been
// answered, and every answer has arrived.
func drained(callers []*party) bool {
	for _, c := range callers {
		e := c.other
		if c.sent[kindOffer].Load() != e.got[kindOffer].Load() ||
			c.sent[kindCandidate].Load() != e.got[kindCandidate].Load() ||
			e.sent[kindAnswer].Load() != c.got[kindAnswer].Load() ||
			e.got[kindOffer].Load() != e.sent[kindAnswer].Load() {
			return false
		}
	}
	return true
}
