package signaling

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// Benchmarks of the hot paths, named for benchstat:
//
//	go test -run '^$' -bench . -benchmem -count 6 ./server/signaling > new.txt
//	benchstat old.txt new.txt
//
// The socket-free ones drive the hub through queueClient, so they measure
// the hub's own work (parse, route, enqueue) without the kernel.

// benchOffer and benchCandidate have the sizes the load tool sends: a
// data-channel SDP offer of ~1.2 KB and an ICE candidate of ~200 B.
var (
	benchOffer = `{"type":"offer","name":"bob","offer":{"type":"offer","sdp":"` +
		strings.Repeat(`a=candidate:1 1 udp 2122260223 192.0.2.7 49152 typ host\r\n`, 18) + `"}}`
	benchCandidate = `{"type":"candidate","name":"bob","candidate":{"candidate":"candidate:842163049 1 udp 1677729535 203.0.113.7 49152 typ srflx raddr 192.168.1.20 rport 49152 generation 0","sdpMid":"0","sdpMLineIndex":0}}`
)

// BenchmarkRelay is parse + route + enqueue of one relayed message.
func BenchmarkRelay(b *testing.B) {
	answer := strings.Replace(strings.Replace(benchOffer, `"offer"`, `"answer"`, 3), `"bob"`, `"alice"`, 1)
	for _, bm := range []struct{ name, msg string }{
		{"type=offer/bytes=" + strconv.Itoa(len(benchOffer)), benchOffer},
		{"type=candidate/bytes=" + strconv.Itoa(len(benchCandidate)), benchCandidate},
		{"type=answer/bytes=" + strconv.Itoa(len(answer)), answer},
	} {
		b.Run(bm.name, func(b *testing.B) {
			h := NewHub(Config{ICE: StaticICE{}, SendQueueBytes: 1 << 30}, testLog())
			alice, bob := queueClient(h), queueClient(h)
			h.handle(alice, []byte(`{"type":"login","name":"alice"}`))
			h.handle(bob, []byte(`{"type":"login","name":"bob"}`))
			h.handle(alice, []byte(`{"type":"offer","name":"bob","offer":{}}`))
			alice.drain()
			bob.drain()
			from, to := alice, bob
			if strings.Contains(bm.name, "answer") {
				from, to = bob, alice
			}
			msg := []byte(bm.msg)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				h.handle(from, msg)
				if i%1024 == 1023 {
					to.drain()
				}
			}
			if q := from.drain(); len(q) != 0 {
				b.Fatalf("sender got replies: %s", q[0])
			}
		})
	}
}

// BenchmarkLoginLogout is one connection's login and its release, with
// presence off and on (with 1,000 other subscribers online).
func BenchmarkLoginLogout(b *testing.B) {
	for _, presence := range []bool{false, true} {
		b.Run("presence="+strconv.FormatBool(presence), func(b *testing.B) {
			h := NewHub(Config{ICE: StaticICE{}, Presence: presence, PresenceInterval: time.Hour}, testLog())
			defer h.presence.stop()
			login := `{"type":"login","name":"u"}`
			if presence {
				login = `{"type":"login","name":"u","presence":true}`
				for i := range 1000 {
					c := queueClient(h)
					h.add(c)
					h.handle(c, []byte(`{"type":"login","name":"other`+strconv.Itoa(i)+`","presence":true}`))
					c.drain()
				}
			}
			msg := []byte(login)
			b.ReportAllocs()
			for b.Loop() {
				c := queueClient(h)
				h.add(c)
				h.handle(c, msg)
				if c.name != "u" {
					b.Fatalf("login failed: %s", c.drain())
				}
				h.remove(c)
			}
		})
	}
}

// BenchmarkPresenceFanout is one coalesced presence flush (one user joined)
// to every subscriber, including the paced part of a large fan-out.
func BenchmarkPresenceFanout(b *testing.B) {
	for _, subs := range []int{100, 1000, 10000} {
		b.Run("subscribers="+strconv.Itoa(subs), func(b *testing.B) {
			h := NewHub(Config{ICE: StaticICE{}, Presence: true, PresenceInterval: time.Hour, SendQueueBytes: 1 << 30}, testLog())
			defer h.presence.stop()
			clients := make([]*Client, subs)
			for i := range clients {
				clients[i] = queueClient(h)
				h.add(clients[i])
				h.handle(clients[i], []byte(`{"type":"login","name":"s`+strconv.Itoa(i)+`","presence":true}`))
			}
			h.presence.flush()
			joiner := queueClient(h)
			h.add(joiner)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				h.mu.Lock()
				if i%2 == 0 {
					h.presence.joined("joiner")
				} else {
					h.presence.left("joiner")
				}
				h.mu.Unlock()
				h.presence.flush()
				for h.presence.sendNext() { // complete a paced fan-out now
				}
				if i%256 == 255 {
					for _, c := range clients {
						c.drain()
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(subs), "ns/subscriber")
		})
	}
}

// BenchmarkRelayAmongOnline is BenchmarkRelay's offer with many other
// users logged in: routing must not slow down as the registry grows.
func BenchmarkRelayAmongOnline(b *testing.B) {
	for _, online := range []int{2, 100000} {
		b.Run("online="+strconv.Itoa(online), func(b *testing.B) {
			h := NewHub(Config{ICE: StaticICE{}, SendQueueBytes: 1 << 30}, testLog())
			alice, bob := queueClient(h), queueClient(h)
			h.handle(alice, []byte(`{"type":"login","name":"alice"}`))
			h.handle(bob, []byte(`{"type":"login","name":"bob"}`))
			for i := range online - 2 {
				h.handle(queueClient(h), []byte(`{"type":"login","name":"user`+strconv.Itoa(i)+`"}`))
			}
			if h.Online() != online {
				b.Fatalf("%d online, want %d", h.Online(), online)
			}
			h.handle(alice, []byte(`{"type":"offer","name":"bob","offer":{}}`))
			bob.drain()
			msg := []byte(benchOffer)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				h.handle(alice, msg)
				if i%1024 == 1023 {
					bob.drain()
				}
			}
		})
	}
}
