package natsbus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// refreshLoop rewrites the instance's live key each lease/4 and fails
// closed when that has not worked for half a lease. A failed write is
// tried again at the next tick (lease/16), each try bounded by
// refreshTimeout, so that a JetStream leader election that ends within
// the half lease (4-9 s of election timeout after a server dies) costs
// a late refresh, not every client.
func (b *Bus) refreshLoop() {
	defer b.wg.Done()
	tick := time.NewTicker(b.opts.Lease / 16)
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
					next = now.Add(b.opts.Lease / 4)
				}
			}
			if b.healthy.Load() && time.Since(time.Unix(0, b.lastOK.Load())) > b.opts.Lease/2 {
				b.failClosed("nats unreachable for half the lease")
			}
		}
	}
}

// refreshTimeout bounds one write of the live key: lease/8, so that
// there is time for tries after it, but at least a second (a loaded
// machine's round trip must not count as lost) and at most lease/4.
func (b *Bus) refreshTimeout() time.Duration {
	return min(b.opts.Lease/4, max(b.opts.Lease/8, time.Second))
}

// failClosed gives up every claim: the live key may outlive us by half a
// lease, so nobody else takes a name while a client here still has it.
// The instance comes back as a new incarnation (a new owner token), so
// that the keys of this one are garbage to everyone once its live key is
// gone, whatever the order in which others see that and our new claims.
func (b *Bus) failClosed(why string) {
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
	b.buried = append(b.buried, b.self)
	b.epoch++
	b.self = fmt.Sprintf("%s-%d", b.id, b.epoch)
	b.mu.Unlock()
	b.log.Error(why+"; dropping all clients", "lease", b.opts.Lease)
	b.hub.DropAll()
}

// refresh puts the instance's live key (one write, whatever the number
// of names held) and, once NATS answers again after failing closed,
// deletes the live keys of the earlier incarnations, so that the other
// instances free their names now rather than after the lease.
func (b *Bus) refresh() bool {
	if !b.nc.IsConnected() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.refreshTimeout())
	defer cancel()
	me := b.me()
	b.Stats.RoundTrips.Add(1)
	if _, err := b.live.Put(ctx, me, []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
		b.log.Debug("refreshing the instance's lease", "err", err)
		return false
	}
	b.Stats.LeaseRefreshes.Add(1)
	for {
		b.mu.Lock()
		if len(b.buried) == 0 {
			b.mu.Unlock()
			return true
		}
		old := b.buried[0]
		b.mu.Unlock()
		b.Stats.RoundTrips.Add(1)
		if err := b.live.Delete(ctx, old); err != nil {
			return true // it expires with its lease anyway
		}
		b.mu.Lock()
		b.buried = b.buried[1:]
		b.mu.Unlock()
	}
}

// me is the owner token of the current incarnation: the instance id and
// how many times it failed closed.
func (b *Bus) me() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.self
}

// alive reports whether owner's live key exists: the owner of a name key
// is alive if its instance still refreshes its lease.
func (b *Bus) alive(ctx context.Context, owner string) (bool, error) {
	b.Stats.RoundTrips.Add(1)
	_, err := b.live.Get(ctx, owner)
	if err == nil {
		return true, nil
	}
	if isNotFound(err) {
		return false, nil
	}
	return false, fmt.Errorf("reading the lease of %s: %w", owner, err)
}

// purgeDead removes the name keys of an owner whose live key is gone, in
// one batch of compare-and-set purges (a key claimed again meanwhile has
// moved on and is left alone). Every instance that sees the death does
// it; all but the first find the revision moved. The purge markers
// expire after the lease.
func (b *Bus) purgeDead(keys []keyRev) {
	if len(keys) == 0 || !b.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.opts.Lease)
	defer cancel()
	for _, k := range keys {
		m := nats.NewMsg(b.prefix + k.key)
		m.Header.Set("KV-Operation", "PURGE")
		m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
		if _, err := b.js.PublishMsgAsync(m, jetstream.WithExpectLastSequencePerSubject(k.rev), jetstream.WithMsgTTL(b.opts.Lease)); err != nil {
			b.log.Debug("purging a dead instance's name", "key", k.key, "err", err)
			return
		}
	}
	select {
	case <-b.js.PublishAsyncComplete():
		b.Stats.Purged.Add(uint64(len(keys)))
	case <-ctx.Done():
	}
}

type keyRev struct {
	key string
	rev uint64
}
