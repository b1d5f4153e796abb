package e2e

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"testing"
)

// flakyLink is one browser's network path to the server: a TCP proxy the
// test can cut the way a network change does. The browser sees its
// connections reset at once; the server's side stays open and silent, so
// the server holds the old WebSocket as if its peer had vanished. While
// the link is down, new connections are accepted and closed at once.
type flakyLink struct {
	t      *testing.T
	ln     net.Listener
	target string

	mu     sync.Mutex
	pairs  map[*proxyPair]struct{}
	down   bool
	closes []uint16 // close codes the server sent into cut connections
}

type proxyPair struct {
	client, server net.Conn
	cut            bool // guarded by flakyLink.mu
	stalled        bool // guarded by flakyLink.mu: bytes vanish both ways
}

// newFlakyLink proxies a loopback port to target until the test ends.
func newFlakyLink(t *testing.T, target string) *flakyLink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &flakyLink{t: t, ln: ln, target: target, pairs: map[*proxyPair]struct{}{}}
	go l.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		l.mu.Lock()
		defer l.mu.Unlock()
		for p := range l.pairs {
			_ = p.client.Close()
			_ = p.server.Close()
		}
	})
	return l
}

// URL is the page's address through the link.
func (l *flakyLink) URL(query string) string {
	u := "http://" + l.ln.Addr().String() + "/"
	if query != "" {
		u += "?" + query
	}
	return u
}

func (l *flakyLink) accept() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		down := l.down
		l.mu.Unlock()
		if down {
			_ = c.Close()
			continue
		}
		s, err := net.Dial("tcp", l.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p := &proxyPair{client: c, server: s}
		l.mu.Lock()
		l.pairs[p] = struct{}{}
		l.mu.Unlock()
		go l.up(p)
		go l.downstream(p)
	}
}

// up copies browser -> server. A browser that closes (not a cut) closes
// the server side too, as a real close would.
func (l *flakyLink) up(p *proxyPair) {
	buf := make([]byte, 32<<10)
	for {
		n, err := p.client.Read(buf)
		l.mu.Lock()
		stalled := p.stalled
		l.mu.Unlock()
		if n > 0 && !stalled {
			if _, err := p.server.Write(buf[:n]); err != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	l.mu.Lock()
	cut := p.cut
	l.mu.Unlock()
	if !cut {
		_ = p.server.Close()
	}
}

// downstream copies server -> browser until the pair is cut, then reads
// what the server still sends into the void, noting its close frames.
func (l *flakyLink) downstream(p *proxyPair) {
	buf := make([]byte, 32<<10)
	var void []byte // bytes after the cut, parsed as server frames
	for {
		n, err := p.server.Read(buf)
		l.mu.Lock()
		cut, stalled := p.cut, p.stalled
		l.mu.Unlock()
		if stalled && !cut {
			n = 0
		}
		if n > 0 && !cut {
			if _, werr := p.client.Write(buf[:n]); werr != nil && !errors.Is(werr, net.ErrClosed) {
				cut = true
			}
		} else if n > 0 {
			void = append(void, buf[:n]...)
			void = l.noteCloses(void)
		}
		if err != nil {
			_ = p.client.Close()
			l.mu.Lock()
			delete(l.pairs, p)
			l.mu.Unlock()
			return
		}
	}
}

// noteCloses records the status of each complete close frame in b (server
// frames are unmasked) and returns what is left of an incomplete frame.
func (l *flakyLink) noteCloses(b []byte) []byte {
	for len(b) >= 2 {
		n, hdr := int(b[1]&0x7f), 2
		switch n {
		case 126:
			if len(b) < 4 {
				return b
			}
			n, hdr = int(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			if len(b) < 10 {
				return b
			}
			n, hdr = int(binary.BigEndian.Uint64(b[2:])), 10
		}
		if len(b) < hdr+n {
			return b
		}
		if b[0]&0x0f == 8 && n >= 2 {
			l.mu.Lock()
			l.closes = append(l.closes, binary.BigEndian.Uint16(b[hdr:]))
			l.mu.Unlock()
		}
		b = b[hdr+n:]
	}
	return b
}

// cut resets the browser's connections and leaves the server's side
// dangling; with down, new connections fail until setDown(false).
func (l *flakyLink) cut(down bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = down
	for p := range l.pairs {
		p.cut = true
		if tc, ok := p.client.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset, as when the address is gone
		}
		_ = p.client.Close()
	}
}

// stall makes the current connections silent both ways, without closing
// anything: the browser's socket looks open, as after a network change
// the browser has not noticed. New connections work.
func (l *flakyLink) stall() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for p := range l.pairs {
		p.stalled = true
	}
}

func (l *flakyLink) setDown(down bool) {
	l.mu.Lock()
	l.down = down
	l.mu.Unlock()
}

// closeCodes returns the close codes the server sent into cut connections.
func (l *flakyLink) closeCodes() []uint16 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]uint16(nil), l.closes...)
}
