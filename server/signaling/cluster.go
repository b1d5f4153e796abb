package signaling

import (
	"errors"
	"strings"
	"sync"
	"time"
)

// The seam for scale.
//
// Alone, a hub is the whole name space: names, calls and presence live in
// its maps and nothing here runs. With a Cluster attached (SetCluster), the
// hub is one of several instances sharing one name space:
//
//   - a name is claimed in the cluster before it is taken here, so it is
//     held by at most one connection on all instances (Cluster.Claim);
//   - a relay or leave to a name not held here goes to the cluster
//     (Cluster.Relay), which delivers it on the instance holding the name
//     through Deliver, or reports it undeliverable through Bounce;
//   - calls with a user on another instance are tracked per pair by name
//     (Client.rpeers) on both sides, so not-in-call holds across instances;
//   - presence comes from the cluster's view of all names (Seen, Gone),
//     not from local logins, so every instance publishes the same list;
//   - the cluster takes names away (Revoke) when another instance resumed
//     the session or the claim's lease was lost, and drops every client
//     (DropAll) when it cannot keep its claims, so that no name is ever
//     held on two instances.
//
// Claim runs on one of the hub's claim goroutines, never on the goroutine
// that handles a connection's messages (with the event loop, that
// goroutine serves every connection of the loop): the login is finished
// when it returns, and in the meantime the connection counts as not
// logged in. Claim must return within a bounded time, since Shutdown
// waits for it.
//
// Claim, Rekey and Relay are called outside the hub's lock; Claim and
// Rekey may wait for the network, Relay must not. Release is called with
// the lock held, so that a name's release is recorded before another
// local login can claim it again: it must not block or do I/O (not even
// a buffered write), only record what is to be done.

// Cluster is a name space shared by several hubs (server/natsbus).
type Cluster interface {
	// Claim takes name for this instance, for a session whose token has
	// the wire form tok. If presented is the token of the name's session
	// held by another instance, that session moves here: Resumed is true
	// and Peers lists the names it shared calls with. It returns
	// ErrNameHeld if the name is held elsewhere, any other error if the
	// cluster cannot be reached.
	Claim(name, tok, presented string) (Claim, error)
	// Rekey records tok as the token of name, which this instance holds
	// and whose session a new connection here just resumed.
	Rekey(name, tok string)
	// Release gives name back once its connection has gone. Called with
	// the hub's lock held.
	Release(name string)
	// Relay sends frame, a message of type typ from the local user from,
	// to the user to, who is not held here.
	Relay(from, to, typ string, frame []byte)
}

// Claim is the outcome of a successful Cluster.Claim.
type Claim struct {
	Resumed bool
	Peers   []string
}

// ErrNameHeld is Cluster.Claim's answer for a name held elsewhere.
var ErrNameHeld = errors.New("name is held by another connection")

// Close codes of connections the cluster takes away.
const (
	// StatusTryElsewhere closes every connection of an instance that lost
	// its cluster, and one whose name's lease was lost: 1012 (service
	// restart) makes clients reconnect, through the load balancer, to an
	// instance that works.
	StatusTryElsewhere = 1012
	closeReasonCluster = "instance lost its cluster; reconnect"
	// statusTryLater closes a connection whose login could not be
	// claimed because the cluster is unreachable (1013, try again later).
	statusTryLater = 1013
)

// clusterState is the hub's part of the seam. Guarded by hub.mu, except
// cluster, which is set once before serving, and claims.
type clusterState struct {
	cluster  Cluster
	claiming map[string]struct{}             // names being claimed by a local login
	rpeerOf  map[string]map[*Client]struct{} // remote name → local clients in a call with it
	queue    []*pendingLogin                 // logins waiting for a claim goroutine, oldest first
	claimers int                             // claim goroutines running, at most maxClaimers
	claims   sync.WaitGroup                  // one per claim goroutine, for Shutdown
}

// maxClaimers bounds the claim goroutines. Each claim is one to three
// sequential KV round trips, so a few dozen keep the NATS connection busy;
// more would only pile up requests in NATS during a login storm. Waiting
// logins queue instead, at most one per connection (a second login while
// one is claimed is refused).
const maxClaimers = 64

// pendingLogin is a login waiting for its claim: what login prepared for
// the reply and the session.
type pendingLogin struct {
	c                    *Client
	name, tok, presented string
	msg, resumedMsg      []byte
	subscribe            bool
	t                    token
	localResumed         bool
}

// SetCluster makes the hub one instance of cl's name space. It must be
// called before the hub serves any connection.
func (h *Hub) SetCluster(cl Cluster) {
	h.cl.cluster = cl
	h.cl.claiming = make(map[string]struct{})
	h.cl.rpeerOf = make(map[string]map[*Client]struct{})
}

// clusterLogin is login for a name not held here: the name is claimed in
// the cluster by a claim goroutine, which finishes the login (finishLogin).
// Called without the lock, on c's message goroutine, which it never makes
// wait for the network.
func (h *Hub) clusterLogin(p *pendingLogin) {
	c, name := p.c, p.name
	h.mu.Lock()
	if _, busy := h.cl.claiming[name]; busy || h.byName[name] != nil {
		h.mu.Unlock()
		h.refuseLogin(c, CodeNameTaken, "Name is already taken: "+name+". Please pick another one.")
		return
	}
	if h.closing {
		h.mu.Unlock()
		return // Shutdown is closing c
	}
	h.cl.claiming[name] = struct{}{}
	// Set here, before the next message of c is handled: until the claim
	// is done, c is not logged in and may not log in again.
	c.claiming.Store(true)
	h.cl.queue = append(h.cl.queue, p)
	if h.cl.claimers < maxClaimers {
		h.cl.claimers++
		h.cl.claims.Add(1)
		go h.claimer()
	}
	h.mu.Unlock()
}

// errAbandoned is the outcome of a claim not made: its connection was
// gone, or the hub shutting down, before its turn came.
var errAbandoned = errors.New("login abandoned")

// claimer runs queued claims until there are none.
func (h *Hub) claimer() {
	defer h.cl.claims.Done()
	for {
		h.mu.Lock()
		if len(h.cl.queue) == 0 {
			h.cl.queue = nil // give the backing array back
			h.cl.claimers--
			h.mu.Unlock()
			return
		}
		p := h.cl.queue[0]
		h.cl.queue[0] = nil
		h.cl.queue = h.cl.queue[1:]
		_, open := h.clients[p.c]
		abandoned := h.closing || !open
		h.mu.Unlock()
		var res Claim
		err := errAbandoned
		if !abandoned {
			res, err = h.cl.cluster.Claim(p.name, p.tok, p.presented)
		}
		h.finishLogin(p, res, err)
	}
}

// finishLogin takes the name once it is claimed, or refuses the login. A
// name won for a connection that has gone meanwhile goes back at once.
func (h *Hub) finishLogin(p *pendingLogin, res Claim, err error) {
	c, name := p.c, p.name
	h.mu.Lock()
	delete(h.cl.claiming, name)
	if _, open := h.clients[c]; !open || h.closing {
		if err == nil {
			// Released under the lock, as remove does: no other login
			// may claim the name before this release is recorded.
			h.cl.cluster.Release(name)
		}
		h.mu.Unlock()
		c.claiming.Store(false)
		return
	}
	if err != nil {
		h.mu.Unlock()
		// Cleared before the refusal is sent: a client that tries again
		// once it has the answer must not find the claim still running.
		c.claiming.Store(false)
		switch {
		case errors.Is(err, errAbandoned):
		case errors.Is(err, ErrNameHeld):
			h.refuseLogin(c, CodeNameTaken, "Name is already taken: "+name+". Please pick another one.")
		default:
			h.log.Warn("claiming a name failed", "conn", c.id, "err", err)
			c.conn.Close(statusTryLater, "name service unavailable")
		}
		return
	}
	h.byName[name] = c
	h.sessions[name] = &session{token: p.t, client: c}
	h.expireLocked(time.Now())
	c.name = name
	c.nameJSON = appendString(nil, name)
	// After the name is written and before the reply is queued: c's next
	// message, which may answer the reply, must find c logged in.
	c.claiming.Store(false)
	for _, peer := range res.Peers {
		if peer != name {
			h.linkRemoteLocked(c, peer)
		}
	}
	msg := p.msg
	resumed := res.Resumed || p.localResumed
	if resumed {
		msg = p.resumedMsg
	}
	c.send(msg)
	if p.subscribe && h.cfg.Presence {
		c.subscribed = true
		h.presence.subscribe(c)
	}
	h.mu.Unlock()
	h.stats.Logins.Add(1)
	if resumed {
		h.stats.Resumes.Add(1)
		h.log.Debug("session resumed from another instance", "conn", c.id, "name", name)
	}
}

// relayRemote is relay for a target not held here. Called with h.mu held;
// it unlocks.
func (h *Hub) relayRemoteLocked(c *Client, m *inbound, target string) {
	code := ""
	switch {
	case c.replaced.Load():
		code = CodeNotLoggedIn
	case m.Type == "offer":
		h.linkRemoteLocked(c, target)
	default:
		if _, ok := c.rpeers[target]; !ok {
			code = CodeNotInCall
		}
	}
	h.mu.Unlock()
	if code != "" {
		h.refuseTarget(c, code, m)
		return
	}
	bp := relayBufs.Get().(*[]byte)
	msg := appendRelay((*bp)[:0], m.Type, m.payload(), c.nameJSON)
	h.cl.cluster.Relay(c.name, target, m.Type, msg)
	if cap(msg) <= maxPooledRelay {
		*bp = msg[:0]
		relayBufs.Put(bp)
	}
	h.stats.countRelay(m.Type)
}

// leaveRemoteLocked is leave for a target not held here. Called with h.mu
// held; it unlocks.
func (h *Hub) leaveRemoteLocked(c *Client, m *inbound, target string) {
	code := ""
	if c.replaced.Load() {
		code = CodeNotLoggedIn
	} else if _, ok := c.rpeers[target]; ok {
		h.unlinkRemoteLocked(c, target)
	} else {
		code = CodeNotInCall
	}
	h.mu.Unlock()
	if code != "" {
		h.refuseTarget(c, code, m)
		return
	}
	h.cl.cluster.Relay(c.name, target, "leave", encodeLeave(c.nameJSON, cleanReason(m.Reason)))
	h.stats.countRelay("leave")
}

// Deliver hands frame, a message of type typ that the user from on
// another instance sent, to the local user to, and records their call. It
// reports whether to is held here and the message was queued.
func (h *Hub) Deliver(from, to, typ string, frame []byte) bool {
	h.mu.Lock()
	t := h.byName[to]
	if t == nil || t.replaced.Load() {
		h.mu.Unlock()
		return false
	}
	if typ == "leave" {
		h.unlinkRemoteLocked(t, from)
	} else {
		h.linkRemoteLocked(t, from)
	}
	h.mu.Unlock()
	return t.send(frame)
}

// Bounce reports that a message of type typ from the local user from
// could not be delivered to to, who is not online anywhere: the sender
// gets user-not-found, as on one instance, and no call is kept.
func (h *Hub) Bounce(from, to, typ string) {
	h.mu.Lock()
	c := h.byName[from]
	if c == nil {
		h.mu.Unlock()
		return
	}
	if _, ok := c.rpeers[to]; ok && typ == "offer" {
		h.unlinkRemoteLocked(c, to)
	}
	h.mu.Unlock()
	h.refuseTarget(c, CodeUserNotFound, &inbound{Type: typ, Name: to})
}

// Seen records that name is online somewhere in the cluster.
func (h *Hub) Seen(name string) {
	h.mu.Lock()
	if !h.presence.isOnline(name) {
		h.presence.joined(name)
	}
	h.mu.Unlock()
}

// Gone records that name is online nowhere any more: it leaves the
// presence list and every local user in a call with it gets leave.
func (h *Hub) Gone(name string) {
	h.mu.Lock()
	if h.byName[name] == nil {
		h.presence.left(name)
	}
	var peers []*Client
	for p := range h.cl.rpeerOf[name] {
		peers = append(peers, p)
	}
	for _, p := range peers {
		h.unlinkRemoteLocked(p, name)
	}
	h.mu.Unlock()
	if len(peers) > 0 {
		msg := encodeLeave(appendString(nil, name), ReasonOffline)
		for _, p := range peers {
			p.send(msg)
		}
	}
}

// isOnline reports whether name is in the list as of the next flush.
func (p *presence) isOnline(name string) bool {
	if in, ok := p.pending[name]; ok {
		return in
	}
	_, ok := p.published[name]
	return ok
}

// Revoke takes name from its local holder, whose claim moved to another
// instance or was lost: the holder is closed with code (StatusSessionResumed
// or StatusTryElsewhere) without releasing the name, and its calls stay
// with the name. It returns the names the holder shared calls with, for
// the session's new instance.
func (h *Hub) Revoke(name string, code int) []string {
	h.mu.Lock()
	c := h.byName[name]
	if c == nil {
		h.mu.Unlock()
		return nil
	}
	c.replaced.Store(true)
	delete(h.byName, name)
	if s := h.sessions[name]; s != nil && s.client == c {
		delete(h.sessions, name)
	}
	peers := make([]string, 0, len(c.peers)+len(c.rpeers))
	for p := range c.peers {
		delete(p.peers, c)
		h.linkRemoteLocked(p, name)
		peers = append(peers, p.name)
	}
	c.peers = nil
	for p := range c.rpeers {
		peers = append(peers, p)
		h.unlinkRemoteLocked(c, p)
	}
	h.mu.Unlock()
	reason := closeReasonResumed
	if code != StatusSessionResumed {
		reason = closeReasonCluster
	}
	c.conn.Close(code, reason)
	return peers
}

// DropAll closes every connection with StatusTryElsewhere: the instance
// can no longer keep its claims, so its users must go to another one.
func (h *Hub) DropAll() {
	h.mu.Lock()
	clients := make([]*Client, 0, len(h.clients))
	for c := range h.clients {
		clients = append(clients, c)
	}
	h.mu.Unlock()
	for _, c := range clients {
		c.conn.Close(StatusTryElsewhere, closeReasonCluster)
	}
}

// Names calls fn with every name held here, for lease refreshes.
func (h *Hub) Names(fn func(name string)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for name := range h.byName {
		fn(name)
	}
}

// removeClusterLocked is remove's part for a hub in a cluster: the claim
// goes back unless the name moved away, and remote calls end here (their
// peers learn of it from the cluster, through Gone). Called with h.mu
// held.
func (h *Hub) removeClusterLocked(c *Client, held bool) {
	for p := range c.rpeers {
		h.unlinkRemoteLocked(c, p)
	}
	if held && !c.replaced.Load() {
		h.cl.cluster.Release(c.name)
	}
}

// takeOverRemoteLocked moves old's remote calls to c (a local resume).
func (h *Hub) takeOverRemoteLocked(old, c *Client) {
	for p := range old.rpeers {
		h.unlinkRemoteLocked(old, p)
		h.linkRemoteLocked(c, p)
	}
}

// linkRemoteLocked records a call between the local client c and the
// user name on another instance. Called with h.mu held.
func (h *Hub) linkRemoteLocked(c *Client, name string) {
	if c.rpeers == nil {
		c.rpeers = make(map[string]struct{}, 1)
	}
	c.rpeers[name] = struct{}{}
	set := h.cl.rpeerOf[name]
	if set == nil {
		set = make(map[*Client]struct{}, 1)
		h.cl.rpeerOf[name] = set
	}
	set[c] = struct{}{}
}

// unlinkRemoteLocked ends the call between c and the remote user name.
func (h *Hub) unlinkRemoteLocked(c *Client, name string) {
	delete(c.rpeers, name)
	if len(c.rpeers) == 0 {
		c.rpeers = nil
	}
	if set := h.cl.rpeerOf[name]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(h.cl.rpeerOf, name)
		}
	}
}

// remoteTarget returns the trimmed target name of m for the cluster path.
func remoteTarget(m *inbound) string { return strings.TrimSpace(m.Name) }
