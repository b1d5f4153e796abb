//go:build linux

package wsloop

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
)

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
	c := &Conn{loop: l, fd: fd, state: stateOpen}
	// The loop does not know c yet, so this goroutine still owns the
	// socket.
	c.start(response, pending, open)
	h := c.h

	wake, err := l.register(c)
	if err != nil {
		// The loop is closing, or out of epoll watches: it will never
		// hear of c.
		c.mu.Lock()
		c.toLocked(stateClosed)
		syscall.Close(fd)
		c.mu.Unlock()
		h.OnClose(err)
		if errors.Is(err, net.ErrClosed) {
			return nil // shutting down: the handler has been told
		}
		return err
	}
	if len(pending) > 0 {
		// Bytes that came with the handshake wait in the decoder; the
		// loop decodes them when woken, even if no more arrive.
		l.mu.Lock()
		l.kicked = append(l.kicked, c)
		l.mu.Unlock()
	}
	if wake || len(pending) > 0 {
		l.wakeUp()
	}
	return nil
}

// register makes the loop serve c: c enters the loop's table and its
// epoll set. Every connection a loop serves comes through here, whether
// the loop accepted it (accept) or it was attached (attachFD). It
// reports whether output queued before registration (Send or Close from
// another goroutine, which only marks c dirty while it is unregistered)
// needs the loop woken. On an error (the loop is closing: net.ErrClosed;
// epoll refuses the socket) c is in neither, and the caller closes it.
func (l *Loop) register(c *Conn) (wake bool, err error) {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return false, net.ErrClosed
	}
	for len(l.byFD) <= c.fd {
		l.byFD = append(l.byFD, nil)
	}
	l.byFD[c.fd] = c
	l.mu.Unlock()

	c.mu.Lock()
	err = c.epollLocked(syscall.EPOLL_CTL_ADD)
	c.registered = err == nil
	wake = c.registered && c.relistLocked()
	c.mu.Unlock()
	if err != nil {
		l.mu.Lock()
		l.byFD[c.fd] = nil
		l.mu.Unlock()
		return false, fmt.Errorf("adding connection to epoll set: %w", err)
	}
	return wake, nil
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
