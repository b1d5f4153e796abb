package signaling

import (
	"testing"
	"time"
)

// TestPresenceIntervalStretchesWithSubscribers checks the fan-out budget:
// presence messages per second stay bounded however many subscribe.
func TestPresenceIntervalStretchesWithSubscribers(t *testing.T) {
	t.Parallel()
	h := NewHub(Config{ICE: StaticICE{}, Presence: true, PresenceInterval: time.Second}, testLog())
	defer h.presence.stop()
	tests := []struct {
		subs int
		want time.Duration
	}{
		{0, time.Second},
		{presenceFanoutBudget, time.Second},
		{10 * presenceFanoutBudget, 10 * time.Second},
		{50 * presenceFanoutBudget, 50 * time.Second},
	}
	for _, tt := range tests {
		h.mu.Lock()
		for len(h.presence.subs) < tt.subs {
			h.presence.subs[queueClient(h)] = struct{}{}
		}
		got := h.presence.interval()
		h.mu.Unlock()
		if got != tt.want {
			t.Errorf("%d subscribers: interval %v, want %v", tt.subs, got, tt.want)
		}
		if rate := float64(tt.subs) / got.Seconds(); rate > presenceFanoutBudget {
			t.Errorf("%d subscribers: %.0f presence messages/s, over the budget", tt.subs, rate)
		}
	}
}
