//go:build linux

package wsloop

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
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

	// Used by the loop goroutine only.
	scratch []byte
	events  []syscall.EpollEvent
	snap    []*Conn

	done chan struct{}
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
	fd, err := takeFD(nc)
	if err != nil {
		nc.Close()
		return err
	}
	c := &Conn{loop: l, fd: fd, dec: decoder{limit: l.cfg.ReadLimit}}
	c.pingAt = l.now() + l.cfg.PingInterval
	if len(pending) > 0 {
		// Decoded by the loop, like everything else read from c.
		c.dec.partial = append([]byte(nil), pending...)
	}
	h := open(c)
	if h == nil {
		h = nopHandler{}
	}
	c.h = h

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
	err = c.epollLocked(syscall.EPOLL_CTL_ADD)
	c.registered = err == nil
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
	if len(pending) > 0 {
		l.wakeUp()
	}
	return nil
}

// takeFD moves nc's socket out of Go's network poller: it duplicates the
// descriptor and closes nc, which removes nc from the runtime's epoll set
// (the duplicate keeps the socket open). The socket stays non-blocking.
func takeFD(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("wsloop: %T has no file descriptor", nc)
	}
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
	nc.Close()
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return -1, fmt.Errorf("making the socket non-blocking: %w", err)
	}
	return fd, nil
}

// run is the loop goroutine.
func (l *Loop) run() {
	defer close(l.done)
	tick := l.cfg.tick()
	next := l.now() + tick
	for {
		wait := max(next-l.now(), 0)
		n, err := syscall.EpollWait(l.epfd, l.events, int((wait+time.Millisecond-1)/time.Millisecond))
		if err != nil && !errors.Is(err, syscall.EINTR) {
			l.log.Error("event loop stopped", "err", err)
			l.shutdown()
			return
		}
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
		if now := l.now(); now >= next {
			l.tick(now)
			next = now + tick
		}
	}
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
	l.mu.Lock()
	kicked, closing := l.kicked, l.closing
	l.kicked = nil
	l.mu.Unlock()
	for _, c := range kicked {
		c.decode(nil)
	}
	return closing
}

// tick sends due pings and enforces deadlines.
func (l *Loop) tick(now time.Duration) {
	l.mu.Lock()
	l.snap = append(l.snap[:0], l.byFD...)
	l.mu.Unlock()
	for _, c := range l.snap {
		if c != nil && !c.gone {
			c.tick(now)
		}
	}
	clear(l.snap)
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
// CloseNow may be called from any goroutine and never block.
type Conn struct {
	loop *Loop
	fd   int
	h    Handler

	// Used by the loop goroutine only (and by Attach before the loop
	// knows the connection).
	dec       decoder
	pingAt    time.Duration
	awaitPong bool
	gone      bool // finished: descriptor closed, handler told

	mu         sync.Mutex
	out        []byte        // bytes not yet taken by the socket, in order
	outMsgs    int           // messages in out
	progress   time.Duration // when out was last started or shrunk
	registered bool          // in the epoll set
	watchOut   bool          // EPOLLOUT requested
	shut       bool          // shutdown(2) done: the loop will see EOF
	closing    bool          // close frame queued: no more messages either way
	closeBy    time.Duration // deadline of the closing handshake
	wrShut     bool          // write side shut after the close frame
	closeErr   error         // what OnClose will be told
	closed     bool          // descriptor closed
}

// Send queues one text message and writes it at once if nothing is
// waiting before it. It returns the number of messages still waiting for
// the socket (0: all written), or -1 if the connection is closing.
func (c *Conn) Send(msg []byte) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.shut || c.closed {
		return -1
	}
	c.writeLocked(opText, msg, true)
	return c.outMsgs
}

// Close starts the closing handshake with code and reason: the close
// frame goes out after what is queued, nothing more is sent or delivered,
// and the connection ends when the peer answers or hangs up, or after
// CloseTimeout.
func (c *Conn) Close(code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.startCloseLocked(code, reason, nil)
}

// CloseNow drops the connection without a closing handshake.
func (c *Conn) CloseNow() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.shutLocked()
}

// shutLocked shuts the socket down both ways; the loop then reads EOF
// and finishes the connection. It never closes the descriptor itself, so
// that its number cannot be reused while the loop may still use it.
func (c *Conn) shutLocked() {
	if c.shut || c.closed {
		return
	}
	c.shut = true
	c.out, c.outMsgs = nil, 0
	_ = syscall.Shutdown(c.fd, syscall.SHUT_RDWR)
}

func (c *Conn) startCloseLocked(code int, reason string, why error) {
	if c.closing || c.shut || c.closed {
		return
	}
	c.closing = true
	c.closeBy = c.loop.now() + c.loop.cfg.CloseTimeout
	if why == nil {
		why = &CloseError{Code: code, Reason: reason}
	}
	c.closeErr = why
	c.writeLocked(opClose, closePayload(code, reason), false)
	c.shutWriteIfFlushedLocked()
}

// shutWriteIfFlushedLocked ends the write side once the close frame is
// out, so the peer sees it followed by end of stream; the loop keeps
// reading, and discarding, until the peer closes too.
func (c *Conn) shutWriteIfFlushedLocked() {
	if c.closing && !c.wrShut && !c.shut && len(c.out) == 0 {
		c.wrShut = true
		_ = syscall.Shutdown(c.fd, syscall.SHUT_WR)
	}
}

// writeLocked writes one frame now if nothing is queued, and queues what
// the socket does not take.
func (c *Conn) writeLocked(opcode byte, payload []byte, counted bool) {
	if len(c.out) > 0 {
		c.out = appendFrame(c.out, opcode, payload)
		if counted {
			c.outMsgs++
		}
		return
	}
	bp := framePool.Get().(*[]byte)
	frame := appendFrame((*bp)[:0], opcode, payload)
	n, err := writeFD(c.fd, frame)
	if n == len(frame) {
		putFrame(bp, frame)
		return
	}
	if err != nil && err != syscall.EAGAIN {
		putFrame(bp, frame)
		c.shutLocked() // broken: the loop reads the error next
		return
	}
	c.out = append(make([]byte, 0, len(frame)-n+512), frame[n:]...)
	putFrame(bp, frame)
	if counted {
		c.outMsgs = 1
	}
	c.progress = c.loop.now()
	c.watchOutLocked(true)
}

// writable flushes queued output once the socket has room.
func (c *Conn) writable() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.out) == 0 || c.shut || c.closed {
		c.watchOutLocked(false)
		return
	}
	n, err := writeFD(c.fd, c.out)
	if n > 0 {
		c.out = c.out[n:]
		c.progress = c.loop.now()
	}
	if err != nil && err != syscall.EAGAIN {
		c.shutLocked()
		return
	}
	if len(c.out) == 0 {
		c.out, c.outMsgs = nil, 0
		c.watchOutLocked(false)
		c.shutWriteIfFlushedLocked()
	}
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
	shut := c.shut
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
	c.decode(c.loop.scratch[:n])
}

// decode feeds data to the decoder, unless the connection is closing, in
// which case input is only drained until the peer hangs up.
func (c *Conn) decode(data []byte) {
	if c.gone {
		return
	}
	c.mu.Lock()
	closing := c.closing || c.shut
	c.mu.Unlock()
	if closing {
		c.dec.partial = nil
		return
	}
	err := c.dec.feed(data, c.frame)
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
		c.mu.Lock()
		if !c.closing && !c.shut {
			c.writeLocked(opPong, payload, false)
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
		c.mu.Unlock()
		return errPeerClosed
	}
	return nil
}

// tick sends a due ping and enforces the deadlines.
func (c *Conn) tick(now time.Duration) {
	c.mu.Lock()
	switch {
	case c.closed:
	case c.closing && now > c.closeBy:
		c.mu.Unlock()
		c.finish(c.closeErr)
		return
	case len(c.out) > 0 && now-c.progress > c.loop.cfg.WriteTimeout:
		c.shutLocked()
	case now >= c.pingAt && !c.closing && !c.shut:
		if c.awaitPong {
			// No answer to the last ping within a whole interval.
			c.shutLocked()
			break
		}
		c.writeLocked(opPing, nil, false)
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
	c.out, c.outMsgs = nil, 0
	c.dec = decoder{}
	if c.registered {
		_ = syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
	}
	syscall.Close(c.fd)
	c.mu.Unlock()
	c.h.OnClose(err)
}

// framePool holds buffers for frames written at once; they go back as
// soon as the socket has taken the frame.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

func putFrame(bp *[]byte, frame []byte) {
	if cap(frame) <= 64<<10 {
		*bp = frame[:0]
		framePool.Put(bp)
	}
}

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
