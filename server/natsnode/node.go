// Package natsnode runs a nats-server with JetStream inside p2pchat
// (-nats-embedded), for operators who want several instances sharing one
// name space without a separate NATS process to run.
//
// Each instance's embedded server listens for the other instances'
// servers on its cluster address (routes). The instance's own bus
// connects in-process. nats-server starts its routes only once its
// client listener is up, so that listens too, on a random loopback port,
// with a password made at random at each start that only the bus knows.
// The servers form one NATS cluster and one JetStream cluster (names are
// replicated to three of them, so any one instance may die), and the bus
// on top behaves exactly as with an external nats-server.
//
// The routes authenticate with a user and password when given; they are
// not encrypted, so the cluster addresses belong on a private network.
// Operators who need TLS between servers, accounts or a NATS system of
// their own run nats-server and use -nats instead.
package natsnode

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// clusterName is the NATS cluster every embedded server joins; servers of
// another cluster name refuse the route.
const clusterName = "p2pchat"

// clientUser is the one user of the client listener: the bus.
const clientUser = "p2pchat"

// readyTimeout bounds the server's own start (its listeners and
// JetStream's store), not the forming of the cluster, which waits for
// the other instances.
const readyTimeout = 30 * time.Second

// Options configure an embedded server.
type Options struct {
	// StoreDir is JetStream's directory. Empty: p2pchat-nats-<cluster
	// port> (or p2pchat-nats-alone) in the temporary directory.
	StoreDir string
	// Cluster is the host:port the server listens on for the other
	// servers' routes; empty: the server is alone.
	Cluster string
	// Routes are the other servers' cluster addresses (host:port or
	// nats://host:port); the list may include this server's own.
	Routes []string
	// User and Password, if set, are required of every route, and sent
	// on ours.
	User, Password string
}

// Node is a running embedded server.
type Node struct {
	srv      *server.Server
	servers  int    // in the cluster, this one included
	password string // of clientUser
}

// Start runs the server and waits until it accepts connections. The
// cluster may still be forming.
func Start(opts Options, log *slog.Logger) (*Node, error) {
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("client password: %w", err)
	}
	so := &server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		Username:  clientUser,
		Password:  hex.EncodeToString(secret),
		JetStream: true,
		StoreDir:  opts.StoreDir,
		NoSigs:    true,
	}
	servers, err := cluster(opts, so)
	if err != nil {
		return nil, err
	}
	// The name is unique in the cluster (JetStream tells its peers apart
	// by it): the host name and the cluster port.
	so.ServerName = defaultName(so.Cluster.Port)
	if so.StoreDir == "" {
		dir := "p2pchat-nats-alone"
		if so.Cluster.Port != 0 {
			dir = "p2pchat-nats-" + strconv.Itoa(so.Cluster.Port)
		}
		so.StoreDir = filepath.Join(os.TempDir(), dir)
	}
	srv, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("embedded nats-server: %w", err)
	}
	l := &logger{log: log.With("nats-server", so.ServerName)}
	srv.SetLoggerV2(l, false, false, false)
	srv.Start()
	// The server reports a failed start (a route port taken, a store it
	// cannot write) only to its logger, and then never gets ready.
	for deadline := time.Now().Add(readyTimeout); !srv.ReadyForConnections(100 * time.Millisecond); {
		if msg := l.fatal.Load(); msg != nil || time.Now().After(deadline) {
			srv.Shutdown()
			if msg != nil {
				return nil, fmt.Errorf("embedded nats-server %s: %s", so.ServerName, *msg)
			}
			return nil, fmt.Errorf("embedded nats-server %s did not start within %v", so.ServerName, readyTimeout)
		}
	}
	return &Node{srv: srv, servers: servers, password: so.Password}, nil
}

// cluster sets so's route listener and routes from opts and returns how
// many servers the cluster has, this one included (1 when alone).
func cluster(opts Options, so *server.Options) (int, error) {
	if opts.Cluster == "" {
		if len(opts.Routes) > 0 {
			return 0, errors.New("routes need a cluster address to listen on")
		}
		return 1, nil
	}
	host, port, err := splitHostPort(opts.Cluster)
	if err != nil {
		return 0, fmt.Errorf("cluster address %q: %w", opts.Cluster, err)
	}
	so.Cluster = server.ClusterOpts{
		Name: clusterName, Host: host, Port: port,
		Username: opts.User, Password: opts.Password,
	}
	// Our own address among the routes: JetStream wants a cluster to
	// have routes, even a cluster of one so far, and the server skips a
	// route to itself.
	self := net.JoinHostPort(host, strconv.Itoa(port))
	peers := map[string]bool{}
	for _, r := range append([]string{self}, opts.Routes...) {
		u, err := routeURL(r, opts.User, opts.Password)
		if err != nil {
			return 0, err
		}
		if !peers[u.Host] {
			so.Routes = append(so.Routes, u)
			peers[u.Host] = true
		}
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() && len(peers) > 1 {
		// Listening on every address, we cannot tell our own among the
		// routes: the list is taken to name every server.
		return len(peers) - 1, nil
	}
	return len(peers), nil
}

// Connect are the options that connect a NATS client to the server
// in-process.
func (n *Node) Connect() []nats.Option {
	return []nats.Option{nats.InProcessServer(n.srv), nats.UserInfo(clientUser, n.password)}
}

// Servers is how many servers the cluster has, counting the routes and
// this one: the replicas the name bucket can have.
func (n *Node) Servers() int { return n.servers }

// Name is the server's name in the cluster.
func (n *Node) Name() string { return n.srv.Name() }

// Shutdown stops the server; the other servers see its routes close.
func (n *Node) Shutdown() {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
}

func splitHostPort(hp string) (string, int, error) {
	host, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q: want 1 to 65535", p)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// routeURL makes a route of host:port or nats://host:port, with the
// credentials the other servers want.
func routeURL(r, user, password string) (*url.URL, error) {
	if !strings.Contains(r, "://") {
		r = "nats://" + r
	}
	u, err := url.Parse(r)
	if err != nil || u.Host == "" || u.Port() == "" {
		return nil, fmt.Errorf("route %q: want host:port or nats://host:port", r)
	}
	if user != "" {
		u.User = url.UserPassword(user, password)
	}
	return u, nil
}

// defaultName is unique on one machine (the cluster port) and across
// machines (the host name).
func defaultName(port int) string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r == '.' || r == ' ' || r == '*' || r == '>' {
			return '-'
		}
		return r
	}, host)
	if port == 0 {
		return "p2pchat-" + host
	}
	return "p2pchat-" + host + "-" + strconv.Itoa(port)
}

// logger hands the server's log to slog one level down: its notices and
// warnings (the start banner, routes coming and going, "waiting for
// routing" every two seconds while the cluster forms) at debug level,
// its errors as warnings, since the instance logs what matters to its
// operator itself (waiting for the cluster, NATS lost, failing closed).
// A fatal error is kept for Start (the server's own logger would exit
// the process).
type logger struct {
	log   *slog.Logger
	fatal atomic.Pointer[string]
}

func (l *logger) Noticef(f string, v ...any) { l.at(slog.LevelDebug, f, v) }
func (l *logger) Warnf(f string, v ...any)   { l.at(slog.LevelDebug, f, v) }
func (l *logger) Errorf(f string, v ...any)  { l.at(slog.LevelWarn, f, v) }
func (l *logger) Debugf(f string, v ...any)  { l.at(slog.LevelDebug, f, v) }
func (l *logger) Tracef(f string, v ...any)  { l.at(slog.LevelDebug, f, v) }

// at logs at level, formatting only a line the handler takes: the
// notices come every two seconds while the cluster forms, and at the
// default level nobody reads them.
func (l *logger) at(level slog.Level, f string, v []any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(f, v...))
	}
}

func (l *logger) Fatalf(f string, v ...any) {
	msg := fmt.Sprintf(f, v...)
	l.fatal.Store(&msg)
	l.log.Error(msg)
}
