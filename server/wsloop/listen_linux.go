//go:build linux

package wsloop

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Accepting on the loop.
//
// When a connection goes through net/http first, a login costs the server
// a goroutine, net/http's buffers, the runtime's poller registering and
// then forgetting the socket, and a duplicated descriptor when Attach
// takes it over: 19 system calls in all, against 10 when the loop accepts
// the socket itself, reads the request, and writes the 101 response with
// the greeting. So with Listen, the loop owns the listening socket. A new
// connection waits in the epoll set for its request head. If the request
// asks for a WebSocket, the loop calls the http.Handler itself, on the
// loop goroutine, with a ResponseWriter whose Hijack hands back the very
// socket the loop already serves; everything the handler checks (origin,
// caps, routing, security headers) and every refusal it writes stay the
// handler's. Any other request (the page, /healthz, anything the loop is
// not sure of) goes on to net/http, on the listener Listen returns, with
// the bytes already read put back in front.

// headLimit is the largest request head the loop parses itself; a longer
// one goes to net/http, which applies its own limits.
const headLimit = 8 << 10

// acceptBatch bounds the connections taken per readiness event, so that a
// flood of connections does not starve the connections already served.
const acceptBatch = 64

// httpHead is the state of a connection whose request has not been read.
type httpHead struct {
	buf      []byte
	remote   string
	deadline time.Duration
}

// Listen makes the loop accept ln's connections, and serve WebSocket
// requests with h without going through net/http. It returns the listener
// net/http should serve: the connections whose request is anything else.
// Closing it stops the loop from accepting. ln must be a TCP listener
// without TLS. Once Listen has taken ln's socket it closes ln, so an
// error after that (from setsockopt or epoll) leaves ln closed.
func (l *Loop) Listen(ln net.Listener, h http.Handler) (net.Listener, error) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil, fmt.Errorf("wsloop: cannot accept on a %T", ln)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing || l.newLFD != -1 {
		return nil, errors.New("wsloop: loop closed or already listening")
	}
	fd, err := takeFD(tl)
	if err != nil {
		return nil, err
	}
	// Messages go out whole, so Nagle's algorithm would only delay them.
	// Accepted sockets inherit the option on Linux: set here, it costs
	// no system call per connection.
	if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("setting TCP_NODELAY: %w", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("adding listener to epoll set: %w", err)
	}
	// The loop goroutine takes lfd from newLFD when woken; until then it
	// ignores the socket's events, which epoll repeats.
	l.newLFD, l.handler = fd, h
	l.handoff = &handoffListener{loop: l, addr: tl.Addr(), conns: make(chan net.Conn, 64), done: make(chan struct{})}
	l.wakeUp()
	return l.handoff, nil
}

// accept takes new connections off the listening socket and waits for
// their request heads.
func (l *Loop) accept(now time.Duration) {
	for range acceptBatch {
		fd, sa, err := syscall.Accept4(l.lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		switch {
		case err == syscall.EAGAIN:
			return
		case err == syscall.ECONNABORTED || err == syscall.EINTR:
			continue
		case err != nil:
			// Out of descriptors or memory: the socket stays readable,
			// so stop watching it for a while instead of spinning.
			l.log.Warn("accepting connections", "err", err)
			_ = syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, l.lfd, nil)
			l.acceptPaused = true
			return
		}
		c := &Conn{loop: l, fd: fd, h: nopHandler{}, state: stateAccepting,
			head: &httpHead{remote: sockaddrString(sa), deadline: now + l.cfg.HeaderTimeout}}
		if _, err := l.register(c); err != nil {
			l.log.Warn("serving an accepted connection", "err", err)
			c.finish(err)
		}
	}
}

// resumeAccept watches the listening socket again after accept paused.
func (l *Loop) resumeAccept() {
	if !l.acceptPaused || l.lfd < 0 {
		return
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(l.lfd)}
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, l.lfd, &ev); err == nil {
		l.acceptPaused = false
	}
}

// stopListening closes the listening socket; the loop goroutine calls it.
func (l *Loop) stopListening() {
	l.mu.Lock()
	fd := l.newLFD
	l.newLFD = -2 // no Listen after this
	l.mu.Unlock()
	if fd >= 0 {
		syscall.Close(fd) // also leaves the epoll set
	}
	l.lfd = -1
}

// readHead adds data to a new connection's request head and, once the
// head is complete, serves the request.
func (c *Conn) readHead(data []byte) {
	hd := c.head
	hd.buf = append(hd.buf, data...)
	end := headEnd(hd.buf)
	if end < 0 && len(hd.buf) <= headLimit {
		return // more to come
	}
	if end < 0 || end > headLimit {
		c.handOff()
		return
	}
	req, err := http.ReadRequest(bufio.NewReaderSize(bytes.NewReader(hd.buf[:end]), end))
	if err != nil || !isUpgrade(req) {
		c.handOff() // net/http answers it, errors included
		return
	}
	req.RemoteAddr = hd.remote
	c.head = nil
	c.serveUpgrade(req, hd.buf[end:])
}

// headEnd returns the length of the request head at the start of b, up
// to and including the empty line that ends it, or -1 if b does not hold
// all of it yet. Lines may end in a bare LF, as RFC 7230 3.5 allows and
// net/http accepts: a head the loop waited for in vain would go
// unanswered until the head timeout.
func headEnd(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		switch {
		case i < len(b) && b[i] == '\n':
			return i + 1
		case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
			return i + 2
		}
	}
}

// isUpgrade reports whether r is a plain WebSocket request, one that
// net/http would hand to the handler unchanged.
func isUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && r.ProtoAtLeast(1, 1) && r.ContentLength == 0 &&
		len(r.TransferEncoding) == 0 && r.Host != "" &&
		headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

// headerHasToken reports whether a comma-separated header lists token.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// serveUpgrade runs the handler for a WebSocket request. If it hijacks
// the connection (Accept, then Attach), the connection stays in the loop
// as a WebSocket; otherwise its response is written and the connection
// closed.
func (c *Conn) serveUpgrade(req *http.Request, rest []byte) {
	w := &headWriter{c: c, header: http.Header{}, rest: rest}
	defer func() {
		if v := recover(); v != nil {
			c.loop.log.Error("handler panicked on a WebSocket request", "panic", v)
			if !w.hijacked {
				c.finish(fmt.Errorf("handler panicked: %v", v))
			}
		}
	}()
	c.loop.handler.ServeHTTP(w, req)
	if !w.hijacked {
		w.finish()
	}
}

// handOff passes the connection and the bytes read from it to net/http.
func (c *Conn) handOff() {
	l := c.loop
	buf := c.head.buf
	c.head = nil
	c.mu.Lock()
	c.toLocked(stateClosed) // the socket is net/http's now
	c.mu.Unlock()
	l.mu.Lock()
	if l.byFD[c.fd] == c {
		l.byFD[c.fd] = nil
	}
	l.mu.Unlock()
	// The duplicate net.FileConn makes shares the socket, and with it
	// this epoll registration, which closing c.fd would not remove.
	_ = syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
	f := os.NewFile(uintptr(c.fd), "")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		l.log.Warn("handing a connection to net/http", "err", err)
		return
	}
	l.handoff.deliver(&replayConn{Conn: nc, pending: buf})
}

// sockaddrString formats an accepted peer address as net/http would.
func sockaddrString(sa syscall.Sockaddr) string {
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return (&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String()
	case *syscall.SockaddrInet6:
		ip := net.IP(a.Addr[:])
		zone := ""
		if a.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(a.ZoneId)); err == nil {
				zone = ifi.Name
			}
		}
		return (&net.TCPAddr{IP: ip, Port: a.Port, Zone: zone}).String()
	}
	return ""
}

// headWriter is the ResponseWriter of a request the loop serves. Its
// Hijack returns the loop's own connection; anything else written is sent
// as the response, and the connection closed after it.
type headWriter struct {
	c        *Conn
	header   http.Header
	status   int
	body     bytes.Buffer
	rest     []byte // bytes after the request head
	hijacked bool
}

func (w *headWriter) Header() http.Header { return w.header }

func (w *headWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *headWriter) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	w.WriteHeader(http.StatusOK)
	if w.body.Len()+len(p) > headLimit {
		return 0, errors.New("wsloop: response too long")
	}
	return w.body.Write(p)
}

// Hijack hands the socket to Attach, as net/http's Hijack does; the
// returned reader holds the bytes that followed the request head.
func (w *headWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	w.hijacked = true
	r := bufio.NewReaderSize(bytes.NewReader(w.rest), max(len(w.rest), 16))
	if len(w.rest) > 0 {
		_, _ = r.Peek(len(w.rest)) // buffered, as net/http's would be
	}
	return &loopConn{c: w.c}, bufio.NewReadWriter(r, bufio.NewWriterSize(io.Discard, 16)), nil
}

// finish writes the response the handler left and closes the connection
// once it is out.
func (w *headWriter) finish() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %03d %s\r\n", w.status, http.StatusText(w.status))
	w.header.Set("Content-Length", strconv.Itoa(w.body.Len()))
	w.header.Set("Connection", "close")
	_ = w.header.Write(&b)
	b.WriteString("\r\n")
	b.Write(w.body.Bytes())
	c := w.c
	c.mu.Lock()
	c.takeBufferLocked()
	c.out = append(c.out, b.Bytes()...)
	c.toLocked(stateClosing)
	c.closeBy = c.loop.now() + c.loop.cfg.CloseTimeout
	c.writeLocked()
	c.mu.Unlock()
}

// loopConn is the net.Conn a headWriter's Hijack returns: a handle on the
// loop's connection, good only for Attach.
type loopConn struct {
	c *Conn
}

var errLoopConn = errors.New("wsloop: connection belongs to the event loop")

func (lc *loopConn) Read([]byte) (int, error)         { return 0, errLoopConn }
func (lc *loopConn) Write([]byte) (int, error)        { return 0, errLoopConn }
func (lc *loopConn) Close() error                     { lc.c.finish(net.ErrClosed); return nil }
func (lc *loopConn) LocalAddr() net.Addr              { return nil }
func (lc *loopConn) RemoteAddr() net.Addr             { return nil }
func (lc *loopConn) SetDeadline(time.Time) error      { return nil }
func (lc *loopConn) SetReadDeadline(time.Time) error  { return nil }
func (lc *loopConn) SetWriteDeadline(time.Time) error { return nil }

// release lets go of c, a connection the loop accepted whose request is
// being served on the loop goroutine, so that another loop can take its
// socket: it leaves the epoll set and the loop's table, and c is done
// with, without closing the descriptor, which it returns.
func (l *Loop) release(c *Conn) int {
	_ = syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
	l.mu.Lock()
	if l.byFD[c.fd] == c {
		l.byFD[c.fd] = nil
	}
	l.mu.Unlock()
	c.mu.Lock()
	c.toLocked(stateClosed) // the socket is the other loop's now
	c.releaseOutLocked()
	c.mu.Unlock()
	return c.fd
}

// attachOwn makes c, a connection the loop accepted, a WebSocket: Attach
// for a handler the loop itself called.
func (l *Loop) attachOwn(c *Conn, response, pending []byte, open func(*Conn) Handler) {
	c.mu.Lock()
	c.toLocked(stateOpen)
	c.registered = false // what open queues goes out in start, not from the dirty list
	c.mu.Unlock()
	c.start(response, pending, open)
	if l.afterStart != nil {
		l.afterStart(c)
	}
	c.mu.Lock()
	c.registered = true
	if c.watchOut {
		// start's write was partial, and watchOutLocked leaves epoll
		// alone while c is not registered.
		_ = c.epollLocked(syscall.EPOLL_CTL_MOD)
	}
	// Another goroutine may have queued output since start's write.
	wake := c.relistLocked()
	c.mu.Unlock()
	if wake {
		l.wakeUp()
	}
	if len(pending) > 0 {
		l.mu.Lock()
		l.kicked = append(l.kicked, c)
		l.mu.Unlock()
		l.wakeUp()
	}
}

// replayConn is a connection handed to net/http: reads return the bytes
// the loop already read first.
type replayConn struct {
	net.Conn
	pending []byte
}

// SyscallConn lets Attach take the socket back after net/http's upgrade.
func (rc *replayConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := rc.Conn.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("wsloop: %T has no file descriptor", rc.Conn)
	}
	return sc.SyscallConn()
}

func (rc *replayConn) Read(p []byte) (int, error) {
	if len(rc.pending) > 0 {
		n := copy(p, rc.pending)
		rc.pending = rc.pending[n:]
		return n, nil
	}
	return rc.Conn.Read(p)
}

// handoffListener is the listener Listen returns: it yields the
// connections the loop passes on to net/http.
type handoffListener struct {
	loop  *Loop
	addr  net.Addr
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

// deliver queues nc for Accept without blocking the loop.
func (hl *handoffListener) deliver(nc net.Conn) {
	select {
	case <-hl.done:
		nc.Close()
		return
	default:
	}
	select {
	case hl.conns <- nc:
		return
	default:
	}
	go func() {
		select {
		case hl.conns <- nc:
		case <-hl.done:
			nc.Close()
		}
	}()
}

func (hl *handoffListener) Accept() (net.Conn, error) {
	select {
	case nc := <-hl.conns:
		return nc, nil
	case <-hl.done:
		return nil, net.ErrClosed
	}
}

// Close stops the loop from accepting connections.
func (hl *handoffListener) Close() error {
	hl.once.Do(func() {
		close(hl.done)
		l := hl.loop
		// Under mu: once closing is set the loop may close the pipe.
		l.mu.Lock()
		l.stopListen = true
		if !l.closing {
			l.wakeUp()
		}
		l.mu.Unlock()
		for {
			select {
			case nc := <-hl.conns:
				nc.Close()
			default:
				return
			}
		}
	})
	return nil
}

func (hl *handoffListener) Addr() net.Addr { return hl.addr }
