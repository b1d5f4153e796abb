package conformance

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/server"
	"github.com/p2pchat/p2pchat/server/signaling"
)

// target is one transport under test.
type target struct {
	name string
	host string // for the Host header
	dial func() (net.Conn, error)
}

// startTargets starts one server per transport; they stop with t.
func startTargets(t *testing.T) []target {
	t.Helper()
	cfg := server.Config{Signaling: signaling.Config{MsgRate: -1}} // probes come fast
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	plain := func(name string, noLoop bool) target {
		c := cfg
		c.NoEventLoop = noLoop
		s := server.New(c, log)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		sl, err := s.Listener(ln)
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = hs.Serve(sl) }()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = s.Shutdown(ctx)
			_ = hs.Shutdown(ctx)
			_ = sl.Close()
		})
		return target{name: name, host: addr, dial: func() (net.Conn, error) { return net.Dial("tcp", addr) }}
	}
	loop := plain("loop", false)
	goroutine := plain("goroutine", true)

	// HTTPS as the binary serves it: the event loop on, TLS connections
	// served by coder/websocket over leanConn.
	s := server.New(cfg, log)
	ts := httptest.NewUnstartedServer(s.Handler())
	ts.StartTLS()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		ts.Close()
	})
	addr := ts.Listener.Addr().String()
	tlsTarget := target{name: "tls", host: addr, dial: func() (net.Conn, error) {
		return tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	}}
	return []target{loop, goroutine, tlsTarget}
}

// fault is a switch in the client's view of the server that makes it
// misbehave, to show that a case can fail.
type fault int

const (
	faultNone   fault = iota
	faultStatus       // HTTP responses read by a case get status 299, and lose Sec-WebSocket-Version
	faultClose        // close frames carry a code no case expects
	faultText         // text messages after the greeting vanish
	faultPong         // pongs vanish
)

var faultNames = map[fault]string{faultStatus: "status", faultClose: "close", faultText: "text", faultPong: "pong"}

// failure is how a case fails: client methods panic with it, runCase
// recovers it.
type failure struct{ msg string }

// conn is the suite's raw WebSocket client.
type conn struct {
	tg     target
	nc     net.Conn
	br     *bufio.Reader
	fault  fault
	opened bool     // the greeting was read: frame faults apply from here
	pongs  [][]byte // pongs read while looking for something else
	key    uint32
}

var names atomic.Int64

// uniqueName is a login name no other case uses.
func uniqueName() string { return fmt.Sprintf("conf%d", names.Add(1)) }

func (c *conn) failf(format string, args ...any) {
	panic(failure{fmt.Sprintf(format, args...)})
}

// runCase runs one case on a new connection to tg.
func runCase(tg target, run func(*conn), f fault, deadline time.Duration) (err error) {
	nc, err := tg.dial()
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(deadline))
	c := &conn{tg: tg, nc: nc, br: bufio.NewReaderSize(nc, 64<<10), fault: f, key: 0x37fa213d}
	defer func() {
		if r := recover(); r != nil {
			fl, ok := r.(failure)
			if !ok {
				panic(r)
			}
			err = errors.New(fl.msg)
		}
	}()
	run(c)
	return nil
}

// write sends b in one write.
func (c *conn) write(b ...[]byte) {
	var all []byte
	for _, p := range b {
		all = append(all, p...)
	}
	// A write error is left to the reads that follow: a server that
	// fails the connection early may reset it under a long write.
	_, _ = c.nc.Write(all)
}

// writeChopped sends b in writes of n bytes.
func (c *conn) writeChopped(n int, b ...[]byte) {
	var all []byte
	for _, p := range b {
		all = append(all, p...)
	}
	for len(all) > 0 {
		k := min(n, len(all))
		if _, err := c.nc.Write(all[:k]); err != nil {
			return // as in write
		}
		all = all[k:]
	}
}

// Frame bits.
const (
	fin  = 0x80
	rsv1 = 0x40
	rsv2 = 0x20
	rsv3 = 0x10

	opCont   = 0x0
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

// frame is one masked client frame; b0 is FIN, RSV and opcode. The
// length takes the shortest encoding, as RFC 6455 5.2 requires.
func (c *conn) frame(b0 byte, payload []byte) []byte {
	c.key = c.key*1664525 + 1013904223
	return maskedFrame(b0, payload, c.key)
}

func maskedFrame(b0 byte, payload []byte, key uint32) []byte {
	out := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		out = append(out, 0x80|byte(n))
	case n <= 0xFFFF:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	default:
		out = append(out, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	out = binary.BigEndian.AppendUint32(out, key)
	for i, b := range payload {
		out = append(out, b^byte(key>>(24-8*(i%4))))
	}
	return out
}

func (c *conn) text(s string) []byte { return c.frame(fin|opText, []byte(s)) }

// closeFrame is a close frame with code (none if < 0) and reason.
func (c *conn) closeFrame(code int, reason string) []byte {
	var p []byte
	if code >= 0 {
		p = binary.BigEndian.AppendUint16(nil, uint16(code))
	}
	return c.frame(fin|opClose, append(p, reason...))
}

// Probes: protocol messages with a known answer.
const probeType = "conformance-probe"

var probeMsg = `{"type":"` + probeType + `"}`

// probe sends an unknown type and expects its error: the stream is in sync.
func (c *conn) probe() {
	c.write(c.text(probeMsg))
	c.expectProbeReply()
}

func (c *conn) expectProbeReply() {
	m := c.expectMsg("error")
	if m["code"] != "unknown-type" || m["message"] != "Command not found: "+probeType {
		c.failf("probe answered with %v", m)
	}
}

// sized is a probe message of exactly n bytes (n >= 40).
func sized(n int) string {
	head := `{"type":"` + probeType + `","pad":"`
	return head + strings.Repeat("a", n-len(head)-2) + `"}`
}

// login logs in with a fresh name and expects success.
func (c *conn) login() {
	name := uniqueName()
	c.write(c.text(`{"type":"login","name":"` + name + `"}`))
	m := c.expectMsg("login")
	if m["success"] != true || m["name"] != name {
		c.failf("login reply %v", m)
	}
}

// upgradeRequest is a WebSocket request head with extra header lines.
func (c *conn) upgradeRequest(extra string) string {
	return "GET /ws HTTP/1.1\r\nHost: " + c.tg.host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n"
}

// open upgrades and reads the greeting.
func (c *conn) open() {
	c.write([]byte(c.upgradeRequest("")))
	resp, _ := c.response(true)
	c.expectUpgrade(resp, "dGhlIHNhbXBsZSBub25jZQ==")
	c.expectHello()
}

// response reads one HTTP response and its body. The status fault
// spares the responses open reads (exempt), so that it fails only the
// handshake cases.
func (c *conn) response(exempt bool) (*http.Response, string) {
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.failf("reading a response: %v", err)
	}
	var body []byte
	if resp.StatusCode != http.StatusSwitchingProtocols {
		if body, err = io.ReadAll(resp.Body); err != nil {
			c.failf("reading a response body: %v", err)
		}
	}
	if c.fault == faultStatus && !exempt {
		resp.StatusCode = 299
		resp.Header.Del("Sec-WebSocket-Version")
	}
	return resp, string(body)
}

// expectUpgrade checks a 101 response (RFC 6455 4.2.2). No extension
// is offered back: the server negotiates none.
func (c *conn) expectUpgrade(resp *http.Response, key string) {
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		c.failf("status %d, want 101", resp.StatusCode)
	case !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket"):
		c.failf("Upgrade: %q", resp.Header.Get("Upgrade"))
	case !hasToken(resp.Header.Values("Connection"), "upgrade"):
		c.failf("Connection: %q", resp.Header.Values("Connection"))
	case resp.Header.Get("Sec-WebSocket-Accept") != acceptKey(key):
		c.failf("Sec-WebSocket-Accept: %q, want %q", resp.Header.Get("Sec-WebSocket-Accept"), acceptKey(key))
	case resp.Header.Get("Sec-WebSocket-Extensions") != "":
		c.failf("Sec-WebSocket-Extensions: %q, none was asked for", resp.Header.Get("Sec-WebSocket-Extensions"))
	}
}

func hasToken(values []string, token string) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// expectHello reads the greeting (docs/protocol.md).
func (c *conn) expectHello() {
	f := c.readFrame()
	var m map[string]any
	if f.op != opText || json.Unmarshal(f.payload, &m) != nil || m["type"] != "hello" {
		c.failf("greeting: opcode %d %q", f.op, f.payload)
	}
	c.opened = true
}

// sframe is a frame from the server.
type sframe struct {
	op      byte
	payload []byte
}

// readFrame reads one server frame, which RFC 6455 5.1 requires to be
// unmasked, with reserved bits clear, and which this server never
// fragments; the frame faults apply here.
func (c *conn) readFrame() sframe {
	for {
		f, err := c.tryFrame()
		if err != nil {
			c.failf("reading a frame: %v", err)
		}
		if c.opened {
			switch {
			case c.fault == faultText && f.op == opText, c.fault == faultPong && f.op == opPong:
				continue
			case c.fault == faultClose && f.op == opClose:
				f.payload = binary.BigEndian.AppendUint16(nil, 4321) // a code no case expects
			}
		}
		return f
	}
}

func (c *conn) tryFrame() (sframe, error) {
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return sframe{}, err
	}
	if h[0]&0x70 != 0 || h[0]&0x80 == 0 || h[1]&0x80 != 0 {
		return sframe{}, fmt.Errorf("server frame %#x %#x: reserved bits, fragmented or masked", h[0], h[1])
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return sframe{}, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return sframe{}, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<20 {
		return sframe{}, fmt.Errorf("server frame of %d bytes", n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(c.br, p); err != nil {
		return sframe{}, err
	}
	return sframe{op: h[0] & 0x0F, payload: p}, nil
}

// next reads the next frame that is not a pong; pongs are kept for
// expectPong.
func (c *conn) next() sframe {
	for {
		f := c.readFrame()
		if f.op == opPong {
			c.pongs = append(c.pongs, f.payload)
			continue
		}
		return f
	}
}

// expectMsg reads the next message, which must be a JSON text message
// of the type typ.
func (c *conn) expectMsg(typ string) map[string]any {
	f := c.next()
	if f.op != opText {
		c.failf("got opcode %d %q, want a %q message", f.op, f.payload, typ)
	}
	var m map[string]any
	if err := json.Unmarshal(f.payload, &m); err != nil {
		c.failf("server sent invalid JSON %q", f.payload)
	}
	if m["type"] != typ {
		c.failf("got %v, want a %q message", m, typ)
	}
	return m
}

// expectPong waits for a pong with payload p (read now or before), and
// for no other message on the way.
func (c *conn) expectPong(p []byte) {
	for {
		for i, got := range c.pongs {
			if string(got) == string(p) {
				c.pongs = c.pongs[i+1:]
				return
			}
		}
		c.pongs = nil
		f := c.readFrame()
		if f.op != opPong {
			c.failf("waiting for a pong %q: got opcode %d %q", p, f.op, f.payload)
		}
		c.pongs = append(c.pongs, f.payload)
	}
}

// closeCode reads a close frame's status: -1 for none.
func closeCode(f sframe) int {
	if len(f.payload) < 2 {
		return -1
	}
	return int(binary.BigEndian.Uint16(f.payload))
}

// expectFail expects the server to fail the connection: a close frame
// with one of codes, nothing after it, and the end of the stream once
// the client has answered.
func (c *conn) expectFail(codes ...int) {
	f := c.next()
	if f.op != opClose {
		c.failf("got opcode %d %q, want a close frame %v", f.op, f.payload, codes)
	}
	code := closeCode(f)
	if !contains(codes, code) {
		c.failf("closed with %d %q, want %v", code, f.payload, codes)
	}
	_, _ = c.nc.Write(c.closeFrame(code, "")) // may race with the server's end
	c.expectEOF()
}

// expectCloseEcho expects the answer to the client's close: a close
// frame with one of codes, then the end of the stream.
func (c *conn) expectCloseEcho(codes ...int) {
	f := c.readFrame()
	if f.op != opClose {
		c.failf("got opcode %d %q, want the close echo %v", f.op, f.payload, codes)
	}
	if code := closeCode(f); !contains(codes, code) {
		c.failf("close echoed with %d %q, want %v", code, f.payload, codes)
	}
	c.expectEOF()
}

// expectEOF expects the server to end the stream, with nothing more.
func (c *conn) expectEOF() {
	b, err := c.br.ReadByte()
	if err == nil {
		c.failf("byte %#x after the close frame, want the end of the stream", b)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.failf("the server did not end the stream: %v", err)
	}
	// io.EOF, or a reset: both end the connection.
}

func contains(codes []int, code int) bool {
	for _, c := range codes {
		if c == code {
			return true
		}
	}
	return false
}

// acceptKey is Sec-WebSocket-Accept for key (RFC 6455 4.2.2).
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}
