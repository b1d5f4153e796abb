package signaling

import (
	"slices"
	"time"
)

// presence keeps subscribed clients' online lists up to date.
//
// Logins and logouts are not broadcast one by one: that would cost
// (online users × logins per second) sends. Instead changes accumulate as a
// net diff against the last published list, and a timer publishes one diff
// message per PresenceInterval to every subscriber, only when something
// changed. The work per second is then bounded by subscribers / interval,
// whatever the login rate. A new subscriber gets the published list (as of
// the last flush, cached between flushes) followed by later diffs, which is
// exactly consistent. Above PresenceMax names only the count is sent.
//
// All fields are guarded by the hub's mutex.
type presence struct {
	hub       *Hub
	subs      map[*Client]struct{}
	published map[string]struct{} // names as of the last flush
	pending   map[string]bool     // net change: true joined, false left
	timer     *time.Timer
	armed     bool
	stopped   bool
	full      []byte // cached full-list message for the published list

	fanq   []fanout // paced fan-outs still to send (presence_pace.go)
	pacing bool     // a pacer goroutine is sending fanq
}

func (p *presence) init(h *Hub) {
	p.hub = h
	p.subs = make(map[*Client]struct{})
	p.published = make(map[string]struct{})
	p.pending = make(map[string]bool)
}

func (p *presence) joined(name string) {
	if !p.hub.cfg.Presence {
		return
	}
	if _, ok := p.published[name]; ok {
		delete(p.pending, name) // left and came back within one interval
	} else {
		p.pending[name] = true
	}
	p.arm()
}

func (p *presence) left(name string) {
	if !p.hub.cfg.Presence {
		return
	}
	if _, ok := p.published[name]; ok {
		p.pending[name] = false
	} else {
		delete(p.pending, name) // joined and left within one interval
	}
	p.arm()
}

// subscribe sends c the published list; later diffs follow from flush.
func (p *presence) subscribe(c *Client) {
	p.subs[c] = struct{}{}
	if p.full == nil {
		p.full = p.fullMessage()
	}
	c.send(p.full)
}

func (p *presence) unsubscribe(c *Client) { delete(p.subs, c) }

func (p *presence) fullMessage() []byte {
	m := presenceMessage{Type: "presence", Full: true, Online: len(p.published)}
	if len(p.published) > p.hub.cfg.PresenceMax {
		m.Truncated = true
	} else {
		m.Users = sortedKeys(p.published)
	}
	return mustJSON(m)
}

func (p *presence) arm() {
	if p.armed || p.stopped {
		return
	}
	p.armed = true
	if p.timer == nil {
		p.timer = time.AfterFunc(p.interval(), p.flush)
	} else {
		p.timer.Reset(p.interval())
	}
}

// presenceFanoutBudget bounds the presence messages sent per second in
// all. A flush goes to every subscriber, so with 100,000 of them a flush
// every second would cost more than all the signaling itself (one write
// each); past PresenceMax they only learn a count anyway. The interval is
// stretched so that subscribers / interval stays within the budget: 2,000
// messages a second is a few percent of one core.
const presenceFanoutBudget = 2000

// interval is PresenceInterval, stretched for many subscribers.
func (p *presence) interval() time.Duration {
	d := p.hub.cfg.PresenceInterval
	return max(d, time.Duration(len(p.subs))*time.Second/presenceFanoutBudget)
}

func (p *presence) stop() {
	p.hub.mu.Lock()
	defer p.hub.mu.Unlock()
	p.stopped = true
	if p.timer != nil {
		p.timer.Stop()
	}
}

// flush publishes the pending diff to every subscriber.
func (p *presence) flush() {
	h := p.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	p.armed = false
	if len(p.pending) == 0 || p.stopped {
		return
	}
	wasTruncated := len(p.published) > h.cfg.PresenceMax
	var joined, left []string
	for name, in := range p.pending {
		if in {
			joined = append(joined, name)
			p.published[name] = struct{}{}
		} else {
			left = append(left, name)
			delete(p.published, name)
		}
	}
	clear(p.pending)
	p.full = nil
	online := len(p.published)

	var msg []byte
	switch {
	case online > h.cfg.PresenceMax:
		msg = mustJSON(presenceMessage{Type: "presence", Online: online, Truncated: true})
	case wasTruncated:
		// Back under the cap: clients hold no names, so send them all.
		p.full = p.fullMessage()
		msg = p.full
	default:
		slices.Sort(joined)
		slices.Sort(left)
		msg = mustJSON(presenceMessage{Type: "presence", Online: online, Joined: joined, Left: left})
	}
	p.publish(msg)
}

func sortedKeys(m map[string]struct{}) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
