package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/p2pchat/p2pchat/server"
	"github.com/p2pchat/p2pchat/server/signaling"
)

// envPrefix starts every flag's environment twin.
const envPrefix = "P2PCHAT_"

// errHelp is returned after -h printed the usage.
var errHelp = errors.New("help requested")

// config is everything the command line and environment decide.
type config struct {
	addr        string
	logFormat   string
	allowOrigin string  // raw -allow-origin list
	eventLoop   bool    // -event-loop
	msgRate     float64 // raw -msg-rate; 0 means off
	server      server.Config
	ice         iceFlags      // STUN/TURN lists and the embedded relay (connectivity.go)
	tls         tlsFlags      // HTTPS (tls.go)
	lanHTTPS    lanHTTPSFlags // the self-signed second listener (lanhttps.go)
	ops         opsFlags      // connection caps, trusted proxies, metrics (ops.go)
	nats        natsFlags     // the shared name space (natsflags.go)
}

// envName maps a flag name to its environment variable: read-limit ->
// P2PCHAT_READ_LIMIT.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseConfig reads flags from args, with environment variables (looked up
// through getenv) as defaults that the command line overrides.
func parseConfig(args []string, getenv func(string) string) (config, error) {
	var cfg config
	fs := cfg.flagSet()
	fs.Usage = func() {} // errors say "see p2pchat -h" instead of dumping it

	// Environment first, so that the command line overrides it.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", envName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return cfg, envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(os.Stderr, fs)
			return cfg, errHelp
		}
		return cfg, fmt.Errorf("%w (see p2pchat -h)", err)
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q (see p2pchat -h)", fs.Arg(0))
	}
	if cfg.logFormat != "text" && cfg.logFormat != "json" {
		return cfg, fmt.Errorf("-log-format must be text or json, not %q", cfg.logFormat)
	}

	if err := cfg.ice.check(); err != nil {
		return cfg, err
	}
	if err := cfg.tls.check(); err != nil {
		return cfg, err
	}
	if err := cfg.ops.apply(&cfg.server); err != nil {
		return cfg, err
	}
	if err := cfg.nats.check(); err != nil {
		return cfg, err
	}

	cfg.server.Signaling.MsgRate = cfg.msgRate
	if cfg.msgRate == 0 {
		cfg.server.Signaling.MsgRate = -1 // off
	}
	cfg.server.AllowOrigins = splitList(cfg.allowOrigin)
	cfg.server.NoEventLoop = !cfg.eventLoop
	return cfg, nil
}

// flagSet defines every flag, each writing into cfg.
func (cfg *config) flagSet() *flag.FlagSet {
	cfg.server.Signaling = signaling.DefaultConfig()
	sig := &cfg.server.Signaling
	fs := flag.NewFlagSet("p2pchat", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.addr, "addr", ":8080", "address to listen on (host:port)")
	fs.StringVar(&cfg.allowOrigin, "allow-origin", "", "comma-separated host patterns allowed to open /ws besides the page's own origin (e.g. example.com,*.example.org)")
	fs.StringVar(&cfg.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&cfg.eventLoop, "event-loop", true, "serve plain-HTTP WebSockets from epoll event loops (Linux); false: a goroutine per connection, as for HTTPS")
	fs.IntVar(&cfg.server.EventLoops, "event-loops", 0, "how many event loops serve WebSockets, each connection on one of them; 0: one per GOMAXPROCS, one fewer with -nats")
	fs.Int64Var(&sig.ReadLimit, "read-limit", signaling.DefaultReadLimit, "largest accepted WebSocket message in bytes; larger ones close the connection with 1009")
	fs.Float64Var(&cfg.msgRate, "msg-rate", signaling.DefaultMsgRate, "messages per second per connection (token bucket); 0 turns the limit off")
	fs.IntVar(&sig.MsgBurst, "msg-burst", signaling.DefaultMsgBurst, "token bucket size for -msg-rate")
	fs.IntVar(&sig.SendQueueBytes, "send-queue-bytes", signaling.DefaultSendQueueBytes, "bytes of output queued per connection before a slow client is disconnected")
	fs.DurationVar(&sig.WriteTimeout, "write-timeout", signaling.DefaultWriteTimeout, "time limit for writing one message to a client")
	fs.DurationVar(&sig.PingInterval, "ping-interval", signaling.DefaultPingInterval, "keep-alive ping period; peers silent for longer are dropped")
	fs.DurationVar(&sig.SessionTTL, "session-ttl", signaling.DefaultSessionTTL, "how long a client may resume its name with its session token after its connection is gone")
	fs.BoolVar(&sig.Presence, "presence", true, "send the online list to clients that ask for it")
	fs.DurationVar(&sig.PresenceInterval, "presence-interval", signaling.DefaultPresenceInterval, "how often online-list changes are sent (coalesced)")
	fs.IntVar(&sig.PresenceMax, "presence-max", signaling.DefaultPresenceMax, "largest online list sent by name; above it only the count is sent")
	cfg.ice.register(fs)
	cfg.tls.register(fs)
	cfg.lanHTTPS.register(fs)
	cfg.ops.register(fs)
	cfg.nats.register(fs)
	return fs
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: p2pchat [flags]\n\nServes the p2pchat web client and its WebSocket signaling server.\nEvery flag can also be set by the environment variable shown.\n\n")
	fs.VisitAll(func(f *flag.Flag) {
		fmt.Fprintf(w, "  -%s (env %s, default %q)\n      %s\n", f.Name, envName(f.Name), f.DefValue, f.Usage)
	})
}
