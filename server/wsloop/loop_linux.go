//go:build linux

package wsloop

import (
	"errors"
	"fmt"
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
		c.tick(now)
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
