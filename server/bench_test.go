package server

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/p2pchat/p2pchat/server/signaling"
)

// benchOffer and benchCandidate have the sizes the load tool sends (as in
// server/signaling's benchmarks): a data-channel SDP offer of ~1.2 KB and
// an ICE candidate of ~200 B.
var (
	benchOffer = `{"type":"offer","name":"bob","offer":{"type":"offer","sdp":"` +
		strings.Repeat(`a=candidate:1 1 udp 2122260223 192.0.2.7 49152 typ host\r\n`, 18) + `"}}`
	benchCandidate = `{"type":"candidate","name":"bob","candidate":{"candidate":"candidate:842163049 1 udp 1677729535 203.0.113.7 49152 typ srflx raddr 192.168.1.20 rport 49152 generation 0","sdpMid":"0","sdpMLineIndex":0}}`
)

// BenchmarkRelayWebSocket is the whole path of one relay over loopback
// WebSockets: client write, server read, parse, route, enqueue, server
// write, client read. It includes the kernel's share, which dominates.
func BenchmarkRelayWebSocket(b *testing.B) {
	for _, tr := range transports {
		b.Run("transport="+tr.name, func(b *testing.B) { relayWebSocket(b, tr.start) })
	}
}

func relayWebSocket(b *testing.B, start func(testing.TB, Config) *e2eServer) {
	srv := start(b, Config{Signaling: signaling.Config{MsgRate: -1}})
	alice, bob := srv.login(b, "alice"), srv.login(b, "bob")
	alice.sendRaw(`{"type":"offer","name":"bob","offer":{}}`)
	bob.expect("offer")
	ctx := context.Background()
	for _, bm := range []struct{ name, msg string }{
		{"type=offer/bytes=" + strconv.Itoa(len(benchOffer)), benchOffer},
		{"type=candidate/bytes=" + strconv.Itoa(len(benchCandidate)), benchCandidate},
	} {
		b.Run(bm.name, func(b *testing.B) {
			msg := []byte(bm.msg)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if err := alice.conn.Write(ctx, websocket.MessageText, msg); err != nil {
					b.Fatal(err)
				}
				if _, _, err := bob.conn.Read(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
