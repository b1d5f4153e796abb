//go:build linux

package wsloop

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"
)

// Conn is one WebSocket connection served by a Loop. Send, Close and
// CloseNow may be called from any goroutine and never block: they queue,
// and the loop goroutine, the only one that touches the socket, writes.
type Conn struct {
	loop *Loop
	fd   int
	h    Handler

	// Used by the loop goroutine only (and by Attach before the loop
	// knows the connection).
	dec       decoder
	pingAt    time.Duration
	awaitPong bool
	head      *httpHead // accepted by the loop, request not yet read

	mu         sync.Mutex
	state      connState     // where the connection is in its life (state.go)
	obuf       *[]byte       // pooled buffer behind out, nil when out is empty
	out        []byte        // queued frames; out[written:] not yet sent
	written    int           // bytes of out already sent
	progress   time.Duration // when out was last started or written from
	dirty      bool          // in the loop's dirty list
	registered bool          // in the epoll set
	watchOut   bool          // EPOLLOUT requested
	closeBy    time.Duration // deadline of the closing handshake
	peerClosed bool          // the close frame is the answer to the peer's
	pongDue    bool          // a ping waits for its pong until out is written
	pong       []byte        // that ping's payload
	closeErr   error         // what OnClose will be told
}

// Send queues one text message for the loop to write. It returns how
// many bytes of output wait for the socket, this frame included, or -1 if
// the connection is closing. The caller bounds that (a slow reader's
// output grows until the caller drops it with CloseNow).
func (c *Conn) Send(msg []byte) int {
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return -1
	}
	c.queueLocked(opText, msg)
	n := len(c.out) - c.written
	wake := c.markDirtyLocked()
	c.mu.Unlock()
	if wake {
		c.loop.wakeUp()
	}
	return n
}

// Close starts the closing handshake with code and reason: the close
// frame goes out after what is queued, nothing more is sent or delivered,
// and the connection ends when the peer answers or hangs up, or after
// CloseTimeout.
func (c *Conn) Close(code int, reason string) {
	c.mu.Lock()
	wake := c.startCloseLocked(code, reason, nil)
	c.mu.Unlock()
	if wake {
		c.loop.wakeUp()
	}
}

// CloseNow drops the connection without a closing handshake, and what is
// queued for it with it.
func (c *Conn) CloseNow() {
	c.mu.Lock()
	wake := false
	if c.toLocked(stateDropping) {
		c.releaseOutLocked()
		wake = c.markDirtyLocked()
	}
	c.mu.Unlock()
	if wake {
		c.loop.wakeUp()
	}
}

// markDirtyLocked puts c on the loop's list to flush and reports whether
// the loop must be woken for it.
func (c *Conn) markDirtyLocked() bool {
	if c.dirty {
		return false
	}
	c.dirty = true
	if !c.registered {
		return false // Attach writes it, or lists it once registered
	}
	l := c.loop
	l.dmu.Lock()
	defer l.dmu.Unlock()
	l.dirty = append(l.dirty, c)
	if l.dispatching || l.wakePending {
		return false
	}
	l.wakePending = true
	return true
}

// relistLocked puts c, just registered, on the loop's list to flush if
// output was queued or a drop asked for while it was not registered
// (markDirtyLocked then only marks it), and reports whether the loop must
// be woken for it.
func (c *Conn) relistLocked() bool {
	if !c.dirty && c.state != stateDropping {
		return false
	}
	c.dirty = false
	return c.markDirtyLocked()
}

// queueLocked appends one frame to the output.
func (c *Conn) queueLocked(opcode byte, payload []byte) {
	c.takeBufferLocked()
	c.out = appendFrame(c.out, opcode, payload)
}

// takeBufferLocked gives an empty output a pooled buffer.
func (c *Conn) takeBufferLocked() {
	if c.obuf == nil {
		c.obuf = framePool.Get().(*[]byte)
		c.out = (*c.obuf)[:0]
		c.progress = c.loop.now()
	}
}

// controlLocked sends a ping or pong from the loop goroutine, which owns
// the socket: at once, from the stack, when nothing is queued before it,
// so that pinging every idle connection takes no buffers. It reports
// whether the frame had to be queued.
func (c *Conn) controlLocked(opcode byte, payload []byte) (queued bool) {
	if c.written == len(c.out) {
		var b [2 + maxControlPayload]byte
		frame := appendFrame(b[:0], opcode, payload)
		n, err := writeFD(c.fd, frame)
		switch {
		case n == len(frame):
			return false
		case err != nil && err != syscall.EAGAIN:
			c.shutLocked()
			return false
		case n > 0:
			// Part of the frame is out: the rest goes first, as raw bytes.
			c.queueRawLocked(frame[n:])
			c.markDirtyLocked()
			return true
		}
	}
	c.queueLocked(opcode, payload)
	c.markDirtyLocked()
	return true
}

// queueRawLocked appends bytes that are already framed.
func (c *Conn) queueRawLocked(b []byte) {
	c.takeBufferLocked()
	c.out = append(c.out, b...)
}

// releaseOutLocked empties the output and gives its buffer back.
func (c *Conn) releaseOutLocked() {
	if c.obuf != nil && cap(c.out) <= maxPooledFrame {
		*c.obuf = c.out[:0]
		framePool.Put(c.obuf)
	}
	c.obuf, c.out, c.written = nil, nil, 0
}

// startCloseLocked queues a close frame; it reports whether the loop
// must be woken.
func (c *Conn) startCloseLocked(code int, reason string, why error) bool {
	if !c.toLocked(stateClosing) {
		return false
	}
	c.closeBy = c.loop.now() + c.loop.cfg.CloseTimeout
	if why == nil {
		why = &CloseError{Code: code, Reason: reason}
	}
	c.closeErr = why
	if c.pongDue {
		c.pongDue = false
		c.queueLocked(opPong, c.pong)
	}
	c.queueLocked(opClose, closePayload(code, reason))
	return c.markDirtyLocked()
}

// flush runs on the loop goroutine: it drops the connection if asked to,
// or writes what is queued.
func (c *Conn) flush() {
	c.mu.Lock()
	c.dirty = false
	if c.state == stateDropping {
		c.shutLocked()
		c.mu.Unlock()
		return
	}
	c.writeLocked()
	done := c.peerClosed && c.state == stateCloseSent
	c.mu.Unlock()
	if done {
		// The closing handshake is complete: the peer has nothing more
		// to say, so there is no end of stream to wait for.
		c.finish(c.closeErr)
	}
}

// writable writes queued output once the socket has room again.
func (c *Conn) writable() {
	c.mu.Lock()
	c.writeLocked()
	done := c.peerClosed && c.state == stateCloseSent
	c.mu.Unlock()
	if done {
		c.finish(nil) // as in flush
	}
}

// writeLocked writes as much of the output as the socket takes, and
// watches for room if it does not take everything.
func (c *Conn) writeLocked() {
	if c.state == stateShut || c.state == stateClosed {
		return
	}
	for {
		if c.written < len(c.out) {
			n, err := writeFD(c.fd, c.out[c.written:])
			if n > 0 {
				c.written += n
				c.progress = c.loop.now()
			}
			if err != nil && err != syscall.EAGAIN {
				c.shutLocked() // broken: the loop reads the error next
				return
			}
		}
		if c.written < len(c.out) {
			c.watchOutLocked(true)
			return
		}
		if !c.pongDue || c.closingLocked() {
			break
		}
		// Everything before it is out: now the most recent ping gets
		// its pong. One pong at most waits in out, however many pings
		// a peer that does not read sends.
		c.pongDue = false
		c.queueLocked(opPong, c.pong)
	}
	c.pong = nil
	c.releaseOutLocked()
	c.watchOutLocked(false)
	if c.state == stateClosing {
		// The close frame is out: end the write side, so the peer sees
		// it followed by end of stream. The loop keeps reading, and
		// discarding, until the peer closes too. If the frame answered
		// the peer's, the caller closes the socket at once instead,
		// which ends the stream as well, one system call sooner.
		c.toLocked(stateCloseSent)
		if !c.peerClosed {
			_ = syscall.Shutdown(c.fd, syscall.SHUT_WR)
		}
	}
}

// shutLocked shuts the socket down both ways; the loop then reads EOF
// and finishes the connection. Only finish closes the descriptor, so its
// number cannot be reused while the loop may still use it.
func (c *Conn) shutLocked() {
	if !c.toLocked(stateShut) {
		return
	}
	c.releaseOutLocked()
	_ = syscall.Shutdown(c.fd, syscall.SHUT_RDWR)
}

func (c *Conn) watchOutLocked(on bool) {
	if c.watchOut == on {
		return
	}
	c.watchOut = on
	if c.registered {
		_ = c.epollLocked(syscall.EPOLL_CTL_MOD)
	}
}

func (c *Conn) epollLocked(op int) error {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(c.fd)}
	if c.watchOut {
		ev.Events |= syscall.EPOLLOUT
	}
	return syscall.EpollCtl(c.loop.epfd, op, c.fd, &ev)
}

// readable reads what the socket has and decodes it.
func (c *Conn) readable() {
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	if st == stateClosed {
		return
	}
	if st == stateDropping || st == stateShut { // whatever still arrives does not matter
		c.finish(io.EOF)
		return
	}
	n, err := readFD(c.fd, c.loop.scratch)
	switch {
	case err == syscall.EAGAIN:
		return
	case err != nil:
		c.finish(fmt.Errorf("reading from the connection: %w", err))
		return
	case n == 0:
		c.finish(io.EOF)
		return
	}
	if c.head != nil {
		c.readHead(c.loop.scratch[:n])
		return
	}
	c.decode(c.loop.scratch[:n])
}

// decode feeds data to the decoder, unless the connection is closing, in
// which case input is only drained until the peer hangs up.
func (c *Conn) decode(data []byte) {
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	if st == stateClosed {
		return
	}
	if st != stateOpen {
		c.dec.partial = nil
		return
	}
	err := c.dec.feed(data, c)
	if err == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var ce *CloseError
	if errors.As(err, &ce) {
		// A protocol error or an oversized message: say why, then close.
		c.startCloseLocked(ce.Code, ce.Reason, err)
	}
}

// errPeerClosed stops decoding after the peer's close frame.
var errPeerClosed = errors.New("peer sent a close frame")

// frame handles one decoded message or control frame.
func (c *Conn) frame(opcode byte, payload []byte) error {
	switch opcode {
	case opText, opBinary:
		c.mu.Lock()
		open := c.state == stateOpen
		c.mu.Unlock()
		if open {
			c.h.OnMessage(payload)
		}
	case opPing:
		// While output waits for the socket, the pong waits too, and a
		// later ping replaces it: RFC 6455 5.5.3 allows answering only
		// the most recent ping, never none. writeLocked sends it once
		// the output before it is out.
		c.mu.Lock()
		if c.state == stateOpen {
			if c.pongDue || c.written < len(c.out) {
				c.pong = append(c.pong[:0], payload...)
				c.pongDue = true
				c.markDirtyLocked()
			} else {
				c.controlLocked(opPong, payload)
			}
		}
		c.mu.Unlock()
	case opPong:
		c.awaitPong = false
	case opClose:
		ce, perr := parseClose(payload)
		if perr != nil {
			return perr
		}
		// Echo the peer's status, then wait for it to hang up. (Once
		// the server has sent its own close frame, input is no longer
		// decoded: the peer's answer is followed by its end of stream.)
		c.mu.Lock()
		c.startCloseLocked(ce.Code, ce.Reason, ce)
		c.peerClosed = c.closingLocked()
		c.mu.Unlock()
		return errPeerClosed
	}
	return nil
}

// tick sends a due ping and enforces the deadlines.
func (c *Conn) tick(now time.Duration) {
	if c.head != nil {
		if now > c.head.deadline {
			c.finish(errors.New("no request head within the timeout"))
		}
		return
	}
	c.mu.Lock()
	switch {
	case c.state == stateClosed:
	case c.closingLocked() && now > c.closeBy:
		c.mu.Unlock()
		c.finish(c.closeErr)
		return
	case c.written < len(c.out) && now-c.progress > c.loop.cfg.WriteTimeout:
		c.shutLocked()
	case now >= c.pingAt && c.state == stateOpen:
		if c.awaitPong {
			// No answer to the last ping within a whole interval.
			c.shutLocked()
			break
		}
		c.controlLocked(opPing, nil)
		c.awaitPong = true
		c.pingAt = now + c.loop.cfg.PingInterval
	}
	c.mu.Unlock()
}

// finish closes the descriptor and tells the handler, once.
func (c *Conn) finish(err error) {
	c.mu.Lock()
	if !c.toLocked(stateClosed) {
		c.mu.Unlock()
		return // already finished
	}
	l := c.loop
	l.mu.Lock()
	if c.fd < len(l.byFD) && l.byFD[c.fd] == c {
		l.byFD[c.fd] = nil
	}
	l.mu.Unlock()
	if c.closeErr != nil {
		err = c.closeErr // the close frame says more than the EOF after it
	}
	c.releaseOutLocked()
	c.dec = decoder{}
	// Closing the only descriptor of the socket also takes it out of
	// the epoll set.
	syscall.Close(c.fd)
	c.mu.Unlock()
	c.h.OnClose(err)
}

// framePool holds output buffers; a connection has one only while it has
// output queued.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// maxPooledFrame bounds the buffers kept in framePool.
const maxPooledFrame = 64 << 10

func readFD(fd int, p []byte) (int, error) {
	for {
		n, err := syscall.Read(fd, p)
		if err != syscall.EINTR {
			return n, err
		}
	}
}

func writeFD(fd int, p []byte) (int, error) {
	for {
		n, err := syscall.Write(fd, p)
		if err != syscall.EINTR {
			return max(n, 0), err
		}
	}
}
