package signaling

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// loginPresence dials and logs in asking for the online list, and returns
// the first (full) presence message.
func loginPresence(t *testing.T, hub *Hub, name string) (*client, map[string]any) {
	t.Helper()
	c := dial(t, hub)
	c.name = name
	c.send(map[string]any{"type": "login", "name": name, "presence": true})
	if m := c.expect("login"); m["success"] != true {
		t.Fatalf("login: %v", m)
	}
	m := c.expect("presence")
	if m["full"] != true {
		t.Fatalf("first presence is not full: %v", m)
	}
	return c, m
}

func users(m map[string]any) []any {
	u, _ := m["users"].([]any)
	return u
}

func TestPresenceListAndCoalescedChanges(t *testing.T) {
	t.Parallel()
	// The fake clock makes the wait for a presence flush exact.
	synctest.Test(t, func(t *testing.T) {
		hub, _ := startHub(t, Config{Presence: true, PresenceInterval: 50 * time.Millisecond})
		login(t, hub, "bob") // no presence asked: gets none
		time.Sleep(150 * time.Millisecond)
		synctest.Wait() // the flush has run

		alice, first := loginPresence(t, hub, "alice")
		if got := users(first); !reflect.DeepEqual(got, []any{"bob"}) || first["online"] != 1.0 {
			t.Fatalf("first list %v, want [bob] (as of the last flush)", first)
		}
		if m := alice.expect("presence"); !reflect.DeepEqual(m["joined"], []any{"alice"}) || m["online"] != 2.0 {
			t.Fatalf("got %v, want alice joined", m)
		}

		// Logins and logouts settle into a consistent view.
		view := map[any]bool{"bob": true, "alice": true}
		carol := login(t, hub, "carol")
		login(t, hub, "dave")
		flash := login(t, hub, "flash")
		flash.conn.CloseNow()
		carol.conn.CloseNow()
		deadline := time.Now().Add(5 * time.Second)
		for !reflect.DeepEqual(view, map[any]bool{"bob": true, "alice": true, "dave": true}) {
			if time.Now().After(deadline) {
				t.Fatalf("view never settled: %v", view)
			}
			m := alice.expect("presence")
			joined, _ := m["joined"].([]any) // a diff may carry only departures
			for _, n := range joined {
				view[n] = true
			}
			if left, ok := m["left"].([]any); ok {
				for _, n := range left {
					delete(view, n)
				}
			}
			if int(m["online"].(float64)) != len(view) {
				t.Fatalf("online %v, but the diffs give %v", m["online"], view)
			}
		}
		alice.sync()
	})
}

// Presence changes within one interval go out as one message, whatever
// the login rate. synctest's fake clock makes "within one interval" exact.
func TestPresenceCoalescesWithinInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := NewHub(Config{Presence: true, PresenceInterval: time.Second, ICE: StaticICE{}}, testLog())
		watcher := queueClient(h)
		h.handle(watcher, []byte(`{"type":"login","name":"watcher","presence":true}`))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		watcher.drain()

		others := make([]*Client, 50)
		for i := range others {
			others[i] = queueClient(h)
			h.handle(others[i], []byte(fmt.Sprintf(`{"type":"login","name":"u%02d"}`, i)))
		}
		h.remove(others[0]) // came and went: never shown
		h.remove(others[1])
		synctest.Wait()
		if got := watcher.drain(); len(got) != 0 {
			t.Fatalf("sent before the interval: %s", got)
		}
		time.Sleep(time.Second)
		synctest.Wait() // let the timer's goroutine finish the flush
		got := watcher.drain()
		if len(got) != 1 {
			t.Fatalf("got %d messages, want 1 coalesced diff", len(got))
		}
		var m presenceMessage
		if err := json.Unmarshal(got[0], &m); err != nil {
			t.Fatal(err)
		}
		if m.Online != 49 || len(m.Joined) != 48 || len(m.Left) != 0 || slices.Contains(m.Joined, "u00") {
			t.Fatalf("diff %s", got[0])
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if got := watcher.drain(); len(got) != 0 {
			t.Fatalf("sent without a change: %s", got)
		}
		h.presence.stop()
	})
}

func TestPresenceTruncatedAboveMax(t *testing.T) {
	t.Parallel()
	// The fake clock makes the wait for a presence flush exact.
	synctest.Test(t, func(t *testing.T) {
		hub, _ := startHub(t, Config{Presence: true, PresenceInterval: 20 * time.Millisecond, PresenceMax: 2})
		a := login(t, hub, "a")
		login(t, hub, "b")
		c := login(t, hub, "c")
		time.Sleep(100 * time.Millisecond)
		synctest.Wait() // the flush has run
		watcher, first := loginPresence(t, hub, "watcher")
		if first["truncated"] != true || first["online"] != 3.0 || len(users(first)) != 0 {
			t.Fatalf("got %v, want truncated count-only list", first)
		}
		if m := watcher.expect("presence"); m["truncated"] != true || m["online"] != 4.0 {
			t.Fatalf("got %v, want truncated diff", m)
		}
		// Falling back under the cap sends the whole list again.
		a.conn.CloseNow()
		c.conn.CloseNow()
		for {
			m := watcher.expect("presence")
			if m["full"] == true {
				if !reflect.DeepEqual(users(m), []any{"b", "watcher"}) || m["truncated"] != nil {
					t.Fatalf("got %v, want the full list [b watcher]", m)
				}
				break
			}
			if m["truncated"] != true {
				t.Fatalf("got %v above the cap, want count only", m)
			}
		}
	})
}
