//go:build linux

package wsloop

import (
	"bytes"
	"context"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// A client that never reads: its queue grows, and once the socket has
// taken nothing for the write timeout the connection ends, while another
// connection keeps working.
func TestStuckWriterTimesOut(t *testing.T) {
	t.Parallel()
	// The timeout leaves room for a slow machine: the queue must grow to
	// 100 messages before the socket has taken nothing for that long.
	url, conns := startEcho(t, Config{WriteTimeout: time.Second, PingInterval: time.Hour})
	_ = rawUpgrade(t, url, nil)
	stuck := <-conns
	other := dial(t, url)
	<-conns
	msg := make([]byte, 32<<10)
	most := 0
	for i := 0; i < 2000 && most < 100*len(msg); i++ {
		n := stuck.c.Send(msg)
		if n < 0 {
			// On a loaded machine the write timeout can pass while this
			// loop still sends: the end came, after output had waited.
			break
		}
		most = max(most, n)
	}
	if most < 10*len(msg) {
		t.Fatalf("64 MB sent to a client that does not read, and at most %d bytes waiting", most)
	}
	roundTrip(t, other, "still here")
	waitClosed(t, stuck)
	if n := stuck.c.Send(msg); n != -1 {
		t.Fatalf("Send after the end returned %d", n)
	}
}

// Send reports the bytes still waiting for the socket: once the client
// has read what was queued, a Send counts only its own frame again.
func TestSendCountsBytesStillWaiting(t *testing.T) {
	t.Parallel()
	url, conns := startEcho(t, Config{PingInterval: time.Hour})
	c := dial(t, url)
	e := <-conns
	msg := []byte("counted")
	frame := len(appendFrame(nil, opText, msg))
	for i := range 3 {
		if n := e.c.Send(msg); n != frame {
			t.Fatalf("send %d: %d bytes waiting, want %d (this frame only)", i, n, frame)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, got, err := c.Read(ctx)
		cancel()
		if err != nil || string(got) != string(msg) {
			t.Fatalf("read %q, %v", got, err)
		}
	}
}

// A peer that floods pings and never reads gets at most one pong queued:
// it cannot make the server buffer without bound.
func TestPingFloodDoesNotGrowOutput(t *testing.T) {
	t.Parallel()
	url, conns := startEcho(t, Config{PingInterval: time.Hour})
	nc := rawUpgrade(t, url, nil)
	e := <-conns
	ping := clientFrame(true, opPing, make([]byte, 125), 0x0A0B0C0D)
	burst := bytes.Repeat(ping, 1000)
	for range 100 { // 13 MB of pings, more than both socket buffers hold
		_ = nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := nc.Write(burst); err != nil {
			t.Fatalf("writing pings: %v", err)
		}
	}
	// Wait until the loop has read every ping: nothing is left in flight
	// from the client or unread at the server.
	deadline := time.Now().Add(10 * time.Second)
	for unsent(t, nc) > 0 || unread(t, e.c.fd) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the loop never read the pings")
		}
		time.Sleep(time.Millisecond) // a poll of a state
	}
	e.c.mu.Lock()
	pending := len(e.c.out) - e.c.written
	e.c.mu.Unlock()
	if pending > 2*(maxControlPayload+2) {
		t.Fatalf("%d bytes of pongs queued for a peer that does not read", pending)
	}
}

// Sends from many goroutines at once all arrive, each goroutine's in
// order: no message is lost to the hand-over between senders and the
// loop, which alone writes (a lost wake-up would stall the reader).
func TestConcurrentSendsAllArrive(t *testing.T) {
	t.Parallel()
	url, conns := startEcho(t, Config{})
	c := dial(t, url)
	e := <-conns
	const senders, each = 8, 2000
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if e.c.Send([]byte(strconv.Itoa(g)+":"+strconv.Itoa(i))) < 0 {
					t.Errorf("sender %d: message %d refused", g, i)
					return
				}
				if i%100 == 0 {
					runtime.Gosched() // let the loop flush in between
				}
			}
		}()
	}
	next := make([]int, senders)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range senders * each {
		_, msg, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("after %v messages: %v", next, err)
		}
		g, i, _ := strings.Cut(string(msg), ":")
		gi, _ := strconv.Atoi(g)
		ii, _ := strconv.Atoi(i)
		if ii != next[gi] {
			t.Fatalf("sender %d: got message %d, want %d", gi, ii, next[gi])
		}
		next[gi]++
	}
	wg.Wait()

	// A send from another goroutine while the loop sleeps wakes it: the
	// message does not wait for the loop's next tick (1 s here).
	for i := range 3 {
		time.Sleep(50 * time.Millisecond) // the loop is back in epoll_wait
		start := time.Now()
		go e.c.Send([]byte("wake"))
		if _, msg, err := c.Read(ctx); err != nil || string(msg) != "wake" {
			t.Fatalf("wake-up %d: %q, %v", i, msg, err)
		}
		if d := time.Since(start); d > 800*time.Millisecond {
			t.Fatalf("wake-up %d: a send from another goroutine took %v, as if it waited for a tick", i, d)
		}
	}
}

// A tick pass sends due pings a chunk at a time, so that connections that
// came due together cannot hold the loop for one long stretch.
func TestTickPingsInChunks(t *testing.T) {
	t.Parallel()
	const n = 600
	l := &Loop{cfg: Config{}.withDefaults(), start: time.Now(), lfd: -1, newLFD: -1}
	peers := make([]int, n)
	for i := range n {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Close(fds[0]); syscall.Close(fds[1]) })
		l.byFD = append(l.byFD, &Conn{loop: l, fd: fds[0], state: stateOpen}) // ping due at once
		peers[i] = fds[1]
	}
	pinged := func() int {
		count := 0
		for _, fd := range peers {
			var b [16]byte
			if n, _ := syscall.Read(fd, b[:]); n > 0 {
				count++
			}
		}
		return count
	}
	l.startTick()
	total := 0
	for _, want := range []int{tickChunk, tickChunk, n - 2*tickChunk} {
		l.tickSome(time.Millisecond, tickChunk)
		if got := pinged(); got != want {
			t.Fatalf("%d connections pinged by one chunk, want %d", got, want)
		}
		total += want
	}
	if len(l.snap) != 0 || total != n {
		t.Fatalf("%d connections left in the pass after pinging %d", len(l.snap), total)
	}
}

// A message followed in the same read by ten pings: the pongs may skip
// pings, but only in favour of the most recent one (RFC 6455 5.5.3), so
// the last ping is always answered, and nothing is answered twice.
func TestLatestPingIsAnswered(t *testing.T) {
	t.Parallel()
	url, conns := startEcho(t, Config{PingInterval: time.Hour})
	in := clientFrame(true, opText, []byte("m"), 1)
	for i := range 10 {
		in = append(in, clientFrame(true, opPing, []byte{'0' + byte(i)}, 2)...)
	}
	in = append(in, clientFrame(true, opText, []byte("end"), 3)...)
	nc := rawUpgrade(t, url, in)
	<-conns
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	last, echoes := -1, 0
	for last != 9 || echoes < 2 {
		var h [2]byte
		if _, err := io.ReadFull(nc, h[:]); err != nil {
			t.Fatalf("after pong %d and %d echoes: %v", last, echoes, err)
		}
		p := make([]byte, h[1]&0x7f)
		if _, err := io.ReadFull(nc, p); err != nil {
			t.Fatal(err)
		}
		switch h[0] & 0x0f {
		case opPong:
			if n := int(p[0] - '0'); len(p) != 1 || n <= last {
				t.Fatalf("pong %q after pong %d", p, last)
			} else {
				last = n
			}
		case opText:
			echoes++
		}
	}
}

// unread is how many bytes wait in fd's receive queue (FIONREAD).
func unread(t *testing.T, fd int) int {
	t.Helper()
	var n int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TIOCINQ, uintptr(unsafe.Pointer(&n))); errno != 0 {
		t.Fatalf("FIONREAD: %v", errno)
	}
	return int(n)
}

// unsent is how many bytes nc has not had acknowledged yet (SIOCOUTQ).
func unsent(t *testing.T, nc net.Conn) int {
	t.Helper()
	if bc, ok := nc.(*bufConn); ok {
		nc = bc.Conn
	}
	raw, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int32
	var errno syscall.Errno
	if err := raw.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&n)))
	}); err != nil || errno != 0 {
		t.Fatalf("SIOCOUTQ: %v %v", err, errno)
	}
	return int(n)
}
