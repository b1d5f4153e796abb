// Package natsbus joins p2pchat instances into one name space over NATS,
// behind the hub's Cluster seam (server/signaling/cluster.go).
//
// # Names
//
// A name is a key in a JetStream KV bucket (default "p2pchat_names"): its
// value is the owning instance's id and the SHA-256 of the session token
// (never the token). Claiming is one KV Create, which fails with
// ErrKeyExists while another connection holds the name. The bucket has a
// TTL, the lease: every instance rewrites all its keys every lease/4, in
// one batch of asynchronous compare-and-set publishes, and a key of a
// dead instance expires within the lease. The bucket's LimitMarkerTTL
// makes expiries visible to watchers as purge markers. A per-key TTL
// cannot be used for the lease: it is set only at creation, and an update
// clears it.
//
// Claims fail closed. An instance that has not completed a refresh round
// for half the lease drops every client with 1012 (they reconnect, through
// the load balancer, to an instance that works) and refuses logins until
// NATS answers again, so a name's key always outlives the instance's
// belief that it owns it: no name is held on two instances.
//
// A login that presents the token of a session held by another instance
// (its client's network moved, or the instance died) takes the key over
// with a compare-and-set Update and asks the old instance, by request, to
// close its connection (4001) and hand over the names it was in calls
// with: the name comes back at once, not after the lease.
//
// # Routing
//
// Each held name has a core NATS subject, p2pchat.u.<key>, subscribed on
// the instance that holds it. A relay to a name not held locally is
// published there with the sender's name, the message type and the frame
// the hub built (sender stamped, payload byte for byte), and with a reply
// subject naming sender and target. Nobody replies on success. If nobody
// subscribes the subject, the server answers the reply subject with a 503
// status (no responders) at once, which becomes user-not-found for the
// sender: no lookup and no waiting. One connection publishes, and one
// goroutine delivers what the subscriptions receive, so order holds per
// sender, as core NATS keeps it per publishing connection.
//
// Keys and subject tokens are the base64url encoding of the name's UTF-8
// bytes, so 小明 or names with dots and spaces are safe in both.
//
// # Presence
//
// Every instance watches the bucket: a put is a name online, a delete or
// an expiry marker a name gone (its local call peers get leave). The hub
// coalesces those into its usual presence diffs, so the cost per login is
// one watch event per instance, not a message per online user.
package natsbus

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/p2pchat/p2pchat/server/signaling"
)

// Defaults for Options.
const (
	DefaultBucket = "p2pchat_names"
	DefaultLease  = 30 * time.Second
	// minLease: KV TTLs are whole seconds, and a lease of 2 s still
	// leaves a refresh every half second.
	minLease = 2 * time.Second
	// opTimeout bounds one claim round trip; a login waits for it.
	opTimeout = 2 * time.Second
	// inboxLen is how many received relays may wait for delivery.
	inboxLen = 1 << 16
)

// Options configure a Bus.
type Options struct {
	// URL is the NATS server list, comma-separated.
	URL string
	// NATS are extra connection options: credentials, TLS.
	NATS []nats.Option
	// Bucket is the KV bucket of names.
	Bucket string
	// Lease is how long a claim outlives its instance (whole seconds).
	Lease time.Duration
	// Replicas of the bucket in a JetStream cluster (1 by default).
	Replicas int
	// Memory keeps the bucket in memory instead of on disk.
	Memory bool
}

// ErrUnavailable is Claim's answer while the instance has lost NATS.
var ErrUnavailable = errors.New("name service unavailable")

// Bus is one instance's membership in the name space. It implements
// signaling.Cluster.
type Bus struct {
	hub    *signaling.Hub
	log    *slog.Logger
	opts   Options
	id     string
	nc     *nats.Conn
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	prefix string // subject prefix of KV keys: $KV.<bucket>.
	inbox  chan *nats.Msg
	Stats  Stats

	mu    sync.Mutex
	owned map[string]*claim // names held here

	healthy atomic.Bool
	lastOK  atomic.Int64 // unix nanoseconds of the last good refresh round

	releases  chan release
	stop      chan struct{}
	wg        sync.WaitGroup
	watcher   jetstream.KeyWatcher
	stopWatch context.CancelFunc
	subs      []*nats.Subscription
}

type claim struct {
	rev   uint64
	value []byte
	sub   *nats.Subscription
}

type release struct {
	key string
	rev uint64
}

// Open connects to NATS, makes sure the bucket exists and attaches the
// bus to hub (hub.SetCluster), which must not serve yet.
func Open(ctx context.Context, hub *signaling.Hub, opts Options, log *slog.Logger) (*Bus, error) {
	if opts.Bucket == "" {
		opts.Bucket = DefaultBucket
	}
	if opts.Lease == 0 {
		opts.Lease = DefaultLease
	}
	opts.Lease = opts.Lease.Round(time.Second)
	if opts.Lease < minLease {
		return nil, fmt.Errorf("nats lease %v: want at least %v", opts.Lease, minLease)
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	b := &Bus{
		hub: hub, log: log, opts: opts, id: nats.NewInbox()[len(nats.InboxPrefix):],
		inbox: make(chan *nats.Msg, inboxLen), owned: make(map[string]*claim),
		releases: make(chan release, 4096), stop: make(chan struct{}),
	}
	no := append([]nats.Option{
		nats.Name("p2pchat " + b.id),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectBufSize(8 << 20),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("nats disconnected", "err", err) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
	}, opts.NATS...)
	nc, err := nats.Connect(opts.URL, no...)
	if err != nil {
		return nil, fmt.Errorf("connecting to nats %s: %w", opts.URL, err)
	}
	b.nc = nc
	if err := b.setup(ctx); err != nil {
		if b.stopWatch != nil {
			b.stopWatch()
		}
		nc.Close()
		return nil, err
	}
	hub.SetCluster(b)
	b.healthy.Store(true)
	b.lastOK.Store(time.Now().UnixNano())
	b.wg.Add(4)
	go b.deliverLoop()
	go b.watchLoop()
	go b.refreshLoop()
	go b.releaseLoop()
	return b, nil
}

func (b *Bus) setup(ctx context.Context) error {
	js, err := jetstream.New(b.nc, jetstream.WithPublishAsyncMaxPending(1<<16))
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	b.js = js
	storage := jetstream.FileStorage
	if b.opts.Memory {
		storage = jetstream.MemoryStorage
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         b.opts.Bucket,
		Description:    "p2pchat names: owner instance and session token hash",
		History:        1,
		TTL:            b.opts.Lease,
		LimitMarkerTTL: b.opts.Lease,
		Storage:        storage,
		Replicas:       b.opts.Replicas,
	})
	if err != nil {
		return fmt.Errorf("name bucket %s: %w", b.opts.Bucket, err)
	}
	b.kv = kv
	b.prefix = "$KV." + b.opts.Bucket + "."
	b.Stats.RoundTrips.Add(1)
	reply, err := b.nc.ChanSubscribe(replyPrefix+b.id+".>", b.inbox)
	if err != nil {
		return fmt.Errorf("subscribing to replies: %w", err)
	}
	take, err := b.nc.Subscribe(instPrefix+b.id+".take", b.handleTake)
	if err != nil {
		return fmt.Errorf("subscribing to take-overs: %w", err)
	}
	b.subs = append(b.subs, reply, take)
	wctx, cancel := context.WithCancel(context.Background())
	b.stopWatch = cancel
	w, err := kv.WatchAll(wctx)
	if err != nil {
		return fmt.Errorf("watching names: %w", err)
	}
	b.watcher = w
	return nil
}

// Subjects.
const (
	userPrefix  = "p2pchat.u."
	replyPrefix = "p2pchat.r."
	instPrefix  = "p2pchat.i."
)

// encode is a name's KV key and subject token.
func encode(name string) string { return base64.RawURLEncoding.EncodeToString([]byte(name)) }

func decode(key string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(key)
	return string(b), err == nil
}

func tokenHash(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// value is a claim's KV value: owner id, a space, token hash.
func (b *Bus) value(tok string) []byte { return []byte(b.id + " " + tokenHash(tok)) }

func parseValue(v []byte) (owner, hash string) {
	owner, hash, _ = strings.Cut(string(v), " ")
	return owner, hash
}

// Healthy reports whether the instance holds its claims: NATS answered
// within half a lease.
func (b *Bus) Healthy() bool { return b.healthy.Load() }

// ID is the instance's id in the name space.
func (b *Bus) ID() string { return b.id }

// Claim implements signaling.Cluster.
func (b *Bus) Claim(name, tok, presented string) (signaling.Claim, error) {
	if !b.healthy.Load() || !b.nc.IsConnected() {
		return signaling.Claim{}, ErrUnavailable
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	key, val := encode(name), b.value(tok)
	// The name's subject is subscribed before the claim is made, on the
	// same connection: when the claim's answer is back, the server has
	// the subscription, and a relay sent right after the login reply
	// cannot find nobody.
	sub, err := b.nc.ChanSubscribe(userPrefix+key, b.inbox)
	if err != nil {
		return signaling.Claim{}, fmt.Errorf("subscribing %q: %w", name, err)
	}
	res, err := b.claim(ctx, name, key, val, presented, sub)
	if err != nil {
		_ = sub.Unsubscribe()
	}
	return res, err
}

func (b *Bus) claim(ctx context.Context, name, key string, val []byte, presented string, sub *nats.Subscription) (signaling.Claim, error) {
	for range 3 {
		b.Stats.RoundTrips.Add(1)
		rev, err := b.kv.Create(ctx, key, val)
		if err == nil {
			b.own(name, rev, val, sub)
			b.Stats.Claims.Add(1)
			return signaling.Claim{}, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return signaling.Claim{}, fmt.Errorf("claiming %q: %w", name, err)
		}
		b.Stats.RoundTrips.Add(1)
		e, err := b.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // expired or released in between: try again
		}
		if err != nil {
			return signaling.Claim{}, fmt.Errorf("reading claim of %q: %w", name, err)
		}
		owner, hash := parseValue(e.Value())
		resumed := presented != "" && hash == tokenHash(presented)
		// The hub asks only for names it does not hold, so a claim of
		// this instance is one whose release is still on its way.
		if owner != b.id && !resumed {
			b.Stats.ClaimsRefused.Add(1)
			return signaling.Claim{}, signaling.ErrNameHeld
		}
		b.Stats.RoundTrips.Add(1)
		rev, err = b.kv.Update(ctx, key, val, e.Revision())
		if isWrongSeq(err) {
			continue
		}
		if err != nil {
			return signaling.Claim{}, fmt.Errorf("taking over %q: %w", name, err)
		}
		b.own(name, rev, val, sub)
		b.Stats.Claims.Add(1)
		if owner == b.id {
			return signaling.Claim{Resumed: resumed}, nil
		}
		b.Stats.TakeOvers.Add(1)
		return signaling.Claim{Resumed: true, Peers: b.askTake(ctx, owner, name)}, nil
	}
	b.Stats.ClaimsRefused.Add(1)
	return signaling.Claim{}, signaling.ErrNameHeld
}

// askTake tells the old owner of name that its session moved here and
// returns the names it was in calls with. A dead owner has none to give.
func (b *Bus) askTake(ctx context.Context, owner, name string) []string {
	b.Stats.RoundTrips.Add(1)
	msg, err := b.nc.RequestWithContext(ctx, instPrefix+owner+".take", []byte(name))
	if err != nil {
		if !errors.Is(err, nats.ErrNoResponders) {
			b.log.Warn("asking for a session's calls", "name", name, "err", err)
		}
		return nil
	}
	var peers []string
	_ = json.Unmarshal(msg.Data, &peers)
	return peers
}

// handleTake answers another instance that resumed the session of one of
// our names.
func (b *Bus) handleTake(m *nats.Msg) {
	name := string(m.Data)
	b.forget(name)
	peers := b.hub.Revoke(name, signaling.StatusSessionResumed)
	data, _ := json.Marshal(peers)
	_ = m.Respond(data)
}

// own records a claim with its subscription.
func (b *Bus) own(name string, rev uint64, val []byte, sub *nats.Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if old := b.owned[name]; old != nil && old.sub != nil {
		_ = old.sub.Unsubscribe()
	}
	b.owned[name] = &claim{rev: rev, value: val, sub: sub}
}

// forget drops a claim without deleting its key and returns its revision.
func (b *Bus) forget(name string) (uint64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cl := b.owned[name]
	if cl == nil {
		return 0, false
	}
	delete(b.owned, name)
	if cl.sub != nil {
		_ = cl.sub.Unsubscribe()
	}
	return cl.rev, true
}

// forgetBefore drops the claim of name if it is older than rev, the
// revision of another instance's write: an old write seen late by the
// watcher must not take away a newer claim.
func (b *Bus) forgetBefore(name string, rev uint64) bool {
	b.mu.Lock()
	cl := b.owned[name]
	older := cl != nil && cl.rev < rev
	b.mu.Unlock()
	if !older {
		return false
	}
	_, ok := b.forget(name)
	return ok
}

// Rekey implements signaling.Cluster.
func (b *Bus) Rekey(name, tok string) {
	b.mu.Lock()
	cl := b.owned[name]
	var rev uint64
	if cl != nil {
		rev = cl.rev
	}
	b.mu.Unlock()
	if cl == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	val := b.value(tok)
	b.Stats.RoundTrips.Add(1)
	nrev, err := b.kv.Update(ctx, encode(name), val, rev)
	if err != nil {
		b.log.Warn("recording a resumed session's token", "name", name, "err", err)
		return
	}
	b.mu.Lock()
	if b.owned[name] == cl {
		cl.rev, cl.value = nrev, val
	}
	b.mu.Unlock()
}

// Release implements signaling.Cluster. The key is deleted in the
// background, only if it is still this claim's.
func (b *Bus) Release(name string) {
	rev, ok := b.forget(name)
	if !ok {
		return
	}
	select {
	case b.releases <- release{key: encode(name), rev: rev}:
	default: // the lease will free it
	}
}

func (b *Bus) releaseLoop() {
	defer b.wg.Done()
	for {
		select {
		case r := <-b.releases:
			b.deleteKey(r)
		case <-b.stop:
			for {
				select {
				case r := <-b.releases:
					b.deleteKey(r)
				default:
					return
				}
			}
		}
	}
}

func (b *Bus) deleteKey(r release) {
	if !b.nc.IsConnected() || !b.healthy.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	b.Stats.RoundTrips.Add(1)
	if err := b.kv.Delete(ctx, r.key, jetstream.LastRevision(r.rev)); err != nil && !isWrongSeq(err) {
		b.log.Debug("releasing a name", "key", r.key, "err", err)
	}
}

func isWrongSeq(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return false
}

// typeCodes are relayed message types as one byte.
var typeCodes = [...]string{"offer", "answer", "candidate", "leave"}

func typeCode(typ string) byte {
	for i, t := range typeCodes {
		if t == typ {
			return byte(i)
		}
	}
	return 0
}

// Relay implements signaling.Cluster. The data is the type, the sender's
// name and the frame; the reply subject carries what a bounce needs.
func (b *Bus) Relay(from, to, typ string, frame []byte) {
	data := make([]byte, 0, 2+len(from)+len(frame))
	data = append(data, typeCode(typ), byte(len(from)))
	data = append(data, from...)
	data = append(data, frame...)
	efrom, eto := encode(from), encode(to)
	msg := &nats.Msg{
		Subject: userPrefix + eto,
		Reply:   replyPrefix + b.id + "." + typ + "." + efrom + "." + eto,
		Data:    data,
	}
	if err := b.nc.PublishMsg(msg); err != nil {
		b.Stats.RelayErrors.Add(1)
		b.hub.Bounce(from, to, typ)
		return
	}
	b.Stats.RelaysOut.Add(1)
}

// parseRelay splits what Relay published: the type, the sender's name
// and the frame.
func parseRelay(d []byte) (typ, from string, frame []byte, ok bool) {
	if len(d) < 2 || int(d[0]) >= len(typeCodes) || len(d) < 2+int(d[1]) {
		return "", "", nil, false
	}
	return typeCodes[d[0]], string(d[2 : 2+int(d[1])]), d[2+int(d[1]):], true
}

// deliverLoop hands what the subscriptions receive to the hub, in order.
func (b *Bus) deliverLoop() {
	defer b.wg.Done()
	for {
		select {
		case m := <-b.inbox:
			b.deliver(m)
		case <-b.stop:
			return
		}
	}
}

func (b *Bus) deliver(m *nats.Msg) {
	if strings.HasPrefix(m.Subject, userPrefix) {
		typ, from, frame, ok := parseRelay(m.Data)
		if !ok {
			return
		}
		to, ok := decode(m.Subject[len(userPrefix):])
		if !ok {
			return
		}
		if b.hub.Deliver(from, to, typ, frame) {
			b.Stats.RelaysIn.Add(1)
		}
		return
	}
	// A reply: only a 503 (no responders) ever comes, for a target
	// nobody holds.
	if m.Header.Get("Status") != "503" {
		return
	}
	parts := strings.Split(strings.TrimPrefix(m.Subject, replyPrefix+b.id+"."), ".")
	if len(parts) != 3 {
		return
	}
	from, ok1 := decode(parts[1])
	to, ok2 := decode(parts[2])
	if ok1 && ok2 {
		b.Stats.Bounces.Add(1)
		b.hub.Bounce(from, to, parts[0])
	}
}

// watchLoop turns the bucket's changes into presence, and takes away
// names another instance took over.
func (b *Bus) watchLoop() {
	defer b.wg.Done()
	for {
		select {
		case e, ok := <-b.watcher.Updates():
			if !ok {
				return
			}
			if e == nil {
				continue // the initial values are all in
			}
			name, ok := decode(e.Key())
			if !ok {
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				b.hub.Gone(name)
				continue
			}
			b.hub.Seen(name)
			if owner, _ := parseValue(e.Value()); owner != b.id {
				if b.forgetBefore(name, e.Revision()) {
					b.hub.Revoke(name, signaling.StatusSessionResumed)
				}
			}
		case <-b.stop:
			return
		}
	}
}

// refreshLoop rewrites every held key each lease/4 and fails closed when
// that has not worked for half a lease.
func (b *Bus) refreshLoop() {
	defer b.wg.Done()
	tick := time.NewTicker(b.opts.Lease / 8)
	defer tick.Stop()
	next := time.Now().Add(b.opts.Lease / 4)
	for {
		select {
		case <-b.stop:
			return
		case now := <-tick.C:
			if !now.Before(next) || !b.healthy.Load() {
				if b.refresh() {
					b.lastOK.Store(time.Now().UnixNano())
					if !b.healthy.Swap(true) {
						b.log.Info("nats reachable again; accepting logins")
					}
				}
				next = now.Add(b.opts.Lease / 4)
			}
			if b.healthy.Load() && time.Since(time.Unix(0, b.lastOK.Load())) > b.opts.Lease/2 {
				b.failClosed()
			}
		}
	}
}

// failClosed gives up every claim: the keys may outlive us by half a
// lease, so nobody else takes a name while a client here still has it.
func (b *Bus) failClosed() {
	b.healthy.Store(false)
	b.Stats.FailClosed.Add(1)
	b.mu.Lock()
	for name, cl := range b.owned {
		if cl.sub != nil {
			_ = cl.sub.Unsubscribe()
		}
		delete(b.owned, name)
	}
	b.mu.Unlock()
	b.log.Error("nats unreachable for half the lease; dropping all clients", "lease", b.opts.Lease)
	b.hub.DropAll()
}

// refresh runs one round: every held key is rewritten with a
// compare-and-set on its revision, all at once. A key whose revision
// moved was taken by someone else: its holder here is dropped.
func (b *Bus) refresh() bool {
	if !b.nc.IsConnected() {
		return false
	}
	type pending struct {
		name string
		cl   *claim
		rev  uint64
		f    jetstream.PubAckFuture
	}
	b.mu.Lock()
	batch := make([]pending, 0, len(b.owned))
	for name, cl := range b.owned {
		batch = append(batch, pending{name: name, cl: cl, rev: cl.rev})
	}
	vals := make([][]byte, len(batch))
	for i, p := range batch {
		vals[i] = p.cl.value
	}
	b.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), b.opts.Lease/4)
	defer cancel()
	b.Stats.RoundTrips.Add(1)
	if len(batch) == 0 {
		_, err := b.js.AccountInfo(ctx)
		return err == nil
	}
	for i := range batch {
		msg := &nats.Msg{Subject: b.prefix + encode(batch[i].name), Data: vals[i]}
		f, err := b.js.PublishMsgAsync(msg, jetstream.WithExpectLastSequencePerSubject(batch[i].rev))
		if err != nil {
			return false
		}
		batch[i].f = f
	}
	select {
	case <-b.js.PublishAsyncComplete():
	case <-ctx.Done():
		return false
	}
	ok := true
	for _, p := range batch {
		select {
		case ack := <-p.f.Ok():
			b.Stats.LeaseRefreshes.Add(1)
			b.mu.Lock()
			if b.owned[p.name] == p.cl && p.cl.rev == p.rev {
				p.cl.rev = ack.Sequence
			}
			b.mu.Unlock()
		case err := <-p.f.Err():
			if !isWrongSeq(err) {
				ok = false
				continue
			}
			// Taken over (the watcher may know already) or renewed by
			// Rekey meanwhile.
			b.mu.Lock()
			lost := b.owned[p.name] == p.cl && p.cl.rev == p.rev
			b.mu.Unlock()
			if lost {
				b.Stats.LeasesLost.Add(1)
				b.forget(p.name)
				b.hub.Revoke(p.name, signaling.StatusTryElsewhere)
			}
		default:
			ok = false
		}
	}
	return ok
}

// Close leaves the name space: pending releases are sent, then the
// connection drains. Call it after the hub's Shutdown.
func (b *Bus) Close() {
	close(b.stop)
	b.wg.Wait()
	defer b.stopWatch()
	if !b.nc.IsConnected() {
		// Nothing more can be sent; stopping the watcher would wait for
		// the server to delete its consumer.
		b.nc.Close()
		return
	}
	if b.watcher != nil {
		_ = b.watcher.Stop()
	}
	closed := make(chan struct{})
	b.nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := b.nc.Drain(); err != nil {
		b.nc.Close()
		return
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		b.nc.Close()
	}
}
