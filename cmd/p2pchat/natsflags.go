package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/p2pchat/p2pchat/server"
	"github.com/p2pchat/p2pchat/server/natsbus"
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
	fs.IntVar(&f.replicas, "nats-replicas", 1, "replicas of the name bucket in a JetStream cluster (1, 3 or 5)")
}

func (f *natsFlags) check() error {
	if f.url == "" {
		return nil
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
// attach; it returns open, which joins the hub to NATS (nil bus without
// -nats).
func (f *natsFlags) prepare(cfg *server.Config) func(context.Context, *server.Server, *slog.Logger) (*natsbus.Bus, error) {
	if f.url == "" {
		return func(context.Context, *server.Server, *slog.Logger) (*natsbus.Bus, error) { return nil, nil }
	}
	if cfg.EventLoops == 0 {
		cfg.EventLoops = natsLoops(runtime.GOMAXPROCS(0))
	}
	var bus *natsbus.Bus
	cfg.Health = func() error {
		if bus == nil || !bus.Healthy() {
			return errors.New("nats unreachable")
		}
		return nil
	}
	cfg.MetricsWriters = append(cfg.MetricsWriters, func(w io.Writer) {
		if bus != nil {
			bus.WriteMetrics(w)
		}
	})
	return func(ctx context.Context, srv *server.Server, log *slog.Logger) (*natsbus.Bus, error) {
		opts, err := f.options()
		if err != nil {
			return nil, err
		}
		b, err := natsbus.Open(ctx, srv.Hub(), natsbus.Options{
			URL: f.url, NATS: opts, Bucket: f.bucket, Lease: f.lease, Replicas: f.replicas,
		}, log)
		if err != nil {
			return nil, err
		}
		log.Info("joined the NATS name space", "nats", f.url, "bucket", f.bucket, "lease", f.lease, "instance", b.ID())
		bus = b
		return b, nil
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
