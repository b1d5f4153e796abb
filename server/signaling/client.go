package signaling

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Client is one WebSocket connection. Its reader is the goroutine running
// Hub.Serve; its writer exists only while the queue is non-empty.
type Client struct {
	hub    *Hub
	conn   *websocket.Conn
	id     uint64
	remote string

	// name and nameJSON are written once, under hub.mu, by the client's
	// own reader goroutine, which is also the only one reading them
	// without the lock.
	name     string
	nameJSON []byte

	// Guarded by hub.mu.
	peers      map[*Client]struct{} // users this client shares a call with
	subscribed bool                 // receives presence messages

	// Outgoing queue, guarded by qmu.
	qmu     sync.Mutex
	queue   [][]byte
	writing bool // a writer goroutine is draining queue
	dead    bool // connection is closing; drop further sends

	// Token bucket, touched only by the reader goroutine.
	tokens  float64
	last    time.Time
	strikes int

	pingTimer *time.Timer

	batch Batcher // nil: one write (and system call) per message
}

// send queues msg for the client without blocking. A client whose queue is
// full is too slow to keep up and is disconnected; the sender never waits.
// It reports whether msg was queued.
func (c *Client) send(msg []byte) bool {
	c.qmu.Lock()
	if c.dead {
		c.qmu.Unlock()
		return false
	}
	if len(c.queue) >= c.hub.cfg.SendQueue {
		c.dead = true
		c.queue = nil
		c.qmu.Unlock()
		c.hub.stats.SlowDisconnects.Add(1)
		c.hub.log.Warn("disconnecting slow client", "conn", c.id, "remote", c.remote)
		// A close frame would queue behind the data the client is not
		// reading, so drop the connection at once; its reader then
		// releases the name.
		go c.conn.CloseNow()
		return false
	}
	c.queue = append(c.queue, msg)
	c.hub.stats.noteQueueLen(len(c.queue))
	if !c.writing {
		c.writing = true
		go c.writeLoop()
	}
	c.qmu.Unlock()
	return true
}

// writeLoop drains the queue, then exits, so idle clients hold no writer.
func (c *Client) writeLoop() {
	for {
		c.qmu.Lock()
		if len(c.queue) == 0 || c.dead {
			c.writing = false
			c.queue = nil // give the backing array back while idle
			c.qmu.Unlock()
			return
		}
		// Take everything queued: it goes out as one batch (batch.go).
		// A client can thus hold one batch in flight plus a full queue,
		// at most twice SendQueue messages, before it is cut off.
		msgs := c.queue
		c.queue = nil
		c.qmu.Unlock()

		if err := c.writeAll(msgs); err != nil {
			// A failed or timed-out write leaves the connection unusable;
			// coder/websocket has closed it, which ends the reader too.
			c.markDead()
			c.conn.CloseNow()
			return
		}
	}
}

// markDead stops further sends and pings.
func (c *Client) markDead() {
	c.qmu.Lock()
	c.dead = true
	c.queue = nil
	c.qmu.Unlock()
}

// ping sends one keep-alive ping and schedules the next. A peer that does
// not answer within the ping interval is dropped; there is no point in a
// close handshake with a peer that does not answer.
func (c *Client) ping() {
	ctx, cancel := context.WithTimeout(context.Background(), c.hub.cfg.PingInterval)
	err := c.conn.Ping(ctx)
	cancel()
	if err != nil {
		c.conn.CloseNow()
		return
	}
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.dead {
		return
	}
	c.pingTimer.Reset(c.hub.cfg.PingInterval)
}

// allow takes one token from the client's bucket.
func (c *Client) allow(now time.Time) bool {
	rate := c.hub.cfg.MsgRate
	if rate < 0 {
		return true
	}
	burst := float64(c.hub.cfg.MsgBurst)
	if c.last.IsZero() {
		c.tokens = burst
	} else {
		c.tokens += now.Sub(c.last).Seconds() * rate
		if c.tokens > burst {
			c.tokens = burst
		}
	}
	c.last = now
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}

// bufPool recycles read buffers: frames are parsed and copied out before
// the buffer is returned, and idle connections hold none.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readLoop reads frames until the connection ends. Between messages it
// waits in IdleWaiter, if the connection has one, on a shallow stack; the
// work for one message is in readMessage so that its larger frame is gone
// while the connection idles.
func (c *Client) readLoop(ctx context.Context) error {
	idle, _ := c.batch.(IdleWaiter)
	for {
		if idle != nil {
			if err := idle.WaitReadable(); err != nil {
				return err
			}
		}
		if err := c.readMessage(ctx); err != nil {
			return err
		}
	}
}

// readMessage reads and handles one message.
func (c *Client) readMessage(ctx context.Context) error {
	_, r, err := c.conn.Reader(ctx)
	if err != nil {
		return err
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(r); err != nil {
		return err
	}
	if c.allow(time.Now()) {
		c.strikes = 0
		c.hub.handle(c, buf.Bytes())
		return nil
	}
	c.strikes++
	c.hub.stats.countRefusal(CodeRateLimited)
	c.send(encodeError(CodeRateLimited, "Too many messages; slow down.", ""))
	if c.strikes >= strikesBeforeClose {
		c.conn.Close(websocket.StatusPolicyViolation, "rate limit exceeded")
		return errRateAbuse
	}
	return nil
}
