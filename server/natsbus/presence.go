package natsbus

import (
	"github.com/nats-io/nats.go/jetstream"

	"github.com/p2pchat/p2pchat/server/signaling"
)

// watchLoop turns the bucket's changes into presence, and takes away
// names another instance took over.
func (b *Bus) watchLoop() {
	defer b.wg.Done()
	for {
		select {
		case e, ok := <-b.watcher.Updates():
			if !ok {
				return
			}
			if e == nil {
				continue // the initial values are all in
			}
			name, ok := decode(e.Key())
			if !ok {
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				b.hub.Gone(name)
				continue
			}
			b.hub.Seen(name)
			if owner, _ := parseValue(e.Value()); owner != b.id {
				if b.forgetBefore(name, e.Revision()) {
					b.hub.Revoke(name, signaling.StatusSessionResumed)
				}
			}
		case <-b.stop:
			return
		}
	}
}
