package server

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/p2pchat/p2pchat/server/signaling"
)

// TestSlowConsumerAmongManyMemoryBounded floods one client that never
// reads while several pairs keep relaying. The pairs must lose nothing
// (their worst latency is logged, not asserted: the machine may be busy),
// the slow client must be cut off, and the server's heap must
// not grow by more than one full send queue plus slack, however much is
// sent at the slow client.
//
// Not parallel: it samples the heap, which other tests would disturb.
func TestSlowConsumerAmongManyMemoryBounded(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { slowConsumerAmongMany(t, tr.start) })
	}
}

func slowConsumerAmongMany(t *testing.T, start func(testing.TB, Config) *e2eServer) {
	const (
		pairs     = 8
		perPair   = 300
		queue     = 64
		chunk     = 16 << 10
		floodMsgs = 4000 // 64 MiB sent at the slow client in all
	)
	srv := start(t, Config{Signaling: signaling.Config{MsgRate: -1, SendQueueBytes: queue * chunk, WriteTimeout: 2 * time.Second}})
	hub := srv.Hub()
	slow := srv.login(t, "slow") // never reads from now on
	flooder := srv.login(t, "flooder")
	flooder.send(map[string]any{"type": "offer", "name": "slow"})

	type pair struct{ a, b *wsClient }
	ps := make([]pair, pairs)
	for i := range ps {
		ps[i] = pair{srv.login(t, fmt.Sprintf("a%d", i)), srv.login(t, fmt.Sprintf("b%d", i))}
		ps[i].a.send(map[string]any{"type": "offer", "name": ps[i].b.name})
		ps[i].b.expect("offer")
	}

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()

	// A bound on the run, not a speed: generous for a busy machine.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2*pairs+1)
	var worst atomic.Int64
	for _, p := range ps {
		wg.Go(func() { // sender
			for i := range perPair {
				msg := fmt.Sprintf(`{"type":"candidate","name":%q,"candidate":{"i":%d,"t":%d}}`, p.b.name, i, time.Now().UnixNano())
				if err := p.a.conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
					errs <- fmt.Errorf("%s write: %w", p.a.name, err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
		wg.Go(func() { // receiver: every relay arrives, in order
			for i := range perPair {
				_, data, err := p.b.conn.Read(ctx)
				if err != nil {
					errs <- fmt.Errorf("%s read %d: %w", p.b.name, i, err)
					return
				}
				var sent int64
				at := strings.Index(string(data), `"i":`)
				if at < 0 {
					errs <- fmt.Errorf("%s: message %d is %s", p.b.name, i, data)
					return
				}
				if _, err := fmt.Sscanf(string(data[at:]), `"i":`+fmt.Sprint(i)+`,"t":%d`, &sent); err != nil {
					errs <- fmt.Errorf("%s: message %d is %s", p.b.name, i, data)
					return
				}
				lat := time.Now().UnixNano() - sent
				for w := worst.Load(); lat > w && !worst.CompareAndSwap(w, lat); w = worst.Load() {
				}
			}
		})
	}
	wg.Go(func() { // flooder: up to far more than one queue's worth
		payload := `"` + strings.Repeat("z", chunk) + `"`
		// Stop once slow is cut off: every further message would only earn
		// the flooder a user-not-found reply, and a flood of replies it
		// cannot read fast enough would make it a slow client too. With an
		// unbounded queue, slow is never cut off and all 64 MiB go out.
		for range floodMsgs {
			if hub.Stats().SlowDisconnects.Load() > 0 {
				return
			}
			msg := `{"type":"candidate","name":"slow","candidate":` + payload + `}`
			if err := flooder.conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
				errs <- fmt.Errorf("flooder write: %w", err)
				return
			}
		}
	})
	// The flooder's replies (user-not-found once slow is gone) must be read
	// or its own queue would fill.
	flooderRead := make(chan struct{})
	go func() {
		defer close(flooderRead)
		for {
			if _, _, err := flooder.conn.Read(ctx); err != nil {
				return
			}
		}
	}()
	wg.Wait()
	close(stopSampling)
	<-sampled
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	if n := hub.Stats().SlowDisconnects.Load(); n != 1 {
		t.Errorf("slow disconnects %d, want 1 (only the slow client)", n)
	}
	// One full queue of chunks, the read buffers of a few frames in
	// flight, and slack for the runtime: far less than the 64 MiB sent.
	bound := uint64(queue*chunk) + 24<<20
	if grew := peak.Load() - min(peak.Load(), base.HeapAlloc); grew > bound {
		t.Errorf("heap grew by %d MiB during the flood, want at most %d MiB", grew>>20, bound>>20)
	}
	t.Logf("heap growth %d KiB (bound %d KiB), worst active relay latency %v",
		(peak.Load()-min(peak.Load(), base.HeapAlloc))>>10, bound>>10, time.Duration(worst.Load()))
	flooder.conn.CloseNow()
	<-flooderRead
	_ = slow
}
