package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Stalled receivers (relay -stalled N): N users log in and then never
// read again, with a small socket receive buffer so that what the server
// sends them piles up in the server and not in the kernel. Flooders send
// large offers at them round robin while the pairs relay; the server must
// cut each stalled user off once its queued output passes
// -send-queue-bytes, keep its own memory bounded (-rss-limit), and never
// slow the pairs down. A stalled user counts as cut off when an offer to
// it is answered with user-not-found, or the flooder gets its leave: its
// name is gone.
//
// The server's own socket send buffer (which Linux grows up to
// net.ipv4.tcp_wmem's maximum, 4 MiB) takes its share before any output
// queues in the server: about 3 MB per stalled user on loopback here. That
// is kernel memory, not the server's RSS.

// stalledRcvBuf is the receive buffer a stalled user asks for: the kernel
// doubles it and rounds it up, but it stays a few KiB.
const stalledRcvBuf = 4 << 10

// flooders is how many connections send at the stalled users.
const flooders = 4

// floodSize is the size of one flood offer: large, and well under the
// server's default read limit of 64 KiB.
const floodSize = 32 << 10

// stalled is the population of users that never read.
type stalled struct {
	conns   []*rawConn
	names   []string
	cut     []atomic.Bool
	nCut    atomic.Int64
	floodTx atomic.Int64 // offers the flooders sent
}

// connectStalled logs in n users that will never read again.
func connectStalled(ctx context.Context, cfg *config, d *dialer, errs *counters, n int) *stalled {
	s := &stalled{conns: make([]*rawConn, n), names: make([]string, n), cut: make([]atomic.Bool, n)}
	var wg sync.WaitGroup
	sem := make(chan struct{}, cfg.concurrency)
	for i := range n {
		s.names[i] = cfg.prefix + "s" + strconv.Itoa(i)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if ctx.Err() != nil {
				return
			}
			deadline := time.Now().Add(cfg.timeout)
			c, err := d.rawDialSmall(deadline, rand.NewChaCha8([32]byte{byte(i), byte(i >> 8)}))
			if err == nil {
				err = c.login(deadline, s.names[i], false)
				_ = c.nc.SetDeadline(time.Time{})
			}
			if err != nil {
				errs.add("stalled-login", 1, fmt.Errorf("%s: %w", s.names[i], err))
				if c != nil {
					c.nc.Close()
				}
				s.cut[i].Store(true) // nothing to flood
				return
			}
			s.conns[i] = c
		})
	}
	wg.Wait()
	return s
}

// rawDialSmall is rawDial with a small receive buffer, set before the
// connection is made so that the TCP window stays small.
func (d *dialer) rawDialSmall(deadline time.Time, rng *rand.ChaCha8) (*rawConn, error) {
	nd := *d.netDialers[d.next.Add(1)%uint64(len(d.netDialers))]
	nd.Control = setRcvBuf(stalledRcvBuf)
	nc, err := nd.Dial("tcp", d.host)
	if err != nil {
		return nil, fmt.Errorf("dialing: %w", err)
	}
	c := &rawConn{nc: nc, br: bufio.NewReaderSize(nc, 1024), rng: rng}
	if err := c.handshake(deadline, d.host, d.path); err != nil {
		nc.Close()
		return nil, err
	}
	msg, err := c.read()
	if err := checkGreeting(msg, err, d.tutorial); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// flood sends offers at the stalled users that are not cut off yet until
// all are (or the run's -max-time ends it): not until a time, since how
// long the server takes depends on how busy the machine is. Each flooder reads its replies on another
// goroutine: user-not-found marks the target as cut off.
func (s *stalled) flood(ctx context.Context, cfg *config, d *dialer, errs *counters) {
	var wg sync.WaitGroup
	for f := range flooders {
		deadline := time.Now().Add(cfg.timeout)
		c, err := d.rawDial(deadline, rand.NewChaCha8([32]byte{0xf1, byte(f)}))
		if err == nil {
			err = c.login(deadline, cfg.prefix+"flood"+strconv.Itoa(f), false)
			_ = c.nc.SetDeadline(time.Time{})
		}
		if err != nil {
			errs.add("flooder-login", 1, err)
			continue
		}
		done := make(chan struct{})
		wg.Go(func() { // replies
			defer close(done)
			for {
				msg, err := c.read()
				if err != nil {
					return
				}
				// user-not-found for an offer to a user that is gone, or
				// leave: the offer had opened a call, which its end ends.
				if string(field(msg, "code")) != "user-not-found" && string(field(msg, "type")) != "leave" {
					errs.add("flooder-reply", 1, fmt.Errorf("%w: %.100q", errUnexpected, msg))
					continue
				}
				name := string(field(msg, "name"))
				for i, n := range s.names {
					if n == name && !s.cut[i].Swap(true) {
						s.nCut.Add(1)
					}
				}
			}
		})
		wg.Go(func() { // offers
			defer func() {
				c.nc.Close() // ends the reply reader too
				<-done
			}()
			filler := bytes.Repeat([]byte("x"), floodSize)
			var msg []byte
			for i := f; ctx.Err() == nil; i++ {
				k := i % len(s.names)
				if s.cut[k].Load() {
					if s.allCut() {
						return
					}
					continue
				}
				msg = append(msg[:0], `{"type":"offer","name":`...)
				msg = strconv.AppendQuote(msg, s.names[k])
				msg = append(msg, `,"offer":{"sdp":"`...)
				msg = append(msg, filler...)
				msg = append(msg, `"}}`...)
				_ = c.nc.SetWriteDeadline(time.Now().Add(cfg.timeout))
				if err := c.write(opText, msg); err != nil {
					errs.add("flooder-write", 1, err)
					return
				}
				s.floodTx.Add(1)
			}
		})
	}
	wg.Wait()
}

func (s *stalled) allCut() bool {
	for i := range s.cut {
		if !s.cut[i].Load() {
			return false
		}
	}
	return true
}

// close drops the stalled users' connections.
func (s *stalled) close() {
	for _, c := range s.conns {
		if c != nil {
			c.nc.Close()
		}
	}
}

// rssPeak samples the server's RSS every 50 ms until stop is closed.
func rssPeak(pid int, stop <-chan struct{}) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var peak int64
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if rss, err := procRSS(pid); err == nil {
				peak = max(peak, rss)
			}
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}
