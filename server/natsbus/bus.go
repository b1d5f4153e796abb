package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// opTimeout bounds one claim round trip; a login waits for it (on a
	// claim goroutine of the hub, not its connection's), and so does the
	// hub's Shutdown.
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
	kv     jetstream.KeyValue // names: owner token and session token hash
	live   jetstream.KeyValue // the instances' leases: one key per incarnation
	prefix string             // subject prefix of name keys: $KV.<bucket>.
	inbox  chan *nats.Msg
	Stats  Stats

	mu sync.Mutex
	// self is the owner token written in our name keys and live key: the
	// id and the incarnation (epoch), which failClosed moves on; buried
	// are earlier incarnations whose live keys refresh is to delete.
	self   string
	epoch  int
	buried []string
	owned  map[string]*claim // names held here
	// Names given back whose subscription and key releaseLoop has still
	// to remove, and the order they came in (a name may be listed twice;
	// releasing has its latest release only).
	releasing map[string]release
	releaseQ  []string

	healthy atomic.Bool
	lastOK  atomic.Int64 // unix nanoseconds of the last good refresh round

	wake        chan struct{} // releaseLoop has work
	stop        chan struct{}
	wg          sync.WaitGroup
	watcher     jetstream.KeyWatcher
	liveWatcher jetstream.KeyWatcher
	stopWatch   context.CancelFunc
	subs        []*nats.Subscription
}

type claim struct {
	rev   uint64
	value []byte
	sub   *nats.Subscription
}

type release struct {
	rev uint64
	sub *nats.Subscription
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
		releasing: make(map[string]release), wake: make(chan struct{}, 1), stop: make(chan struct{}),
	}
	b.self = b.id + "-0"
	no := append([]nats.Option{
		nats.Name("p2pchat " + b.id),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectBufSize(8 << 20),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: we closed it
				log.Warn("nats disconnected", "err", err)
			}
		}),
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
	// The names have no TTL: they live as long as their owner's live
	// key. LimitMarkerTTL only lets released names' purge markers expire.
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         b.opts.Bucket,
		Description:    "p2pchat names: owner instance and session token hash",
		History:        1,
		LimitMarkerTTL: b.opts.Lease,
		Storage:        storage,
		Replicas:       b.opts.Replicas,
	})
	if err != nil {
		return fmt.Errorf("name bucket %s: %w", b.opts.Bucket, err)
	}
	b.kv = kv
	live, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         b.opts.Bucket + "_live",
		Description:    "p2pchat instances: one key per live instance, rewritten every lease/4",
		History:        1,
		TTL:            b.opts.Lease,
		LimitMarkerTTL: b.opts.Lease,
		Storage:        storage,
		Replicas:       b.opts.Replicas,
	})
	if err != nil {
		return fmt.Errorf("instance bucket %s_live: %w", b.opts.Bucket, err)
	}
	b.live = live
	b.Stats.RoundTrips.Add(1)
	if _, err := live.Put(ctx, b.self, []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
		return fmt.Errorf("writing the instance's lease: %w", err)
	}
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
	lw, err := live.WatchAll(wctx)
	if err != nil {
		return fmt.Errorf("watching instances: %w", err)
	}
	b.liveWatcher = lw
	return nil
}

// Healthy reports whether the instance holds its claims: NATS answered
// within half a lease.
func (b *Bus) Healthy() bool { return b.healthy.Load() }

// ID is the instance's id in the name space.
func (b *Bus) ID() string { return b.id }

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
		_ = b.liveWatcher.Stop()
	}
	// Our names are released by now; any left (a release that failed)
	// go offline everywhere with the live key.
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	_ = b.live.Delete(ctx, b.me())
	cancel()
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
