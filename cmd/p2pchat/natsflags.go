package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/p2pchat/p2pchat/server"
	"github.com/p2pchat/p2pchat/server/natsbus"
	"github.com/p2pchat/p2pchat/server/natsnode"
	"github.com/p2pchat/p2pchat/server/signaling"
)

// natsFlags join the instance to a NATS system (server/natsbus): with
// -nats, names, relays and presence are shared with every instance on
// the same bucket; without it nothing changes.
type natsFlags struct {
	url      string
	creds    string
	nkey     string
	user     string
	password string
	ca       string
	cert     string
	key      string
	bucket   string
	lease    time.Duration
	replicas int

	embedded bool   // run a nats-server in the process (server/natsnode)
	cluster  string // its route listener
	routes   string // the other instances' route listeners
	store    string // its JetStream directory
}

func (f *natsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "nats", "", "comma-separated NATS server URLs (nats://host:4222,...): share one name space with every p2pchat instance on them. Empty: this instance is alone")
	fs.StringVar(&f.creds, "nats-creds", "", "NATS credentials file (JWT and NKey seed)")
	fs.StringVar(&f.nkey, "nats-nkey", "", "NATS NKey seed file")
	fs.StringVar(&f.user, "nats-user", "", "NATS user name (with -nats-password)")
	fs.StringVar(&f.password, "nats-password", "", "NATS password")
	fs.StringVar(&f.ca, "nats-ca", "", "PEM file of CAs to verify the NATS servers' TLS certificates with")
	fs.StringVar(&f.cert, "nats-cert", "", "PEM client certificate for NATS TLS (with -nats-key)")
	fs.StringVar(&f.key, "nats-key", "", "PEM key of -nats-cert")
	fs.StringVar(&f.bucket, "nats-bucket", natsbus.DefaultBucket, "JetStream KV bucket of the names")
	fs.DurationVar(&f.lease, "nats-lease", natsbus.DefaultLease, "how long a dead instance's names stay taken (whole seconds, at least 2s); an instance without NATS for half of it drops its clients")
	fs.IntVar(&f.replicas, "nats-replicas", 0, "replicas of the name bucket in a JetStream cluster (1, 3 or 5); 0: 3 with -nats-embedded and three or more servers, else 1")
	fs.BoolVar(&f.embedded, "nats-embedded", false, "run a nats-server with JetStream inside this process and share names through it (instead of -nats); with -nats-cluster and -nats-routes the instances' servers form one cluster")
	fs.StringVar(&f.cluster, "nats-cluster", "", "with -nats-embedded: host:port the embedded server listens on for the other instances' servers (e.g. 10.0.0.1:6222; no TLS: a private network)")
	fs.StringVar(&f.routes, "nats-routes", "", "with -nats-embedded: comma-separated -nats-cluster addresses of the instances (the same list on each; its own may be in it)")
	fs.StringVar(&f.store, "nats-store", "", "with -nats-embedded: JetStream's directory (default: p2pchat-nats-<cluster port> in the temporary directory)")
}

// enabled reports whether the instance joins a name space at all.
func (f *natsFlags) enabled() bool { return f.url != "" || f.embedded }

func (f *natsFlags) check() error {
	if !f.embedded && (f.cluster != "" || f.routes != "" || f.store != "") {
		return errors.New("-nats-cluster, -nats-routes and -nats-store go with -nats-embedded")
	}
	if !f.enabled() {
		return nil
	}
	if f.embedded {
		if f.url != "" {
			return errors.New("-nats and -nats-embedded exclude each other: connect to a NATS system, or run one inside")
		}
		if f.creds != "" || f.nkey != "" || f.ca != "" || f.cert != "" {
			return errors.New("-nats-creds, -nats-nkey and the -nats TLS flags are for -nats; an embedded cluster's routes take -nats-user and -nats-password")
		}
		if f.routes != "" && f.cluster == "" {
			return errors.New("-nats-routes needs -nats-cluster to listen on")
		}
	}
	if (f.cert == "") != (f.key == "") {
		return errors.New("-nats-cert and -nats-key go together")
	}
	if (f.user == "") != (f.password == "") {
		return errors.New("-nats-user and -nats-password go together")
	}
	if f.lease < 2*time.Second {
		return errors.New("-nats-lease must be at least 2s")
	}
	return nil
}

// options are the connection options the flags ask for.
func (f *natsFlags) options() ([]nats.Option, error) {
	var opts []nats.Option
	if f.creds != "" {
		opts = append(opts, nats.UserCredentials(f.creds))
	}
	if f.nkey != "" {
		o, err := nats.NkeyOptionFromSeed(f.nkey)
		if err != nil {
			return nil, fmt.Errorf("-nats-nkey: %w", err)
		}
		opts = append(opts, o)
	}
	if f.user != "" {
		opts = append(opts, nats.UserInfo(f.user, f.password))
	}
	if f.ca != "" {
		opts = append(opts, nats.RootCAs(f.ca))
	}
	if f.cert != "" {
		opts = append(opts, nats.ClientCert(f.cert, f.key))
	}
	return opts, nil
}

// prepare makes cfg's /healthz and /metrics ask the bus that open will
// attach; it returns open, which joins the hub to NATS (nothing without
// -nats or -nats-embedded) and returns what leaves it again.
func (f *natsFlags) prepare(cfg *server.Config) func(context.Context, *server.Server, *slog.Logger) (func(), error) {
	if !f.enabled() {
		return func(context.Context, *server.Server, *slog.Logger) (func(), error) { return func() {}, nil }
	}
	if cfg.EventLoops == 0 {
		cfg.EventLoops = natsLoops(runtime.GOMAXPROCS(0))
	}
	var bus atomic.Pointer[natsbus.Bus]
	cfg.Health = func() error {
		if b := bus.Load(); b == nil || !b.Healthy() {
			return errors.New("nats unreachable")
		}
		return nil
	}
	cfg.MetricsWriters = append(cfg.MetricsWriters, func(w io.Writer) {
		if b := bus.Load(); b != nil {
			b.WriteMetrics(w)
		}
	})
	return func(ctx context.Context, srv *server.Server, log *slog.Logger) (func(), error) {
		opts, err := f.options()
		if err != nil {
			return nil, err
		}
		bo := natsbus.Options{URL: f.url, NATS: opts, Bucket: f.bucket, Lease: f.lease, Replicas: f.replicas}
		open, where, leave := natsbus.Open, f.url, func() {}
		if f.embedded {
			node, err := f.startNode(log)
			if err != nil {
				return nil, err
			}
			bo.URL, bo.NATS = "", node.Connect()
			if f.replicas == 0 && node.Servers() >= 3 {
				bo.Replicas = 3
			}
			open, where, leave = openWhenFormed, "embedded "+node.Name(), node.Shutdown
		}
		b, err := open(ctx, srv.Hub(), bo, log)
		if err != nil {
			leave()
			return nil, err
		}
		log.Info("joined the NATS name space", "nats", where, "bucket", f.bucket, "lease", f.lease, "instance", b.ID())
		bus.Store(b)
		return func() { b.Close(); leave() }, nil
	}
}

// startNode runs the embedded nats-server the flags describe.
func (f *natsFlags) startNode(log *slog.Logger) (*natsnode.Node, error) {
	o := natsnode.Options{Cluster: f.cluster, StoreDir: f.store, User: f.user, Password: f.password}
	if f.routes != "" {
		o.Routes = strings.Split(f.routes, ",")
	}
	node, err := natsnode.Start(o, log)
	if err != nil {
		return nil, fmt.Errorf("-nats-embedded: %w", err)
	}
	return node, nil
}

// formRetry is how often an instance with an embedded server tries again
// to set up its buckets while the cluster forms.
const formRetry = time.Second

// openWhenFormed opens the bus once JetStream answers. With embedded
// servers the cluster forms only when enough instances run (a bucket of
// three replicas needs three servers the first time, a leader two), and
// instances start in any order, so the first ones wait for the others
// instead of failing.
func openWhenFormed(ctx context.Context, hub *signaling.Hub, o natsbus.Options, log *slog.Logger) (*natsbus.Bus, error) {
	start := time.Now()
	lastLog := time.Time{}
	for {
		b, err := natsbus.Open(ctx, hub, o, log)
		if err == nil {
			return b, nil
		}
		if time.Since(lastLog) >= 10*time.Second {
			log.Info("waiting for the NATS cluster to form", "waited", time.Since(start).Round(time.Second), "err", err)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the NATS cluster: %w", err)
		case <-time.After(formRetry):
		}
	}
}

// natsLoops is the default number of event loops with -nats: one fewer
// than GOMAXPROCS, at least one. A loop asleep in epoll_wait keeps its P,
// so the goroutines a loop hands work to (claims, the NATS client, the
// bus's deliveries) wait for the runtime's monitor to take one back:
// with as many loops as cores a login took 12.5 ms at p50 instead of 0.3
// (docs/benchmarks.md).
func natsLoops(procs int) int {
	return max(1, procs-1)
}
