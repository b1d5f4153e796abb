package natsbus

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/p2pchat/p2pchat/server/signaling"
)

// refreshLoop rewrites every held key each lease/4 and fails closed when
// that has not worked for half a lease.
func (b *Bus) refreshLoop() {
	defer b.wg.Done()
	tick := time.NewTicker(b.opts.Lease / 8)
	defer tick.Stop()
	next := time.Now().Add(b.opts.Lease / 4)
	for {
		select {
		case <-b.stop:
			return
		case now := <-tick.C:
			if !now.Before(next) || !b.healthy.Load() {
				if b.refresh() {
					b.lastOK.Store(time.Now().UnixNano())
					if !b.healthy.Swap(true) {
						b.log.Info("nats reachable again; accepting logins")
					}
				}
				next = now.Add(b.opts.Lease / 4)
			}
			if b.healthy.Load() && time.Since(time.Unix(0, b.lastOK.Load())) > b.opts.Lease/2 {
				b.failClosed()
			}
		}
	}
}

// failClosed gives up every claim: the keys may outlive us by half a
// lease, so nobody else takes a name while a client here still has it.
func (b *Bus) failClosed() {
	b.healthy.Store(false)
	b.Stats.FailClosed.Add(1)
	b.mu.Lock()
	for name, cl := range b.owned {
		if cl.sub != nil {
			_ = cl.sub.Unsubscribe()
		}
		delete(b.owned, name)
	}
	for name, r := range b.releasing {
		if r.sub != nil {
			_ = r.sub.Unsubscribe()
		}
		delete(b.releasing, name)
	}
	b.releaseQ = nil
	b.mu.Unlock()
	b.log.Error("nats unreachable for half the lease; dropping all clients", "lease", b.opts.Lease)
	b.hub.DropAll()
}

// refresh runs one round: every held key is rewritten with a
// compare-and-set on its revision, all at once. A key whose revision
// moved was taken by someone else: its holder here is dropped.
func (b *Bus) refresh() bool {
	if !b.nc.IsConnected() {
		return false
	}
	type pending struct {
		name string
		cl   *claim
		rev  uint64
		f    jetstream.PubAckFuture
	}
	b.mu.Lock()
	batch := make([]pending, 0, len(b.owned))
	for name, cl := range b.owned {
		batch = append(batch, pending{name: name, cl: cl, rev: cl.rev})
	}
	vals := make([][]byte, len(batch))
	for i, p := range batch {
		vals[i] = p.cl.value
	}
	b.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), b.opts.Lease/4)
	defer cancel()
	b.Stats.RoundTrips.Add(1)
	if len(batch) == 0 {
		_, err := b.js.AccountInfo(ctx)
		return err == nil
	}
	for i := range batch {
		msg := &nats.Msg{Subject: b.prefix + encode(batch[i].name), Data: vals[i]}
		f, err := b.js.PublishMsgAsync(msg, jetstream.WithExpectLastSequencePerSubject(batch[i].rev))
		if err != nil {
			return false
		}
		batch[i].f = f
	}
	select {
	case <-b.js.PublishAsyncComplete():
	case <-ctx.Done():
		return false
	}
	ok := true
	for _, p := range batch {
		select {
		case ack := <-p.f.Ok():
			b.Stats.LeaseRefreshes.Add(1)
			b.mu.Lock()
			if b.owned[p.name] == p.cl && p.cl.rev == p.rev {
				p.cl.rev = ack.Sequence
			}
			b.mu.Unlock()
		case err := <-p.f.Err():
			if !isWrongSeq(err) {
				ok = false
				continue
			}
			// Taken over (the watcher may know already) or renewed by
			// Rekey meanwhile.
			b.mu.Lock()
			lost := b.owned[p.name] == p.cl && p.cl.rev == p.rev
			b.mu.Unlock()
			if lost {
				b.Stats.LeasesLost.Add(1)
				b.forget(p.name)
				b.hub.Revoke(p.name, signaling.StatusTryElsewhere)
			}
		default:
			ok = false
		}
	}
	return ok
}
