package signaling

import (
	"sync/atomic"
	"time"
)

// Client is one connection as the hub sees it: its name, its calls and
// its rate limit. The transport behind conn calls OnMessage for each
// message, one at a time, and OnClose once at the end.
type Client struct {
	hub    *Hub
	conn   Conn
	id     uint64
	remote string
	done   func() // called once the client is gone; may be nil

	// name and nameJSON are written once, under hub.mu, by the client's
	// own OnMessage, or with a cluster by the claim goroutine that
	// finishes its login (cluster.go). OnMessage is the only one reading
	// them without the lock, and only after loggedIn, whose load of
	// claiming orders it after that write.
	name     string
	nameJSON []byte
	claiming atomic.Bool // a login waits for its cluster claim

	// Guarded by hub.mu.
	peers      map[*Client]struct{} // users this client shares a call with
	subscribed bool                 // receives presence messages
	rpeers     map[string]struct{}  // users on other instances it shares a call with (cluster.go)

	// Touched only by OnMessage.
	tokens  float64
	last    time.Time
	strikes int
	closing bool // asked to close: further messages are ignored

	slow     atomic.Bool // cut off for not reading
	replaced atomic.Bool // a new connection resumed its session (session.go)
}

// send queues msg for the client without blocking. A client with more
// than SendQueueBytes waiting is too slow to keep up and is
// disconnected; the sender never waits. It reports whether msg was queued.
func (c *Client) send(msg []byte) bool {
	n := c.conn.Send(msg)
	if n < 0 {
		return false
	}
	c.hub.stats.noteQueueLen(n)
	if n <= c.hub.cfg.SendQueueBytes {
		return true
	}
	if c.slow.CompareAndSwap(false, true) {
		c.hub.stats.SlowDisconnects.Add(1)
		c.hub.log.Warn("disconnecting slow client", "conn", c.id, "remote", c.remote, "name", c.logName())
	}
	// A close frame would queue behind the data the client is not
	// reading, so drop the connection at once; its end releases the name.
	c.conn.CloseNow()
	return false
}

// logName is the name for a log line written on any goroutine: while a
// claim goroutine may be writing it, none yet.
func (c *Client) logName() string {
	if c.claiming.Load() {
		return ""
	}
	return c.name
}

// OnMessage handles one message from the client, within its rate limit.
// data is not kept after the call.
func (c *Client) OnMessage(data []byte) {
	if c.closing {
		return
	}
	if c.allow(time.Now()) {
		c.strikes = 0
		c.hub.handle(c, data)
		return
	}
	c.strikes++
	c.hub.stats.countRefusal(CodeRateLimited)
	c.send(encodeError(CodeRateLimited, "Too many messages; slow down.", ""))
	if c.strikes >= strikesBeforeClose {
		c.closing = true
		c.conn.Close(statusPolicyViolation, "rate limit exceeded")
	}
}

// OnClose releases everything the client held once its connection has
// ended.
func (c *Client) OnClose(err error) {
	c.hub.close(c, err)
}

// loggedIn reports whether c has a name. Only c's OnMessage may call it.
func (c *Client) loggedIn() bool { return !c.claiming.Load() && c.name != "" }

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
