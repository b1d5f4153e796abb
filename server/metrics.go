package server

import (
	"bufio"
	"fmt"
	"io"
	"net/http"

	"github.com/VictoriaMetrics/metrics"
)

// MetricsHandler serves the Prometheus text format: p2pchat's own
// counters, read from the hub's atomics at scrape time (so counting costs
// the hot path nothing but an atomic add), followed by the Go runtime and
// process metrics of github.com/VictoriaMetrics/metrics. That module was
// chosen over prometheus/client_golang because it adds two small
// dependencies instead of about ten (protobuf among them) and far less to
// the binary; see docs/benchmarks.md.
func (s *Server) MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		bw := bufio.NewWriter(w)
		s.writeMetrics(bw)
		for _, write := range s.cfg.MetricsWriters {
			write(bw)
		}
		metrics.WriteProcessMetrics(bw)
		_ = bw.Flush()
	})
}

// writeMetrics writes p2pchat's own metrics, each family with HELP and TYPE.
func (s *Server) writeMetrics(w io.Writer) {
	st := s.hub.Stats()
	family := func(name, typ, help string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	family("p2pchat_connections", "gauge", "Open signaling WebSocket connections.")
	fmt.Fprintf(w, "p2pchat_connections %d\n", st.Connections.Load())
	family("p2pchat_users_online", "gauge", "Logged-in users.")
	fmt.Fprintf(w, "p2pchat_users_online %d\n", s.hub.Online())
	family("p2pchat_logins_total", "counter", "Successful logins.")
	fmt.Fprintf(w, "p2pchat_logins_total %d\n", st.Logins.Load())
	family("p2pchat_session_resumes_total", "counter", "Logins that resumed a session with its token (after a reconnect).")
	fmt.Fprintf(w, "p2pchat_session_resumes_total %d\n", st.Resumes.Load())
	family("p2pchat_refusals_total", "counter", "Refused messages and logins, by error code.")
	st.Refusals(func(code string, n uint64) {
		fmt.Fprintf(w, "p2pchat_refusals_total{code=%q} %d\n", code, n)
	})
	family("p2pchat_connections_refused_total", "counter", "WebSocket upgrades refused by a connection cap, by reason.")
	fmt.Fprintf(w, "p2pchat_connections_refused_total{reason=%q} %d\n", refusedPerIP, s.limits.refusedPerIP.Load())
	fmt.Fprintf(w, "p2pchat_connections_refused_total{reason=%q} %d\n", refusedFull, s.limits.refusedFull.Load())
	family("p2pchat_relayed_messages_total", "counter", "Messages relayed to their target, by type.")
	st.Relayed(func(typ string, n uint64) {
		fmt.Fprintf(w, "p2pchat_relayed_messages_total{type=%q} %d\n", typ, n)
	})
	family("p2pchat_slow_client_disconnects_total", "counter", "Clients disconnected because their send queue overflowed.")
	fmt.Fprintf(w, "p2pchat_slow_client_disconnects_total %d\n", st.SlowDisconnects.Load())
	family("p2pchat_send_queue_high_water_bytes", "gauge", "Largest per-connection queued output seen since start, in bytes.")
	fmt.Fprintf(w, "p2pchat_send_queue_high_water_bytes %d\n", st.QueueHighWater.Load())
}
