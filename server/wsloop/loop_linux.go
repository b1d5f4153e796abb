//go:build linux

package wsloop

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// Loop is one epoll set and the goroutine that serves it.
type Loop struct {
	cfg   Config
	log   *slog.Logger
	epfd  int
	wake  [2]int // a byte written to wake[1] wakes the loop
	start time.Time

	mu      sync.Mutex
	byFD    []*Conn // attached connections by file descriptor
	kicked  []*Conn // connections with bytes to decode that epoll will not announce
	closing bool

	// Connections with output to write, or to drop. Only the loop
	// goroutine writes to sockets: everyone else queues and, unless the
	// loop is awake and will flush anyway, wakes it.
	dmu         sync.Mutex
	dirty       []*Conn
	dispatching bool // the loop is handling events and flushes after
	wakePending bool // a wake-up byte is in the pipe

	// Used by the loop goroutine only.
	scratch  []byte
	events   []syscall.EpollEvent
	snap     []*Conn // connections the current tick pass has still to visit
	flushing []*Conn

	// The listening socket, when the loop accepts (Listen). Under mu:
	newLFD     int  // the socket Listen added
	stopListen bool // the hand-off listener was closed
	handler    http.Handler
	handoff    *handoffListener
	// Used by the loop goroutine only.
	lfd          int
	acceptPaused bool

	done chan struct{}

	// afterStart, if set (by tests), runs on the loop goroutine between
	// a loop-accepted connection's first write and its registration.
	afterStart func(*Conn)
}

// readBuffer is the loop's one read buffer, shared by all connections:
// a read takes what a socket has, up to this much, and it is decoded in
// place before the next socket is read.
const readBuffer = 64 << 10

// New starts a loop.
func New(cfg Config, log *slog.Logger) (*Loop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("creating epoll set: %w", err)
	}
	l := &Loop{
		cfg:     cfg.withDefaults(),
		log:     log,
		epfd:    epfd,
		start:   time.Now(),
		scratch: make([]byte, readBuffer),
		events:  make([]syscall.EpollEvent, 256),
		done:    make(chan struct{}),
		lfd:     -1,
		newLFD:  -1,
	}
	if err := syscall.Pipe2(l.wake[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("creating wake-up pipe: %w", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(l.wake[0])}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, l.wake[0], &ev); err != nil {
		l.closeFDs()
		return nil, fmt.Errorf("watching wake-up pipe: %w", err)
	}
	go l.run()
	return l, nil
}

// now is the loop's monotonic clock.
func (l *Loop) now() time.Duration { return time.Since(l.start) }

// Close ends every connection (their handlers get OnClose) and stops the
// loop. Connections should have been closed with a status before.
func (l *Loop) Close() {
	l.mu.Lock()
	already := l.closing
	l.closing = true
	l.mu.Unlock()
	if !already {
		l.wakeUp()
	}
	<-l.done
}

func (l *Loop) wakeUp() {
	_, _ = syscall.Write(l.wake[1], []byte{0})
}

func (l *Loop) closeFDs() {
	l.stopListening()
	syscall.Close(l.wake[0])
	syscall.Close(l.wake[1])
	syscall.Close(l.epfd)
}

// Attach takes over nc, a TCP connection whose WebSocket handshake has
// just completed (see Accept); pending are bytes already read from it.
// open is called with the new Conn before anything is read from it and
// returns its handler; nil means the caller refused the connection, which
// it should then Close with a status. nc must not be used afterwards.
func (l *Loop) Attach(nc net.Conn, pending []byte, open func(*Conn) Handler) error {
	var response []byte
	if u, ok := nc.(*upgraded); ok {
		nc, response = u.Conn, u.response
	}
	if rc, ok := nc.(*replayConn); ok && len(rc.pending) > 0 {
		// The loop handed this connection to net/http (a long head, or
		// another request first) with the bytes it had read, and net/http
		// did not read them all: what its buffer held comes first, then
		// the rest of those bytes, then the socket.
		pending = append(append([]byte(nil), pending...), rc.pending...)
		rc.pending = nil
	}
	if lc, ok := nc.(*loopConn); ok {
		// Accepted by a loop, and Attach runs on that loop's goroutine.
		if lc.c.loop == l {
			l.attachOwn(lc.c, response, pending, open)
			return nil
		}
		// Another loop is to serve it: the accepting loop lets go of the
		// socket, which this one then takes as any other.
		return l.attachFD(lc.c.loop.release(lc.c), response, pending, open)
	}
	sc, ok := nc.(interface {
		syscall.Conn
		io.Closer
	})
	if !ok {
		nc.Close()
		return fmt.Errorf("wsloop: %T has no file descriptor", nc)
	}
	fd, err := takeFD(sc)
	if err != nil {
		nc.Close()
		return err
	}
	return l.attachFD(fd, response, pending, open)
}

// attachFD is Attach for a socket no loop serves: fd is its only
// descriptor, and the caller gives it up.
func (l *Loop) attachFD(fd int, response, pending []byte, open func(*Conn) Handler) error {
	c := &Conn{loop: l, fd: fd}
	// The loop does not know c yet, so this goroutine still owns the
	// socket.
	c.start(response, pending, open)
	h := c.h

	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		syscall.Close(fd)
		h.OnClose(net.ErrClosed)
		return nil
	}
	for len(l.byFD) <= fd {
		l.byFD = append(l.byFD, nil)
	}
	l.byFD[fd] = c
	if len(pending) > 0 {
		l.kicked = append(l.kicked, c)
	}
	l.mu.Unlock()

	c.mu.Lock()
	err := c.epollLocked(syscall.EPOLL_CTL_ADD)
	c.registered = err == nil
	// Queued since start's write (a close at shutdown, say)?
	wake := c.registered && c.relistLocked()
	c.mu.Unlock()
	if err != nil {
		// Out of epoll watches: the loop will never hear of c.
		err = fmt.Errorf("adding connection to epoll set: %w", err)
		l.mu.Lock()
		l.byFD[fd] = nil
		l.mu.Unlock()
		c.mu.Lock()
		c.closed = true
		syscall.Close(fd)
		c.mu.Unlock()
		h.OnClose(err)
		return err
	}
	if wake || len(pending) > 0 {
		l.wakeUp()
	}
	return nil
}

// start readies a new connection: the 101 response goes out first, in
// one write with whatever open queues (the greeting); pending bytes are
// decoded by the loop, like everything else read from c. The caller owns
// the socket until it registers c, so the write happens here, without
// waking the loop for it.
func (c *Conn) start(response, pending []byte, open func(*Conn) Handler) {
	l := c.loop
	c.dec = decoder{limit: l.cfg.ReadLimit}
	c.pingAt = l.now() + l.cfg.PingInterval
	if len(pending) > 0 {
		c.dec.partial = append([]byte(nil), pending...)
	}
	c.mu.Lock()
	if len(response) > 0 {
		c.takeBufferLocked()
		c.out = append(c.out, response...)
	}
	c.mu.Unlock()
	h := open(c)
	if h == nil {
		h = nopHandler{}
	}
	c.h = h
	c.mu.Lock()
	c.dirty = false
	c.writeLocked()
	c.mu.Unlock()
}

// takeFD moves a socket out of Go's network poller: it duplicates the
// descriptor and closes sc, which removes sc from the runtime's epoll set
// (the duplicate keeps the socket open, and is then its only descriptor).
func takeFD(sc interface {
	syscall.Conn
	io.Closer
}) (int, error) {
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("getting the socket: %w", err)
	}
	fd := -1
	var dupErr error
	err = raw.Control(func(s uintptr) {
		r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if errno != 0 {
			dupErr = errno
			return
		}
		fd = int(r)
	})
	if err == nil {
		err = dupErr
	}
	if err != nil {
		return -1, fmt.Errorf("duplicating the socket: %w", err)
	}
	// The duplicate shares the socket's file status flags, so it is as
	// non-blocking as Go made the original.
	sc.Close()
	return fd, nil
}

// run is the loop goroutine.
func (l *Loop) run() {
	defer close(l.done)
	tick := l.cfg.tick()
	next := l.now() + tick
	yieldAt := l.now() + yieldEvery
	for {
		wait := max(next-l.now(), 0)
		if len(l.snap) > 0 {
			wait = 0 // a tick pass is under way: only look for events
		}
		n, err := syscall.EpollWait(l.epfd, l.events, int((wait+time.Millisecond-1)/time.Millisecond))
		if err != nil && !errors.Is(err, syscall.EINTR) {
			l.log.Error("event loop stopped", "err", err)
			l.shutdown()
			return
		}
		l.dmu.Lock()
		l.dispatching = true
		l.dmu.Unlock()
		for i := range max(n, 0) {
			ev := &l.events[i]
			fd := int(ev.Fd)
			if fd == l.wake[0] {
				if l.wakeEvent() {
					l.shutdown()
					return
				}
				continue
			}
			if fd == l.lfd {
				l.accept(l.now())
				continue
			}
			c := l.conn(fd)
			if c == nil {
				continue
			}
			if ev.Events&syscall.EPOLLOUT != 0 {
				c.writable()
			}
			if ev.Events&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR|syscall.EPOLLRDHUP) != 0 {
				c.readable()
			}
		}
		now := l.now()
		if now >= next && len(l.snap) == 0 {
			l.startTick()
			next = now + tick
		}
		l.tickSome(now, tickChunk)
		l.flush()
		if now >= yieldAt {
			// A goroutine that never passes through the scheduler looks
			// stuck to the runtime: after 10 ms it is preempted, and its
			// P is taken away in the middle of epoll_wait, which costs
			// thread switches and keeps the runtime's monitor thread
			// waking every 20 µs. Yielding now and then avoids both.
			runtime.Gosched()
			yieldAt = now + yieldEvery
		}
	}
}

// yieldEvery is how often the loop passes through the Go scheduler.
const yieldEvery = time.Millisecond

// flush writes the output queued since the last flush: a message relayed
// while handling events goes out right after them, several messages to
// one connection in one system call.
func (l *Loop) flush() {
	l.dmu.Lock()
	list := l.dirty
	l.dirty = l.flushing[:0]
	l.dispatching = false
	l.dmu.Unlock()
	for _, c := range list {
		c.flush()
	}
	clear(list)
	l.flushing = list
}

func (l *Loop) conn(fd int) *Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	if fd < len(l.byFD) {
		return l.byFD[fd]
	}
	return nil
}

// wakeEvent drains the wake-up pipe, decodes bytes of newly attached
// connections, and reports whether the loop is to stop.
func (l *Loop) wakeEvent() bool {
	var b [64]byte
	for {
		if n, _ := syscall.Read(l.wake[0], b[:]); n <= 0 {
			break
		}
	}
	l.dmu.Lock()
	l.wakePending = false
	l.dmu.Unlock()
	l.mu.Lock()
	kicked, closing, stopListen := l.kicked, l.closing, l.stopListen
	if l.lfd < 0 && l.newLFD >= 0 && !stopListen {
		l.lfd = l.newLFD
	}
	l.kicked = nil
	l.stopListen = false // once: stopListening makes it final (newLFD -2)
	l.mu.Unlock()
	if stopListen {
		l.stopListening()
	}
	for _, c := range kicked {
		c.decode(nil)
	}
	return closing
}

// tickChunk is how many connections a tick pass visits between two looks
// for events. Connections that logged in together come due for their
// ping together, 30 s later: visiting 19,000 of them in one go (one
// write each) held every relayed message for ~100 ms. In chunks, a
// message waits for one chunk at most.
const tickChunk = 256

// startTick begins a pass over every connection: due pings and
// deadlines. tickSome does the work, a chunk at a time.
func (l *Loop) startTick() {
	l.resumeAccept()
	l.mu.Lock()
	for _, c := range l.byFD {
		if c != nil {
			l.snap = append(l.snap, c)
		}
	}
	l.mu.Unlock()
}

// tickSome visits up to n connections of the current tick pass.
func (l *Loop) tickSome(now time.Duration, n int) {
	n = min(n, len(l.snap))
	for _, c := range l.snap[len(l.snap)-n:] {
		if !c.gone {
			c.tick(now)
		}
	}
	clear(l.snap[len(l.snap)-n:])
	l.snap = l.snap[:len(l.snap)-n]
}

// shutdown ends every connection and releases the loop's descriptors.
func (l *Loop) shutdown() {
	l.mu.Lock()
	l.closing = true
	conns := append([]*Conn(nil), l.byFD...)
	l.mu.Unlock()
	for _, c := range conns {
		if c != nil {
			c.finish(net.ErrClosed)
		}
	}
	l.closeFDs()
}

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
	gone      bool      // finished: descriptor closed, handler told
	head      *httpHead // accepted by the loop, request not yet read

	mu         sync.Mutex
	obuf       *[]byte       // pooled buffer behind out, nil when out is empty
	out        []byte        // queued frames; out[written:] not yet sent
	written    int           // bytes of out already sent
	progress   time.Duration // when out was last started or written from
	dirty      bool          // in the loop's dirty list
	registered bool          // in the epoll set
	watchOut   bool          // EPOLLOUT requested
	drop       bool          // CloseNow: the loop is to shut the socket down
	shut       bool          // shutdown(2) done: the loop will see EOF
	closing    bool          // close frame queued: no more messages either way
	closeBy    time.Duration // deadline of the closing handshake
	wrShut     bool          // write side shut after the close frame
	peerClosed bool          // the close frame is the answer to the peer's
	pongDue    bool          // a ping waits for its pong until out is written
	pong       []byte        // that ping's payload
	closeErr   error         // what OnClose will be told
	closed     bool          // descriptor closed
}

// Send queues one text message for the loop to write. It returns how
// many bytes of output wait for the socket, this frame included, or -1 if
// the connection is closing. The caller bounds that (a slow reader's
// output grows until the caller drops it with CloseNow).
func (c *Conn) Send(msg []byte) int {
	c.mu.Lock()
	if c.closing || c.drop || c.shut || c.closed {
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
	if !c.drop && !c.shut && !c.closed {
		c.drop = true
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
	if !c.dirty && !c.drop {
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
	if c.closing || c.drop || c.shut || c.closed {
		return false
	}
	c.closing = true
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
	if c.drop {
		c.shutLocked()
		c.mu.Unlock()
		return
	}
	c.writeLocked()
	done := c.peerClosed && c.wrShut
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
	done := c.peerClosed && c.wrShut
	c.mu.Unlock()
	if done {
		c.finish(nil) // as in flush
	}
}

// writeLocked writes as much of the output as the socket takes, and
// watches for room if it does not take everything.
func (c *Conn) writeLocked() {
	if c.shut || c.closed {
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
		if !c.pongDue || c.closing {
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
	if c.closing && !c.wrShut {
		// The close frame is out: end the write side, so the peer sees
		// it followed by end of stream. The loop keeps reading, and
		// discarding, until the peer closes too. If the frame answered
		// the peer's, the caller closes the socket at once instead,
		// which ends the stream as well, one system call sooner.
		c.wrShut = true
		if !c.peerClosed {
			_ = syscall.Shutdown(c.fd, syscall.SHUT_WR)
		}
	}
}

// shutLocked shuts the socket down both ways; the loop then reads EOF
// and finishes the connection. Only finish closes the descriptor, so its
// number cannot be reused while the loop may still use it.
func (c *Conn) shutLocked() {
	if c.shut || c.closed {
		return
	}
	c.shut = true
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
	if c.gone {
		return
	}
	c.mu.Lock()
	shut := c.shut || c.drop
	c.mu.Unlock()
	if shut { // dropped: whatever is still arriving does not matter
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
	if c.gone {
		return
	}
	c.mu.Lock()
	closing := c.closing || c.drop || c.shut
	c.mu.Unlock()
	if closing {
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
		closing := c.closing
		c.mu.Unlock()
		if !closing {
			c.h.OnMessage(payload)
		}
	case opPing:
		// While output waits for the socket, the pong waits too, and a
		// later ping replaces it: RFC 6455 5.5.3 allows answering only
		// the most recent ping, never none. writeLocked sends it once
		// the output before it is out.
		c.mu.Lock()
		if !c.closing && !c.drop && !c.shut {
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
		c.peerClosed = c.closing
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
	case c.closed:
	case c.closing && now > c.closeBy:
		c.mu.Unlock()
		c.finish(c.closeErr)
		return
	case c.written < len(c.out) && now-c.progress > c.loop.cfg.WriteTimeout:
		c.shutLocked()
	case now >= c.pingAt && !c.closing && !c.drop && !c.shut:
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
	if c.gone {
		return
	}
	c.gone = true
	l := c.loop
	l.mu.Lock()
	if c.fd < len(l.byFD) && l.byFD[c.fd] == c {
		l.byFD[c.fd] = nil
	}
	l.mu.Unlock()

	c.mu.Lock()
	if c.closeErr != nil {
		err = c.closeErr // the close frame says more than the EOF after it
	}
	c.closed = true
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
