// Package server is p2pchat's HTTP side: the chi router, security headers,
// the /ws upgrade with its origin check, /healthz, and the embedded client.
// Everything about the signaling protocol itself lives in server/signaling;
// this package only accepts connections and hands them over.
package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"
	"github.com/go-chi/chi/v5"

	"github.com/p2pchat/p2pchat/server/logqueue"
	"github.com/p2pchat/p2pchat/server/signaling"
	"github.com/p2pchat/p2pchat/server/wsloop"
	"github.com/p2pchat/p2pchat/server/wspump"
	"github.com/p2pchat/p2pchat/web"
)

// Config configures a Server.
type Config struct {
	// Signaling holds the hub's limits.
	Signaling signaling.Config
	// AllowOrigins lists host patterns (path.Match syntax, as
	// websocket.AcceptOptions.OriginPatterns) accepted for /ws besides the
	// page's own origin. Empty means same-origin only, which is what stops
	// another site's page from using a visitor's browser to connect.
	AllowOrigins []string
	// MaxConnsPerIP caps WebSocket connections from one client address
	// (IPv6: one /64); MaxConns caps them all. Zero means unlimited.
	// Refusals are HTTP 429 and 503 (limits.go).
	MaxConnsPerIP, MaxConns int
	// TrustedProxies are the peers whose X-Forwarded-For header is
	// believed; from anyone else the TCP peer is the client.
	TrustedProxies []netip.Prefix
	// Metrics serves /metrics on Handler(). Leave it off to serve
	// MetricsHandler on a separate, private listener instead.
	Metrics bool
	// MetricsWriters add more families to /metrics (the TURN relay's).
	MetricsWriters []func(io.Writer)
	// NoEventLoop serves every WebSocket with a goroutine per connection
	// (coder/websocket) instead of the event loop (server/wsloop), which
	// otherwise serves plain-TCP connections on Linux.
	NoEventLoop bool
	// EventLoops is how many event loops serve WebSockets; each
	// connection is served by one of them, given out in turn, and the
	// first also accepts. Zero means one per GOMAXPROCS: one loop keeps
	// one core busy at most.
	EventLoops int
	// Health, if set, is asked by /healthz: while it returns an error the
	// answer is 503 with the error's text, so a load balancer sends users
	// to another instance (the NATS name space one is gone).
	Health func() error
}

// Server serves the client, the signaling WebSocket and health checks.
type Server struct {
	cfg    Config
	log    *slog.Logger
	logq   *logqueue.Handler
	hub    *signaling.Hub
	router chi.Router
	limits *connLimiter

	loopOnce sync.Once
	loops    []*wsloop.Loop // none: goroutine per connection
	loopTurn atomic.Uint64
}

// New returns a Server ready to be used as an http.Handler.
//
// Everything the server logs goes through a queue (server/logqueue): the
// event loop logs on the goroutine that runs every connection, which must
// never wait for a slow log output.
func New(cfg Config, log *slog.Logger) *Server {
	logq := logqueue.New(log.Handler(), 0)
	log = slog.New(logq)
	s := &Server{cfg: cfg, log: log, logq: logq, hub: signaling.NewHub(cfg.Signaling, log),
		limits: newConnLimiter(cfg.MaxConnsPerIP, cfg.MaxConns)}
	r := chi.NewRouter()
	r.Use(s.recoverer, securityHeaders)
	r.Get("/healthz", s.healthz)
	r.Get("/ws", s.serveWS)
	if cfg.Metrics {
		r.Method(http.MethodGet, "/metrics", s.MetricsHandler())
	}
	r.Handle("/*", web.Handler())
	s.router = r
	return s
}

// Handler returns the root handler.
func (s *Server) Handler() http.Handler { return s.router }

// Hub returns the signaling hub, for metrics and tests.
func (s *Server) Hub() *signaling.Hub { return s.hub }

// Shutdown closes every WebSocket with status 1001. http.Server.Shutdown
// does not do that: it does not know about hijacked connections.
func (s *Server) Shutdown(ctx context.Context) error {
	s.hub.Shutdown(ctx)
	s.loopOnce.Do(func() {}) // no loop may start after this
	for _, l := range s.loops {
		l.Close()
	}
	_ = s.logq.Flush(ctx)
	return ctx.Err()
}

// eventLoop starts the event loops with the first WebSocket, so that a
// Server that never serves one owns no goroutine, and returns the one that
// accepts. It returns nil where the loops are off or unavailable.
func (s *Server) eventLoop() *wsloop.Loop {
	s.loopOnce.Do(func() {
		if s.cfg.NoEventLoop {
			return
		}
		n := s.cfg.EventLoops
		if n <= 0 {
			n = runtime.GOMAXPROCS(0)
		}
		for range n {
			loop, err := wsloop.New(loopConfig(s.hub.Config()), s.log)
			if err != nil {
				s.log.Warn("event loop unavailable; serving a goroutine per connection", "err", err)
				for _, l := range s.loops {
					l.Close()
				}
				s.loops = nil
				return
			}
			s.loops = append(s.loops, loop)
		}
	})
	if len(s.loops) == 0 {
		return nil
	}
	return s.loops[0]
}

// nextLoop is the loop to serve a new connection: each in turn. The hub's
// state keeps its one lock whichever loop a connection is on; a message
// to a connection on another loop is queued there and wakes that loop.
func (s *Server) nextLoop() *wsloop.Loop {
	return s.loops[s.loopTurn.Add(1)%uint64(len(s.loops))]
}

// Listener returns the listener to give http.Server.Serve for ln. Where
// the event loop serves WebSockets, it accepts ln's connections itself and
// upgrades WebSocket requests without net/http (see wsloop.Loop.Listen),
// which halves the system calls of a login; the connections returned are
// the other requests. Otherwise, and for a TLS listener, it returns ln.
func (s *Server) Listener(ln net.Listener) (net.Listener, error) {
	if _, ok := ln.(*net.TCPListener); !ok {
		return ln, nil
	}
	loop := s.eventLoop()
	if loop == nil {
		return ln, nil
	}
	hl, err := loop.Listen(ln, s.router)
	if err != nil {
		return nil, fmt.Errorf("accepting on the event loop: %w", err)
	}
	return hl, nil
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s.cfg.Health != nil {
		if err := s.cfg.Health(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
	}
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	remote, release, ok := s.admit(w, r)
	if !ok {
		return
	}
	if r.TLS == nil {
		if s.eventLoop() != nil {
			s.serveLoop(s.nextLoop(), w, r, remote, release)
			return
		}
	}
	lw := &leanWriter{ResponseWriter: w, readLimit: s.hub.Config().ReadLimit} // leanconn.go
	conn, err := websocket.Accept(lw, r, &websocket.AcceptOptions{
		OriginPatterns: s.cfg.AllowOrigins,
	})
	if err != nil {
		release()
		// Accept has already written the HTTP error (403 for a foreign
		// origin, 426 for a plain GET).
		s.log.Debug("websocket upgrade refused", "remote", r.RemoteAddr, "err", err)
		return
	}
	var batch wspump.Batcher
	if lw.conn != nil {
		batch = lw.conn
	}
	// Serve on a fresh goroutine and let the handler return: net/http's
	// goroutine, request and buffers are then freed, which is most of what
	// an idle connection would otherwise hold. The request's context ends
	// with the handler, so the connection runs on its own; Shutdown closes
	// it.
	go servePump(s.hub, conn, batch, remote, release)
}

// serveLoop hands a plain-TCP WebSocket to the event loop. The handler
// returns at once; the connection then holds no goroutine at all.
func (s *Server) serveLoop(loop *wsloop.Loop, w http.ResponseWriter, r *http.Request, remote string, release func()) {
	nc, pending, err := wsloop.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.cfg.AllowOrigins})
	if err != nil {
		release()
		s.log.Debug("websocket upgrade refused", "remote", r.RemoteAddr, "err", err)
		return
	}
	if err := attachLoop(s.hub, loop, nc, pending, remote, release); err != nil {
		s.log.Warn("event loop refused a connection", "remote", remote, "err", err)
	}
}
