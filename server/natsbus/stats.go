package natsbus

import (
	"fmt"
	"io"
	"sync/atomic"
)

// Stats are the bus's counters, plain atomics read at scrape time.
type Stats struct {
	RoundTrips     atomic.Uint64 // requests to NATS that wait for an answer (KV, account info, take-over)
	Claims         atomic.Uint64 // names claimed
	ClaimsRefused  atomic.Uint64 // claims refused: the name is held elsewhere
	TakeOvers      atomic.Uint64 // sessions resumed from another instance
	LeaseRefreshes atomic.Uint64 // writes of the instance's live key
	LeasesLost     atomic.Uint64 // names held here whose key someone else removed
	OwnersDead     atomic.Uint64 // instances (incarnations) seen dead
	Purged         atomic.Uint64 // name keys of dead instances purged
	RelaysOut      atomic.Uint64 // messages published to users on other instances
	RelaysIn       atomic.Uint64 // messages from other instances delivered here
	RelayErrors    atomic.Uint64 // publishes that failed
	Bounces        atomic.Uint64 // relays nobody held the target of (no responders)
	FailClosed     atomic.Uint64 // times all clients were dropped for losing NATS
}

// WriteMetrics writes the counters in the Prometheus text format, with
// nats_up (1 while the instance holds its claims).
func (b *Bus) WriteMetrics(w io.Writer) {
	family := func(name, typ, help string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	up := 0
	if b.Healthy() {
		up = 1
	}
	family("p2pchat_nats_up", "gauge", "1 while NATS answers and this instance holds its name claims.")
	fmt.Fprintf(w, "p2pchat_nats_up %d\n", up)
	s := &b.Stats
	for _, c := range []struct {
		name, help string
		v          *atomic.Uint64
	}{
		{"p2pchat_nats_round_trips_total", "Requests to NATS that wait for an answer.", &s.RoundTrips},
		{"p2pchat_nats_claims_total", "Names claimed in the name bucket.", &s.Claims},
		{"p2pchat_nats_claims_refused_total", "Claims refused because the name is held elsewhere.", &s.ClaimsRefused},
		{"p2pchat_nats_takeovers_total", "Sessions resumed here from another instance.", &s.TakeOvers},
		{"p2pchat_nats_lease_refreshes_total", "Writes of this instance's lease (its key in the instance bucket).", &s.LeaseRefreshes},
		{"p2pchat_nats_leases_lost_total", "Names held here whose key another instance removed.", &s.LeasesLost},
		{"p2pchat_nats_instances_dead_total", "Instances seen dead: their lease expired or was deleted.", &s.OwnersDead},
		{"p2pchat_nats_purged_total", "Name keys of dead instances purged from the name bucket.", &s.Purged},
		{"p2pchat_nats_relays_out_total", "Messages relayed to users on other instances.", &s.RelaysOut},
		{"p2pchat_nats_relays_in_total", "Messages from other instances delivered here.", &s.RelaysIn},
		{"p2pchat_nats_relay_errors_total", "Relays to other instances that could not be published.", &s.RelayErrors},
		{"p2pchat_nats_bounces_total", "Relays whose target was online nowhere (no responders).", &s.Bounces},
		{"p2pchat_nats_fail_closed_total", "Times every client was dropped because NATS was lost for half the lease.", &s.FailClosed},
	} {
		family(c.name, "counter", c.help)
		fmt.Fprintf(w, "%s %d\n", c.name, c.v.Load())
	}
}
