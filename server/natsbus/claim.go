package natsbus

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/p2pchat/p2pchat/server/signaling"
)

// encode is a name's KV key and subject token.
func encode(name string) string { return base64.RawURLEncoding.EncodeToString([]byte(name)) }

func decode(key string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(key)
	return string(b), err == nil
}

func tokenHash(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// value is a claim's KV value: owner token, a space, token hash.
func value(owner, tok string) []byte { return []byte(owner + " " + tokenHash(tok)) }

// instanceOf is the instance id in an owner token (id-incarnation): the
// subjects of an instance do not change when it fails closed.
func instanceOf(owner string) string {
	id, _, _ := strings.Cut(owner, "-")
	return id
}

func parseValue(v []byte) (owner, hash string) {
	owner, hash, _ = strings.Cut(string(v), " ")
	return owner, hash
}

// Claim implements signaling.Cluster.
func (b *Bus) Claim(name, tok, presented string) (signaling.Claim, error) {
	if !b.healthy.Load() || !b.nc.IsConnected() {
		return signaling.Claim{}, ErrUnavailable
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	me := b.me()
	key, val := encode(name), value(me, tok)
	b.unrelease(name)
	// The name's subject is subscribed before the claim is made, on the
	// same connection: when the claim's answer is back, the server has
	// the subscription, and a relay sent right after the login reply
	// cannot find nobody.
	sub, err := b.nc.ChanSubscribe(userPrefix+key, b.inbox)
	if err != nil {
		return signaling.Claim{}, fmt.Errorf("subscribing %q: %w", name, err)
	}
	res, err := b.claim(ctx, name, key, me, val, presented, sub)
	if err != nil {
		_ = sub.Unsubscribe()
	}
	return res, err
}

func (b *Bus) claim(ctx context.Context, name, key, me string, val []byte, presented string, sub *nats.Subscription) (signaling.Claim, error) {
	for range 3 {
		b.Stats.RoundTrips.Add(1)
		rev, err := b.kv.Create(ctx, key, val)
		if err == nil {
			if !b.own(name, me, rev, val, sub) {
				return signaling.Claim{}, ErrUnavailable
			}
			b.Stats.Claims.Add(1)
			return signaling.Claim{}, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return signaling.Claim{}, fmt.Errorf("claiming %q: %w", name, err)
		}
		b.Stats.RoundTrips.Add(1)
		e, err := b.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // expired or released in between: try again
		}
		if err != nil {
			return signaling.Claim{}, fmt.Errorf("reading claim of %q: %w", name, err)
		}
		owner, hash := parseValue(e.Value())
		resumed := presented != "" && hash == tokenHash(presented)
		// The hub asks only for names it does not hold, so a claim of
		// this instance is one whose release is still on its way, or one
		// of an incarnation that failed closed. A key whose owner has no
		// live key is garbage, not yet purged.
		mine := instanceOf(owner) == b.id
		if !mine && !resumed {
			alive, err := b.alive(ctx, owner)
			if err != nil {
				return signaling.Claim{}, err
			}
			if alive {
				b.Stats.ClaimsRefused.Add(1)
				return signaling.Claim{}, signaling.ErrNameHeld
			}
		}
		b.Stats.RoundTrips.Add(1)
		rev, err = b.kv.Update(ctx, key, val, e.Revision())
		if isWrongSeq(err) {
			continue
		}
		if err != nil {
			return signaling.Claim{}, fmt.Errorf("taking over %q: %w", name, err)
		}
		if !b.own(name, me, rev, val, sub) {
			return signaling.Claim{}, ErrUnavailable
		}
		b.Stats.Claims.Add(1)
		if mine || !resumed {
			return signaling.Claim{Resumed: resumed}, nil
		}
		b.Stats.TakeOvers.Add(1)
		return signaling.Claim{Resumed: true, Peers: b.askTake(ctx, owner, name)}, nil
	}
	b.Stats.ClaimsRefused.Add(1)
	return signaling.Claim{}, signaling.ErrNameHeld
}

// askTake tells the old owner of name that its session moved here and
// returns the names it was in calls with. A dead owner has none to give.
func (b *Bus) askTake(ctx context.Context, owner, name string) []string {
	b.Stats.RoundTrips.Add(1)
	msg, err := b.nc.RequestWithContext(ctx, instPrefix+instanceOf(owner)+".take", []byte(name))
	if err != nil {
		if !errors.Is(err, nats.ErrNoResponders) {
			b.log.Warn("asking for a session's calls", "name", name, "err", err)
		}
		return nil
	}
	var peers []string
	_ = json.Unmarshal(msg.Data, &peers)
	return peers
}

// handleTake answers another instance that resumed the session of one of
// our names.
func (b *Bus) handleTake(m *nats.Msg) {
	name := string(m.Data)
	b.forget(name)
	peers := b.hub.Revoke(name, signaling.StatusSessionResumed)
	data, _ := json.Marshal(peers)
	_ = m.Respond(data)
}

// own records a claim with its subscription, unless the claim was made
// by an incarnation that has failed closed meanwhile: its key is garbage
// once that incarnation's live key is gone.
func (b *Bus) own(name, me string, rev uint64, val []byte, sub *nats.Subscription) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.self != me {
		return false
	}
	if old := b.owned[name]; old != nil && old.sub != nil {
		_ = old.sub.Unsubscribe()
	}
	b.owned[name] = &claim{rev: rev, value: val, sub: sub}
	return true
}

// forget drops a claim without deleting its key and returns its revision.
func (b *Bus) forget(name string) (uint64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cl := b.owned[name]
	if cl == nil {
		return 0, false
	}
	delete(b.owned, name)
	if cl.sub != nil {
		_ = cl.sub.Unsubscribe()
	}
	return cl.rev, true
}

// forgetBefore drops the claim of name if it is older than rev, the
// revision of another instance's write: an old write seen late by the
// watcher must not take away a newer claim.
func (b *Bus) forgetBefore(name string, rev uint64) bool {
	b.mu.Lock()
	cl := b.owned[name]
	older := cl != nil && cl.rev < rev
	b.mu.Unlock()
	if !older {
		return false
	}
	_, ok := b.forget(name)
	return ok
}

// Rekey implements signaling.Cluster.
func (b *Bus) Rekey(name, tok string) {
	b.mu.Lock()
	cl := b.owned[name]
	var rev uint64
	if cl != nil {
		rev = cl.rev
	}
	b.mu.Unlock()
	if cl == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	val := value(b.me(), tok)
	b.Stats.RoundTrips.Add(1)
	nrev, err := b.kv.Update(ctx, encode(name), val, rev)
	if err != nil {
		b.log.Warn("recording a resumed session's token", "name", name, "err", err)
		return
	}
	b.mu.Lock()
	if b.owned[name] == cl {
		cl.rev, cl.value = nrev, val
	}
	b.mu.Unlock()
}

// Release implements signaling.Cluster. The hub calls it with its lock
// held, so it only moves the claim to releasing; releaseLoop unsubscribes
// the name's subject and deletes its key, only if it is still this
// claim's.
func (b *Bus) Release(name string) {
	b.mu.Lock()
	cl := b.owned[name]
	if cl == nil {
		b.mu.Unlock()
		return
	}
	delete(b.owned, name)
	b.releasing[name] = release{rev: cl.rev, sub: cl.sub}
	b.releaseQ = append(b.releaseQ, name)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default: // already woken; it drains the whole queue
	}
}

// unrelease takes back a release of name that releaseLoop has not done
// yet, before name is claimed again: its old subscription goes first, so
// the subject is never subscribed twice (every relay would arrive twice),
// and the key is left to the claim's compare-and-set. Unsubscribing under
// b.mu orders it against releaseLoop's.
func (b *Bus) unrelease(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.releasing[name]
	if !ok {
		return
	}
	delete(b.releasing, name)
	if r.sub != nil {
		_ = r.sub.Unsubscribe()
	}
}

func (b *Bus) releaseLoop() {
	defer b.wg.Done()
	for {
		select {
		case <-b.wake:
			b.releaseAll()
		case <-b.stop:
			b.releaseAll()
			return
		}
	}
}

// releaseAll does the releases queued so far, in order.
func (b *Bus) releaseAll() {
	for {
		b.mu.Lock()
		if len(b.releaseQ) == 0 {
			b.releaseQ = nil // give the backing array back
			b.mu.Unlock()
			return
		}
		name := b.releaseQ[0]
		b.releaseQ = b.releaseQ[1:]
		r, ok := b.releasing[name]
		if ok {
			delete(b.releasing, name)
			if r.sub != nil {
				_ = r.sub.Unsubscribe()
			}
		}
		b.mu.Unlock()
		if ok {
			b.deleteKey(encode(name), r.rev)
		}
	}
}

func (b *Bus) deleteKey(key string, rev uint64) {
	if !b.nc.IsConnected() || !b.healthy.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	b.Stats.RoundTrips.Add(1)
	// A purge with a TTL, not a delete: the bucket has no TTL of its own,
	// and a delete marker would stay for ever.
	if err := b.kv.Purge(ctx, key, jetstream.LastRevision(rev), jetstream.PurgeTTL(b.opts.Lease)); err != nil && !isWrongSeq(err) {
		b.log.Debug("releasing a name", "key", key, "err", err)
	}
}

func isWrongSeq(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return false
}
