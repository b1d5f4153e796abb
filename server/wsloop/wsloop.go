package wsloop

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// ErrUnsupported is returned by New where there is no epoll.
var ErrUnsupported = errors.New("wsloop: event loop not supported on this system")

// Handler receives a connection's messages and its end. Both are called
// on the loop goroutine, one at a time per loop, so a Handler must not
// block; payload is valid only during OnMessage.
type Handler interface {
	OnMessage(payload []byte)
	OnClose(err error)
}

// Config sets a loop's limits and timers.
type Config struct {
	// ReadLimit is the largest message accepted, in bytes; a larger one
	// is answered with close status 1009.
	ReadLimit int64
	// PingInterval is the keep-alive period: a connection is pinged when
	// it has been attached this long, and again every PingInterval; one
	// that has not answered the previous ping by then is dropped.
	PingInterval time.Duration
	// WriteTimeout ends a connection whose queued output makes no
	// progress for this long.
	WriteTimeout time.Duration
	// CloseTimeout bounds the closing handshake. Default 5 s.
	CloseTimeout time.Duration
	// HeaderTimeout bounds the wait for the request head of a connection
	// the loop accepted (Listen), as net/http's ReadHeaderTimeout.
	// Default 10 s.
	HeaderTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.ReadLimit <= 0 {
		c.ReadLimit = 64 << 10
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 30 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = 5 * time.Second
	}
	if c.HeaderTimeout <= 0 {
		c.HeaderTimeout = 10 * time.Second
	}
	return c
}

// tick is how often the loop checks pings and deadlines: often enough for
// the shortest of them, at most once per second.
func (c Config) tick() time.Duration {
	t := min(c.PingInterval, c.WriteTimeout, c.CloseTimeout, c.HeaderTimeout) / 4
	return min(max(t, time.Millisecond), time.Second)
}

// Accept completes the opening handshake with coder/websocket (origin
// check, Sec-WebSocket-Accept, error replies) and returns the raw
// connection for Loop.Attach, with the bytes the client sent right after
// its request, which net/http had already read.
//
// The 101 response is not written here: Attach writes it together with
// the connection's first message (the greeting), so that a login costs
// one system call less on each side, and the client is woken once for
// both. Until Attach, the client has received nothing.
//
// The *websocket.Conn that coder/websocket builds is not used, and it is
// closed at once: it carries a finalizer, so left to the garbage
// collector it and its buffers (~2 KiB) would outlive one more collection
// cycle, and under churn the heap grew by that much per connection in
// every cycle (500 MB of RSS after 100,000 logins in 10 s). Its Close
// does not reach the socket, which belongs to the caller.
func Accept(w http.ResponseWriter, r *http.Request, opts *websocket.AcceptOptions) (net.Conn, []byte, error) {
	cw := &captureWriter{ResponseWriter: w}
	ws, err := websocket.Accept(cw, r, opts)
	if err != nil {
		return nil, nil, err
	}
	_ = ws.CloseNow() // only ends the unused Conn: see keptConn
	if cw.conn == nil {
		return nil, nil, errors.New("wsloop: handshake did not hijack the connection")
	}
	return cw.conn, cw.pending, nil
}

// upgraded is a connection Accept returns: the socket, and the 101
// response that Attach writes before anything else.
type upgraded struct {
	net.Conn
	response []byte
}

// keptConn is the connection as coder/websocket sees it: closing its
// unused Conn leaves the socket open for the loop.
type keptConn struct{ net.Conn }

func (keptConn) Close() error { return nil }

// captureWriter keeps the hijacked connection and holds back the 101
// response, which net/http would otherwise write on Hijack.
type captureWriter struct {
	http.ResponseWriter
	switching bool // WriteHeader(101) was called and held back
	conn      net.Conn
	pending   []byte
}

func (w *captureWriter) WriteHeader(code int) {
	if code == http.StatusSwitchingProtocols {
		w.switching = true
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *captureWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !w.switching {
		return nil, nil, errors.New("wsloop: hijack before the 101 response")
	}
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	if err := w.Header().Write(&head); err != nil {
		return nil, nil, fmt.Errorf("writing the 101 response: %w", err)
	}
	head.WriteString("\r\n")
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("hijacking the connection: %w", err)
	}
	if n := brw.Reader.Buffered(); n > 0 {
		b, err := brw.Reader.Peek(n)
		if err != nil {
			nc.Close()
			return nil, nil, fmt.Errorf("reading buffered handshake bytes: %w", err)
		}
		w.pending = append([]byte(nil), b...)
	}
	w.conn = &upgraded{Conn: nc, response: head.Bytes()}
	// coder/websocket's Conn is closed unused; nothing it could write
	// may reach the socket ahead of the 101 response.
	return keptConn{nc}, bufio.NewReadWriter(bufio.NewReaderSize(strings.NewReader(""), 16), bufio.NewWriterSize(io.Discard, 16)), nil
}

// Unwrap lets http.ResponseController reach the original writer.
func (w *captureWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// nopHandler serves connections the caller refused: their closing
// handshake still runs through the loop.
type nopHandler struct{}

func (nopHandler) OnMessage([]byte) {}
func (nopHandler) OnClose(error)    {}
