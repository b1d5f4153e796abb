package natsbus

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/p2pchat/p2pchat/server/signaling"
)

// view is watchLoop's picture of the name space: who owns each name, and
// which owners are known alive or dead. Only watchLoop touches it.
type view struct {
	names  map[string]held   // name → owner, as the bucket says
	alive  map[string]bool   // owner tokens whose live key was seen
	dead   map[string]bool   // owner tokens whose live key went
	intern map[string]string // one copy of each owner token
}

type held struct {
	owner string
	rev   uint64
}

func newView() *view {
	return &view{names: map[string]held{}, alive: map[string]bool{}, dead: map[string]bool{}, intern: map[string]string{}}
}

func (v *view) token(s string) string {
	if t, ok := v.intern[s]; ok {
		return t
	}
	v.intern[s] = s
	return s
}

// watchLoop turns the buckets' changes into presence: a name key put is
// a name online, a name key removed or its owner's live key gone is a
// name offline (its local call peers get leave). It also takes away
// names another instance took over.
func (b *Bus) watchLoop() {
	defer b.wg.Done()
	v := newView()
	names, live := b.watcher.Updates(), b.liveWatcher.Updates()
	namesIn, liveIn := false, false
	for {
		select {
		case e, ok := <-names:
			if !ok {
				return
			}
			if e == nil {
				namesIn = true
				if liveIn {
					b.sweep(v)
				}
				continue
			}
			b.nameChanged(v, e)
		case e, ok := <-live:
			if !ok {
				return
			}
			if e == nil {
				liveIn = true
				if namesIn {
					b.sweep(v)
				}
				continue
			}
			b.ownerChanged(v, e)
		case <-b.stop:
			return
		}
	}
}

func (b *Bus) nameChanged(v *view, e jetstream.KeyValueEntry) {
	name, ok := decode(e.Key())
	if !ok {
		return
	}
	if e.Operation() != jetstream.KeyValuePut {
		delete(v.names, name)
		b.hub.Gone(name)
		// Our own releases left b.owned before their purge; a removal of
		// a name still held here is a mistake of someone else's: the
		// holder goes, so the name is never held twice.
		if b.forgetBefore(name, e.Revision()) {
			b.Stats.LeasesLost.Add(1)
			b.hub.Revoke(name, signaling.StatusTryElsewhere)
		}
		return
	}
	owner, _ := parseValue(e.Value())
	owner = v.token(owner)
	if v.dead[owner] {
		// A late write of an incarnation already gone.
		delete(v.names, name)
		b.hub.Gone(name)
		b.purgeLater([]keyRev{{e.Key(), e.Revision()}})
		return
	}
	v.names[name] = held{owner: owner, rev: e.Revision()}
	b.hub.Seen(name)
	if owner != b.me() && b.forgetBefore(name, e.Revision()) {
		b.hub.Revoke(name, signaling.StatusSessionResumed)
	}
}

func (b *Bus) ownerChanged(v *view, e jetstream.KeyValueEntry) {
	owner := v.token(e.Key())
	if e.Operation() == jetstream.KeyValuePut {
		v.alive[owner] = true
		return
	}
	if owner == b.me() {
		// Our lease ran out before we noticed: nobody may count on our
		// names any more.
		b.failClosed("the instance's lease expired")
	}
	b.bury(v, owner)
}

// bury takes the names of a dead owner offline and purges their keys.
func (b *Bus) bury(v *view, owner string) {
	delete(v.alive, owner)
	v.dead[owner] = true
	var keys []keyRev
	for name, h := range v.names {
		if h.owner != owner {
			continue
		}
		delete(v.names, name)
		b.hub.Gone(name)
		keys = append(keys, keyRev{encode(name), h.rev})
	}
	b.Stats.OwnersDead.Add(1)
	b.purgeLater(keys)
}

// purgeLater purges keys off watchLoop, which must not wait for NATS.
func (b *Bus) purgeLater(keys []keyRev) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.purgeDead(keys)
	}()
}

// sweep runs once both buckets' initial values are in: a name whose
// owner has no live key (it died before this instance watched, and its
// keys were never purged) is offline and purged. An owner not seen alive
// is asked for directly, since the two watches are not ordered against
// each other.
func (b *Bus) sweep(v *view) {
	checked := map[string]bool{}
	for _, h := range v.names {
		o := h.owner
		if v.alive[o] || v.dead[o] || checked[o] {
			continue
		}
		checked[o] = true
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		ok, err := b.alive(ctx, o)
		cancel()
		if err == nil && !ok {
			b.bury(v, o)
		}
	}
}

func isNotFound(err error) bool { return errors.Is(err, jetstream.ErrKeyNotFound) }
