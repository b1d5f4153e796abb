package server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/p2pchat/p2pchat/server/wsloop"
)

// An idle signaling connection should cost as little memory as possible:
// most users sit logged in for hours and send a handful of messages. After
// the WebSocket upgrade, net/http hands the connection over with a 4 KiB
// read buffer and a 4 KiB write buffer, which coder/websocket keeps for the
// connection's whole life: 8 KiB per idle user doing nothing.
//
// leanConn removes both. It sits between the hijacked socket and
// coder/websocket (which gets 16-byte bufio buffers over it) and:
//
//   - reads through syscall.RawConn, taking a pooled buffer only once the
//     socket is readable, and giving it back as soon as it is drained; a
//     connection waiting for its next message holds no read buffer;
//   - writes straight to the socket, except while corked by the writer
//     goroutine, which then collects all the frames it has queued and sends
//     them in one system call with Flush (wspump.Batcher). Batching is
//     also what keeps the tiny write buffer from splitting a frame in two
//     system calls.
//
// Connections without a file descriptor (TLS) only get the write batching;
// tls.Conn buffers reads itself.
type leanConn struct {
	net.Conn
	raw syscall.RawConn // nil for connections that are not sockets (TLS)
	// guard refuses from outside what coder/websocket would let through
	// (wsloop.Guard); nil: no checks.
	guard *wsloop.Guard

	// Read side. Usually only the reader goroutine reads, but a close
	// handshake started elsewhere (shutdown) reads too, so it is locked.
	rmu  sync.Mutex
	rbuf *[]byte // pooled, holds rest while data is pending
	rest []byte

	// Write side.
	wmu    sync.Mutex
	corked bool
	wbuf   []byte
}

// readChunk is the size of pooled read buffers: larger than a typical
// frame (an SDP offer is 1-10 KB), so most messages take one read.
const readChunk = 16 << 10

// maxPooledWrite bounds the write buffers kept for reuse, so that one huge
// batch does not stay allocated.
const maxPooledWrite = 64 << 10

var (
	readPool  = sync.Pool{New: func() any { b := make([]byte, readChunk); return &b }}
	writePool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}
)

func newLeanConn(c net.Conn, pending []byte) *leanConn {
	lc := &leanConn{Conn: c}
	if sc, ok := c.(syscall.Conn); ok && rawReads {
		if raw, err := sc.SyscallConn(); err == nil {
			lc.raw = raw
		}
	}
	if len(pending) > 0 {
		lc.rbuf = readPool.Get().(*[]byte)
		lc.rest = (*lc.rbuf)[:copy(*lc.rbuf, pending)]
		if len(pending) > readChunk { // cannot happen: net/http's buffer is 4 KiB
			lc.rest = append([]byte(nil), pending...)
		}
	}
	return lc
}

// Read passes on what read returns as far as the guard allows: the
// frame the guard refuses never reaches coder/websocket, which then gets
// the guard's *wsloop.CloseError; the reader goroutine closes the
// connection with its status.
func (c *leanConn) Read(p []byte) (int, error) {
	if c.guard == nil {
		return c.read(p)
	}
	if err := c.guard.Err(); err != nil {
		return 0, err
	}
	n, err := c.read(p)
	if n > 0 {
		if k, gerr := c.guard.Check(p[:n]); gerr != nil {
			return k, gerr
		}
	}
	return n, err
}

// read returns pending bytes first, then waits for the socket to become
// readable without holding a buffer.
//
// A read of at most bufioMin bytes (a bufio fill, or a frame header field)
// gets one byte at most. The bufio.Reader above then never holds bytes
// beyond what coder/websocket has consumed, so between two messages every
// unread byte is in rest, where WaitReadable can see it. Payloads are read
// with larger buffers and are not slowed down.
func (c *leanConn) read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(c.rest) == 0 && c.raw != nil && len(p) < readChunk {
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
	if len(c.rest) > 0 {
		if len(p) <= bufioMin && c.raw != nil {
			p = p[:1]
		}
		n := copy(p, c.rest)
		c.rest = c.rest[n:]
		if len(c.rest) == 0 && c.rbuf != nil {
			readPool.Put(c.rbuf)
			c.rbuf, c.rest = nil, nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// WaitReadable returns once the next message has started to arrive
// (wspump.IdleWaiter). The reader goroutine waits here, between
// messages, rather than deep inside coder/websocket's frame reader: its
// stack is then shallow enough for the garbage collector to shrink it, and
// no read buffer is held. For connections that are not sockets it returns
// at once.
func (c *leanConn) WaitReadable() error {
	if c.raw == nil {
		return nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(c.rest) > 0 {
		return nil
	}
	return c.fill()
}

// fill reads what the socket has into a pooled buffer.
func (c *leanConn) fill() error {
	var n int
	var rerr error
	var buf *[]byte
	// Always try the read before waiting: RawRead clears the poller's
	// latched readiness before calling f, so data that arrived earlier
	// would never be announced again if f waited first.
	err := c.raw.Read(func(fd uintptr) bool {
		b := readPool.Get().(*[]byte)
		n, rerr = readRaw(fd, *b)
		if rerr == syscall.EAGAIN {
			readPool.Put(b)
			return false // not readable yet: wait without a buffer
		}
		buf = b
		return true
	})
	switch {
	case err != nil:
		if buf != nil {
			readPool.Put(buf)
		}
		return err
	case rerr != nil:
		readPool.Put(buf)
		return &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: rerr}
	case n <= 0:
		readPool.Put(buf)
		return io.EOF
	}
	c.rbuf, c.rest = buf, (*buf)[:n]
	return nil
}

// Write sends p now, or appends it to the batch while corked.
func (c *leanConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.corked {
		if c.wbuf == nil {
			c.wbuf = (*writePool.Get().(*[]byte))[:0]
		}
		c.wbuf = append(c.wbuf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// Cork makes writes collect in memory until Flush.
func (c *leanConn) Cork() {
	c.wmu.Lock()
	c.corked = true
	c.wmu.Unlock()
}

// Flush uncorks and sends everything collected in one write, which must
// finish within timeout. A write that times out leaves the connection
// unusable; the caller closes it.
func (c *leanConn) Flush(timeout time.Duration) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.corked = false
	if len(c.wbuf) == 0 {
		return nil
	}
	b := c.wbuf
	c.wbuf = nil
	defer func() {
		if cap(b) <= maxPooledWrite {
			b = b[:0]
			writePool.Put(&b)
		}
	}()
	if timeout > 0 {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
			return err
		}
		defer c.Conn.SetWriteDeadline(time.Time{})
	}
	_, err := c.Conn.Write(b)
	return err
}

// closeFlushTimeout bounds the last write of Close.
const closeFlushTimeout = 100 * time.Millisecond

// Close sends what is still collected, then closes the socket. When the
// peer closes, coder/websocket writes its close frame and closes the
// connection at once; if the writer goroutine had the connection corked at
// that moment, the close frame (and the frames before it) would otherwise
// be dropped and the peer would see the connection reset instead of a
// clean close. A Flush in progress (a stuck writer) is not waited for.
func (c *leanConn) Close() error {
	if c.wmu.TryLock() {
		if len(c.wbuf) > 0 {
			_ = c.Conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
			_, _ = c.Conn.Write(c.wbuf)
			c.wbuf = nil
		}
		c.wmu.Unlock()
	}
	return c.Conn.Close()
}

// leanWriter is the http.ResponseWriter passed to websocket.Accept: its
// Hijack returns the leanConn with 16-byte buffers, so the 8 KiB that
// net/http would hand over become garbage once the handler returns.
type leanWriter struct {
	http.ResponseWriter
	conn      *leanConn
	readLimit int64 // the guard's message size limit; 0: no guard
}

// bufioMin is the smallest buffer bufio accepts.
const bufioMin = 16

func (w *leanWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// Bytes the client sent right after the handshake may already sit in
	// net/http's buffer; they are the start of the WebSocket stream.
	pending, err := brw.Reader.Peek(brw.Reader.Buffered())
	if err != nil {
		nc.Close()
		return nil, nil, errors.Join(errors.New("reading buffered handshake bytes"), err)
	}
	w.conn = newLeanConn(nc, pending)
	if w.readLimit > 0 {
		w.conn.guard = wsloop.NewGuard(w.readLimit)
	}
	return w.conn, bufio.NewReadWriter(bufio.NewReaderSize(w.conn, bufioMin), bufio.NewWriterSize(w.conn, bufioMin)), nil
}

// Unwrap lets http.ResponseController reach the original writer.
func (w *leanWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
