package natsbus

import (
	"strings"

	"github.com/nats-io/nats.go"
)

// Subjects.
const (
	userPrefix  = "p2pchat.u."
	replyPrefix = "p2pchat.r."
	instPrefix  = "p2pchat.i."
)

// typeCodes are relayed message types as one byte.
var typeCodes = [...]string{"offer", "answer", "candidate", "leave"}

func typeCode(typ string) byte {
	for i, t := range typeCodes {
		if t == typ {
			return byte(i)
		}
	}
	return 0
}

// Relay implements signaling.Cluster. The data is the type, the sender's
// name and the frame; the reply subject carries what a bounce needs.
func (b *Bus) Relay(from, to, typ string, frame []byte) {
	data := make([]byte, 0, 2+len(from)+len(frame))
	data = append(data, typeCode(typ), byte(len(from)))
	data = append(data, from...)
	data = append(data, frame...)
	efrom, eto := encode(from), encode(to)
	msg := &nats.Msg{
		Subject: userPrefix + eto,
		Reply:   replyPrefix + b.id + "." + typ + "." + efrom + "." + eto,
		Data:    data,
	}
	if err := b.nc.PublishMsg(msg); err != nil {
		b.Stats.RelayErrors.Add(1)
		b.hub.Bounce(from, to, typ)
		return
	}
	b.Stats.RelaysOut.Add(1)
}

// parseRelay splits what Relay published: the type, the sender's name
// and the frame.
func parseRelay(d []byte) (typ, from string, frame []byte, ok bool) {
	if len(d) < 2 || int(d[0]) >= len(typeCodes) || len(d) < 2+int(d[1]) {
		return "", "", nil, false
	}
	return typeCodes[d[0]], string(d[2 : 2+int(d[1])]), d[2+int(d[1]):], true
}

// deliverLoop hands what the subscriptions receive to the hub, in order.
func (b *Bus) deliverLoop() {
	defer b.wg.Done()
	for {
		select {
		case m := <-b.inbox:
			b.deliver(m)
		case <-b.stop:
			return
		}
	}
}

func (b *Bus) deliver(m *nats.Msg) {
	if strings.HasPrefix(m.Subject, userPrefix) {
		typ, from, frame, ok := parseRelay(m.Data)
		if !ok {
			return
		}
		to, ok := decode(m.Subject[len(userPrefix):])
		if !ok {
			return
		}
		if b.hub.Deliver(from, to, typ, frame) {
			b.Stats.RelaysIn.Add(1)
		}
		return
	}
	// A reply: only a 503 (no responders) ever comes, for a target
	// nobody holds.
	if m.Header.Get("Status") != "503" {
		return
	}
	parts := strings.Split(strings.TrimPrefix(m.Subject, replyPrefix+b.id+"."), ".")
	if len(parts) != 3 {
		return
	}
	from, ok1 := decode(parts[1])
	to, ok2 := decode(parts[2])
	if ok1 && ok2 {
		b.Stats.Bounces.Add(1)
		b.hub.Bounce(from, to, parts[0])
	}
}
