package signaling

import (
	"encoding/json"
	"testing"
)

// FuzzHandle feeds arbitrary frames from a logged-in client "mallory" into
// the dispatcher, with "bob" online and in a call with her. Whatever the
// input, the hub must not panic, every reply must be valid JSON, and
// anything bob receives must carry mallory as the sender.
func FuzzHandle(f *testing.F) {
	for _, seed := range []string{
		`{"type":"login","name":"x"}`,
		`{"type":"login","name":"bob","token":"AAAAAAAAAAAAAAAAAAAAAA"}`,
		`{"type":"login","name":"x","token":"\u0041","presence":true}`,
		`{"type":"offer","name":"bob","offer":{"type":"offer","sdp":"v=0"}}`,
		`{"type":"answer","name":"bob","answer":{"sdp":"v=0"},"from":"alice"}`,
		`{"type":"candidate","name":"bob","candidate":null}`,
		`{"type":"leave","name":"bob","reason":"busy"}`,
		`{"type":"leave","name":"bob","reason":"<b>"}`,
		`{"type":"offer","name":"bob","name":"mallory"}`,
		`{"type":"offer","name":"ghost"}`,
		`{"type":"nope"}`, `{}`, `[]`, `null`, `"x"`, ``, `{`, "\xff",
		`{"type":"offer","name":"bob","offer":"\u0000\ud800"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h := NewHub(Config{ICE: StaticICE{}, SendQueueBytes: 1 << 30}, testLog())
		mallory, bob := queueClient(h), queueClient(h)
		h.handle(mallory, []byte(`{"type":"login","name":"mallory"}`))
		h.handle(bob, []byte(`{"type":"login","name":"bob"}`))
		h.handle(mallory, []byte(`{"type":"offer","name":"bob"}`))
		mallory.drain()
		bob.drain()

		h.handle(mallory, data)

		for _, msg := range mallory.drain() {
			if !json.Valid(msg) {
				t.Fatalf("reply to %q is not JSON: %q", data, msg)
			}
		}
		for _, msg := range bob.drain() {
			var m map[string]any
			if err := json.Unmarshal(msg, &m); err != nil {
				t.Fatalf("relay of %q is not JSON: %q", data, msg)
			}
			if m["name"] != "mallory" {
				t.Fatalf("relay of %q names sender %v", data, m["name"])
			}
		}
		h.remove(mallory)
		h.remove(bob)
	})
}
