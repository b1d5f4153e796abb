package signaling

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
)

// helloText is the compat "message" of the hello greeting.
const helloText = "Hello world"

// Hub is the registry of connections and names, the call pairs between
// them, and the presence state. One mutex guards all of it; nothing under
// the lock blocks or waits for the network (see Conn).
type Hub struct {
	cfg   Config
	log   *slog.Logger
	hello []byte
	stats Stats

	nextID atomic.Uint64

	mu       sync.Mutex
	closing  bool
	clients  map[*Client]struct{}
	live     sync.WaitGroup // one per client in clients, until its close
	byName   map[string]*Client
	presence presence
	sessions map[string]*session // resume tokens by name (session.go)
	held     []heldSession       // sessions of closed connections, oldest first
	cl       clusterState        // the seam for scale (cluster.go)
}

// NewHub returns a hub with cfg's limits (zero fields take defaults).
func NewHub(cfg Config, log *slog.Logger) *Hub {
	cfg = cfg.withDefaults()
	h := &Hub{
		cfg:     cfg,
		log:     log,
		clients: make(map[*Client]struct{}),
		byName:  make(map[string]*Client),
	}
	h.sessions = make(map[string]*session)
	h.hello = mustJSON(helloMessage{Type: "hello", Message: helloText, IceServers: cfg.ICE.HelloServers(), TestRelay: cfg.TestRelay, HTTPSPort: cfg.HTTPSPort})
	h.presence.init(h)
	return h
}

// Config returns the hub's configuration, defaults filled in. The
// transports in front of the hub take their limits from it.
func (h *Hub) Config() Config { return h.cfg }

// Stats returns the hub's live counters.
func (h *Hub) Stats() *Stats { return &h.stats }

// Online returns the number of logged-in names.
func (h *Hub) Online() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.byName)
}

// Open registers a new connection and greets it. The transport behind
// conn then calls the Client's OnMessage for each message, one at a time,
// and its OnClose once. Open returns nil, after starting the connection's
// close with status 1001 and calling done, when the hub is shutting down.
// done, if not nil, is called once the client is gone.
func (h *Hub) Open(conn Conn, remote string, done func()) *Client {
	c := &Client{hub: h, conn: conn, id: h.nextID.Add(1), remote: remote, done: done}
	if !h.add(c) {
		conn.Close(statusGoingAway, "server shutting down")
		if done != nil {
			done()
		}
		return nil
	}
	h.stats.Connections.Add(1)
	h.log.Debug("connection opened", "conn", c.id, "remote", remote)
	c.send(h.hello)
	return c
}

// close releases everything a connection held once it has ended.
func (h *Hub) close(c *Client, err error) {
	c.conn.CloseNow()
	h.remove(c)
	h.stats.Connections.Add(-1)
	h.log.Debug("connection closed", "conn", c.id, "name", c.name, "err", err)
	if c.done != nil {
		c.done()
	}
	h.live.Done()
}

// Shutdown closes every connection with status 1001 (going away) and
// refuses new ones. It returns when all close handshakes have finished or
// timed out, or when ctx is done.
func (h *Hub) Shutdown(ctx context.Context) {
	h.mu.Lock()
	h.closing = true
	clients := make([]*Client, 0, len(h.clients))
	for c := range h.clients {
		clients = append(clients, c)
	}
	h.mu.Unlock()
	h.presence.stop()

	for _, c := range clients {
		c.conn.Close(statusGoingAway, "server shutting down")
	}
	done := make(chan struct{})
	// Claims in flight end within the cluster's timeout; their names go
	// back before the cluster is closed after Shutdown.
	go func() { h.live.Wait(); h.cl.claims.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		for _, c := range clients {
			c.conn.CloseNow()
		}
		<-done
	}
}

func (h *Hub) add(c *Client) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.clients[c] = struct{}{}
	h.live.Add(1)
	return true
}

// remove releases the client's name at once and tells every call peer.
func (h *Hub) remove(c *Client) {
	h.mu.Lock()
	delete(h.clients, c)
	held := c.name != "" && h.byName[c.name] == c
	if held {
		delete(h.byName, c.name)
		if h.cl.cluster == nil {
			h.presence.left(c.name)
		}
	}
	if h.cl.cluster != nil {
		h.removeClusterLocked(c, held)
	}
	if c.subscribed {
		h.presence.unsubscribe(c)
	}
	h.endSessionLocked(c, time.Now())
	peers := c.peers
	c.peers = nil
	for p := range peers {
		delete(p.peers, c)
	}
	h.mu.Unlock()

	if len(peers) > 0 {
		msg := encodeLeave(c.nameJSON, ReasonOffline)
		for p := range peers {
			p.send(msg)
		}
	}
}

// handle dispatches one frame from c.
func (h *Hub) handle(c *Client, data []byte) {
	var m inbound
	if err := parseObject(data, &m); err != nil {
		h.refuse(c, CodeInvalidJSON, "Invalid message: "+err.Error(), "")
		return
	}
	switch m.Type {
	case "login":
		h.login(c, &m)
	case "offer", "answer", "candidate":
		h.relay(c, &m)
	case "leave":
		h.leave(c, &m)
	case "ice":
		h.refreshICE(c)
	default:
		// The compat text of the tutorial server, byte for byte.
		h.refuse(c, CodeUnknownType, "Command not found: "+m.Type, "")
	}
}

// parseObject is parse plus the rule that a message is a JSON object.
func parseObject(data []byte, m *inbound) error {
	trimmed := bytes.TrimLeftFunc(data, unicode.IsSpace)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return errors.New("not a JSON object")
	}
	return parse(data, m)
}

// refuse sends an error reply and counts it.
func (h *Hub) refuse(c *Client, code, message, name string) {
	h.stats.countRefusal(code)
	c.send(encodeError(code, message, name))
}

func (h *Hub) refuseLogin(c *Client, code, message string) {
	h.stats.countRefusal(code)
	c.send(mustJSON(loginReply{Type: "login", Success: false, Code: code, Message: message}))
}

func (h *Hub) login(c *Client, m *inbound) {
	if c.claiming.Load() {
		h.refuseLogin(c, CodeAlreadyLoggedIn, "A login is already under way on this connection.")
		return
	}
	if c.name != "" {
		h.refuseLogin(c, CodeAlreadyLoggedIn, "Already logged in as "+c.name+".")
		return
	}
	name, err := normalizeName(m.Name)
	if err != nil {
		h.refuseLogin(c, CodeInvalidName, "Invalid name: "+err.Error()+".")
		return
	}
	// Credentials and the token are made outside the lock; they are only
	// sent if the name is won.
	tok, wire := newToken()
	reply := loginReply{Type: "login", Success: true, Name: name, Token: wire, IceServers: h.cfg.ICE.LoginServers(name)}
	msg := mustJSON(reply)
	var resumedMsg []byte
	if m.Token != "" {
		reply.Resumed = true
		resumedMsg = mustJSON(reply)
	}

	h.mu.Lock()
	now := time.Now()
	old := h.byName[name]
	s := h.sessionLocked(name, m.Token, now)
	if old != nil && (s == nil || s.client != old) {
		h.mu.Unlock()
		h.refuseLogin(c, CodeNameTaken, "Name is already taken: "+name+". Please pick another one.")
		return
	}
	if old == nil && h.cl.cluster != nil {
		h.mu.Unlock()
		h.clusterLogin(&pendingLogin{c: c, name: name, tok: wire, presented: m.Token, msg: msg, resumedMsg: resumedMsg,
			subscribe: m.Presence, t: tok, localResumed: s != nil})
		return
	}
	if old != nil {
		h.takeOverLocked(old, c)
	} else {
		h.presence.joined(name)
	}
	h.byName[name] = c
	h.sessions[name] = &session{token: tok, client: c} // the old token dies here
	h.expireLocked(now)
	c.name = name
	c.nameJSON = appendString(nil, name)
	if s != nil {
		msg = resumedMsg
	}
	// The reply and the first presence list are queued under the lock so
	// that no presence change can overtake them.
	c.send(msg)
	if m.Presence && h.cfg.Presence {
		c.subscribed = true
		h.presence.subscribe(c)
	}
	h.mu.Unlock()
	h.stats.Logins.Add(1)
	if s != nil {
		h.stats.Resumes.Add(1)
		h.log.Debug("session resumed", "conn", c.id, "name", name, "replaced", old != nil)
	}
	if old != nil {
		if h.cl.cluster != nil {
			h.cl.cluster.Rekey(name, wire)
		}
		old.conn.Close(StatusSessionResumed, closeReasonResumed)
	}
}

// refreshICE answers a client's request for fresh iceServers. TURN
// credentials expire (-turn-ttl); a client that has been logged in for
// longer asks before it starts a call, instead of reconnecting.
func (h *Hub) refreshICE(c *Client) {
	if !c.loggedIn() {
		h.refuse(c, CodeNotLoggedIn, "Log in before asking for ICE servers.", "")
		return
	}
	c.send(mustJSON(iceMessage{Type: "ice", IceServers: h.cfg.ICE.LoginServers(c.name)}))
}

// target looks up the named recipient of a relay or leave, refusing what
// cannot be delivered. It must be called with h.mu held.
func (h *Hub) targetLocked(c *Client, m *inbound) (*Client, string) {
	t := h.byName[strings.TrimSpace(m.Name)]
	switch {
	case c.replaced.Load():
		// Its session lives on in a new connection: this one must not
		// open calls under the name any more.
		return nil, CodeNotLoggedIn
	case t == nil:
		return nil, CodeUserNotFound
	case t == c:
		return nil, CodeInvalidMessage
	}
	return t, ""
}

func (h *Hub) relay(c *Client, m *inbound) {
	if !c.loggedIn() {
		h.refuse(c, CodeNotLoggedIn, "Log in before sending "+m.Type+".", "")
		return
	}
	h.mu.Lock()
	t, code := h.targetLocked(c, m)
	if code == CodeUserNotFound && h.cl.cluster != nil {
		h.relayRemoteLocked(c, m, remoteTarget(m))
		return
	}
	if code == "" {
		if m.Type == "offer" {
			link(c, t)
		} else if _, ok := c.peers[t]; !ok {
			code = CodeNotInCall
		}
	}
	h.mu.Unlock()
	if code != "" {
		h.refuseTarget(c, code, m)
		return
	}
	// Send copies the message, so it is built in a reused buffer: at
	// thousands of relays per second, a fresh one each time is what
	// makes the garbage collector run.
	bp := relayBufs.Get().(*[]byte)
	msg := appendRelay((*bp)[:0], m.Type, m.payload(), c.nameJSON)
	sent := t.send(msg)
	if cap(msg) <= maxPooledRelay {
		*bp = msg[:0]
		relayBufs.Put(bp)
	}
	if !sent {
		// The target is being disconnected; its name is about to go.
		h.refuseTarget(c, CodeUserNotFound, m)
		return
	}
	h.stats.countRelay(m.Type)
}

func (h *Hub) leave(c *Client, m *inbound) {
	if !c.loggedIn() {
		h.refuse(c, CodeNotLoggedIn, "Log in before sending leave.", "")
		return
	}
	h.mu.Lock()
	t, code := h.targetLocked(c, m)
	if code == CodeUserNotFound && h.cl.cluster != nil {
		h.leaveRemoteLocked(c, m, remoteTarget(m))
		return
	}
	if code == "" {
		if _, ok := c.peers[t]; ok {
			unlink(c, t)
		} else {
			code = CodeNotInCall
		}
	}
	h.mu.Unlock()
	if code != "" {
		h.refuseTarget(c, code, m)
		return
	}
	if t.send(encodeLeave(c.nameJSON, cleanReason(m.Reason))) {
		h.stats.countRelay("leave")
	}
}

// refuseTarget explains why a message to m.Name was not delivered.
func (h *Hub) refuseTarget(c *Client, code string, m *inbound) {
	name := strings.TrimSpace(m.Name)
	var msg string
	switch code {
	case CodeUserNotFound:
		msg = "User " + name + " is not online."
	case CodeNotInCall:
		msg = "You are not in a call with " + name + "."
	case CodeNotLoggedIn:
		msg = "This connection's session was resumed by a new connection."
	default:
		msg = "You cannot send " + m.Type + " to yourself."
	}
	h.refuse(c, code, msg, name)
}

// relayBufs are the buffers relayed messages are built in.
var relayBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2<<10); return &b }}

// maxPooledRelay bounds the buffers kept in relayBufs.
const maxPooledRelay = 16 << 10

// link records that a and b share a call. Called with the hub lock held.
func link(a, b *Client) {
	if a.peers == nil {
		a.peers = make(map[*Client]struct{}, 1)
	}
	if b.peers == nil {
		b.peers = make(map[*Client]struct{}, 1)
	}
	a.peers[b] = struct{}{}
	b.peers[a] = struct{}{}
}

// unlink ends the call between a and b. Called with the hub lock held.
func unlink(a, b *Client) {
	delete(a.peers, b)
	delete(b.peers, a)
	if len(a.peers) == 0 {
		a.peers = nil
	}
	if len(b.peers) == 0 {
		b.peers = nil
	}
}

// cleanReason keeps a leave reason only if it is a short plain word, so a
// peer cannot push arbitrary text through the server.
func cleanReason(r string) string {
	if len(r) > maxReasonLen {
		return ""
	}
	for _, ch := range r {
		if !(ch == '-' || ch == '_' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9') {
			return ""
		}
	}
	return r
}
