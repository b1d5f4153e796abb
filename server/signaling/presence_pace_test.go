package signaling

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPresenceLargeFanoutIsPacedAndOrdered checks that a fan-out to many
// subscribers goes out in chunks, not at once, and that every subscriber
// still gets the diffs in order.
func TestPresenceLargeFanoutIsPacedAndOrdered(t *testing.T) {
	t.Parallel()
	h := NewHub(Config{ICE: StaticICE{}, Presence: true, PresenceInterval: time.Hour, SendQueueBytes: 1 << 30}, testLog())
	defer h.presence.stop()
	const n = 3*fanoutChunk + 7
	subs := make([]*Client, n)
	for i := range subs {
		subs[i] = queueClient(h)
		h.add(subs[i])
		h.handle(subs[i], []byte(`{"type":"login","name":"s`+strconv.Itoa(i)+`","presence":true}`))
		subs[i].drain() // login reply and the (empty) published list
	}
	h.presence.flush() // D1: the n joins
	h.mu.Lock()
	h.presence.joined("late")
	h.mu.Unlock()
	h.presence.flush() // D2: "late" joined

	queued := func(c *Client) int {
		q := c.conn.(*queueConn)
		q.mu.Lock()
		defer q.mu.Unlock()
		return len(q.queue)
	}
	got := 0
	for _, c := range subs {
		if queued(c) > 0 {
			got++
		}
	}
	if got == n {
		t.Fatalf("all %d subscribers had their message at once; want chunks of %d", n, fanoutChunk)
	}

	deadline := time.Now().Add(10 * time.Second)
	for _, c := range subs {
		for queued(c) < 2 {
			if time.Now().After(deadline) {
				t.Fatalf("a subscriber has %d of 2 presence messages after 10 s", queued(c))
			}
			time.Sleep(10 * time.Millisecond)
		}
		q := c.drain()
		if len(q) != 2 || strings.Contains(string(q[0]), `"late"`) || !strings.Contains(string(q[1]), `"late"`) {
			t.Fatalf("subscriber got %q, want D1 then D2", q)
		}
	}
}
