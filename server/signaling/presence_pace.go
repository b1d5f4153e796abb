package signaling

import "time"

// Paced presence fan-out.
//
// A flush to many subscribers used to enqueue a message for every one of
// them at once, under the hub lock: with 19,000 subscribers that is 19,000
// writer goroutines and system calls in one burst, and relays queued
// behind it (p99 one-way latency went from 0.4 ms to 160 ms every few
// seconds). Large fan-outs are now sent in chunks of fanoutChunk, one
// chunk every fanoutGap, outside the hub lock, which spreads them at
// presenceFanoutBudget messages per second, the same budget that sets the
// flush interval (presence.interval), so one fan-out ends about when the
// next flush is due.
//
// Order: one pacer goroutine sends queued fan-outs strictly in order, and
// while it runs, small fan-outs queue behind it too, so no subscriber can
// get a diff before an earlier one. A client that subscribes after a flush
// is not in that flush's snapshot; it got the published list at login.

const (
	// fanoutChunk is how many subscribers get a presence message at once.
	fanoutChunk = 200
	// fanoutGap spaces the chunks so that fan-out runs at the budget.
	fanoutGap = time.Second * fanoutChunk / presenceFanoutBudget
)

// fanout is one presence message still to be sent to subs.
type fanout struct {
	msg  []byte
	subs []*Client
}

// publish sends msg to every subscriber: at once if they are few and
// nothing is queued, else paced. Called with the hub lock held.
func (p *presence) publish(msg []byte) {
	if !p.pacing && len(p.subs) <= fanoutChunk {
		for c := range p.subs {
			c.send(msg)
		}
		return
	}
	subs := make([]*Client, 0, len(p.subs))
	for c := range p.subs {
		subs = append(subs, c)
	}
	p.fanq = append(p.fanq, fanout{msg: msg, subs: subs})
	if !p.pacing {
		p.pacing = true
		go p.pace()
	}
}

// pace sends the queued fan-outs chunk by chunk, then exits.
func (p *presence) pace() {
	for {
		if p.sendNext() {
			time.Sleep(fanoutGap)
			continue
		}
		p.hub.mu.Lock()
		if len(p.fanq) == 0 || p.stopped {
			p.fanq, p.pacing = nil, false
			p.hub.mu.Unlock()
			return
		}
		p.hub.mu.Unlock()
	}
}

// sendNext sends the next chunk of queued fan-out outside the hub lock
// and reports whether it sent anything.
func (p *presence) sendNext() bool {
	h := p.hub
	h.mu.Lock()
	if len(p.fanq) == 0 || p.stopped {
		h.mu.Unlock()
		return false
	}
	f := &p.fanq[0]
	n := min(fanoutChunk, len(f.subs))
	batch, msg := f.subs[:n], f.msg
	f.subs = f.subs[n:]
	if len(f.subs) == 0 {
		p.fanq[0] = fanout{}
		p.fanq = p.fanq[1:]
	}
	h.mu.Unlock()
	for _, c := range batch {
		c.send(msg) // a client gone meanwhile just refuses it
	}
	return true
}
