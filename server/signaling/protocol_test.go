package signaling

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
)

// Tests in this file follow the rows of PROTOCOL.md, over real WebSockets.

func TestHelloCarriesMessageAndICEServers(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t, Config{ICE: StaticICE{URLs: []string{"stun:example.test:3478"}}})
	c := dialRaw(t, hub)
	m := c.expect("hello")
	if m["message"] != helloText {
		t.Errorf("hello message = %v", m["message"])
	}
	want := []any{map[string]any{"urls": []any{"stun:example.test:3478"}}}
	if !reflect.DeepEqual(m["iceServers"], want) {
		t.Errorf("iceServers = %v, want %v", m["iceServers"], want)
	}
}

// A client written for the tutorial server sends only the tutorial's
// fields and reads only the tutorial's fields.
func TestTutorialClientFullCall(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t, Config{})
	a, b := dial(t, hub), dial(t, hub)
	a.sendRaw(`{"type":"login","name":"alice"}`)
	if m := a.expect("login"); m["success"] != true {
		t.Fatalf("login: %v", m)
	}
	b.sendRaw(`{"type":"login","name":"bob"}`)
	if m := b.expect("login"); m["success"] != true {
		t.Fatalf("login: %v", m)
	}

	a.sendRaw(`{"type":"offer","offer":{"type":"offer","sdp":"v=0 a"},"name":"bob"}`)
	m := b.expect("offer")
	if m["name"] != "alice" || !reflect.DeepEqual(m["offer"], map[string]any{"type": "offer", "sdp": "v=0 a"}) {
		t.Fatalf("offer relayed as %v", m)
	}
	b.sendRaw(`{"type":"answer","answer":{"type":"answer","sdp":"v=0 b"},"name":"alice"}`)
	if m := a.expect("answer"); !reflect.DeepEqual(m["answer"], map[string]any{"type": "answer", "sdp": "v=0 b"}) {
		t.Fatalf("answer relayed as %v", m)
	}
	a.sendRaw(`{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0"},"name":"bob"}`)
	if m := b.expect("candidate"); m["candidate"].(map[string]any)["sdpMid"] != "0" {
		t.Fatalf("candidate relayed as %v", m)
	}
	b.sendRaw(`{"type":"candidate","candidate":null,"name":"alice"}`)
	if m := a.expect("candidate"); m["candidate"] != nil {
		t.Fatalf("end-of-candidates relayed as %v", m)
	}
	a.sendRaw(`{"type":"leave","name":"bob"}`)
	if m := b.expect("leave"); m["name"] != "alice" {
		t.Fatalf("leave relayed as %v", m)
	}
	a.sync()
	b.sync()
}

func TestRelayStampsSenderAndDropsUnknownFields(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t, Config{})
	mallory := login(t, hub, "mallory")
	bob := login(t, hub, "bob")

	// Every way a client might try to claim another identity.
	mallory.sendRaw(`{"type":"offer","name":"bob","from":"alice","sender":"alice","user":"alice","offer":{"sdp":"x"},"extra":"leak"}`)
	m := bob.expect("offer")
	if m["name"] != "mallory" {
		t.Fatalf("sender stamped as %v, want mallory", m["name"])
	}
	for _, k := range []string{"from", "sender", "user", "extra"} {
		if _, ok := m[k]; ok {
			t.Errorf("field %q was relayed: %v", k, m)
		}
	}
	// Duplicate keys: the JSON decoder keeps the last "name", which is
	// the target, never the sender.
	mallory.sendRaw(`{"type":"candidate","name":"alice","name":"bob","candidate":{}}`)
	if m := bob.expect("candidate"); m["name"] != "mallory" {
		t.Fatalf("sender stamped as %v", m["name"])
	}
}

func TestPayloadArrivesDeepEqual(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t, Config{})
	a, b := login(t, hub, "a"), login(t, hub, "b")
	payloads := []string{
		`{"type":"offer","sdp":"v=0\r\no=- 4611 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"}`,
		`{"nested":{"list":[1,2.5,-3e10,true,false,null,"小明 😀 \"quoted\" \\ </script>"]},"empty":{}}`,
		`"just a string"`,
		`12345`,
		`[]`,
	}
	for i, p := range payloads {
		a.sendRaw(fmt.Sprintf(`{"type":"offer","name":"b","offer":%s}`, p))
		m := b.expect("offer")
		var want any
		if err := json.Unmarshal([]byte(p), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m["offer"], want) {
			t.Errorf("payload %d: got %#v, want %#v", i, m["offer"], want)
		}
	}
}

func TestUnknownTypeKeepsCompatText(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t, Config{})
	c := dial(t, hub)
	c.sendRaw(`{"type":"dance"}`)
	m := c.expectError(CodeUnknownType)
	if m["message"] != "Command not found: dance" {
		t.Errorf("message = %q", m["message"])
	}
}

func TestInvalidJSONGetsErrorAndConnectionStays(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t, Config{})
	c := dial(t, hub)
	for _, in := range []string{
		`not json`, `{"type":"login"`, `[1,2]`, `null`, `"login"`, `42`, ``,
		`{"type":1}`, `{"type":"login","name":7}`, `{"type":"offer","offer":{]}`,
	} {
		c.sendRaw(in)
		c.expectError(CodeInvalidJSON)
	}
	// Still usable.
	c.send(map[string]any{"type": "login", "name": "survivor"})
	if m := c.expect("login"); m["success"] != true {
		t.Fatalf("login after bad input: %v", m)
	}
}

func TestRelayBeforeLoginRefused(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t, Config{})
	login(t, hub, "bob")
	c := dial(t, hub)
	for _, typ := range []string{"offer", "answer", "candidate", "leave"} {
		c.send(map[string]any{"type": typ, "name": "bob", typ: map[string]any{}})
		c.expectError(CodeNotLoggedIn)
	}
}

func TestTargetNotOnline(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t, Config{})
	a := login(t, hub, "a")
	for _, typ := range []string{"offer", "answer", "candidate", "leave"} {
		a.send(map[string]any{"type": typ, "name": "ghost"})
		if m := a.expectError(CodeUserNotFound); m["name"] != "ghost" {
			t.Errorf("%s: error name = %v, want ghost", typ, m["name"])
		}
	}
	a.send(map[string]any{"type": "offer", "name": "a"})
	a.expectError(CodeInvalidMessage)
}

func TestAnswerAndCandidateNeedACall(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t, Config{})
	a, b, stranger := login(t, hub, "a"), login(t, hub, "b"), login(t, hub, "stranger")
	for _, typ := range []string{"answer", "candidate", "leave"} {
		stranger.send(map[string]any{"type": typ, "name": "b", typ: map[string]any{}})
		if m := stranger.expectError(CodeNotInCall); m["name"] != "b" {
			t.Errorf("error name = %v", m["name"])
		}
	}
	// Once a offers, both directions flow, and crossing offers are the
	// same call.
	a.send(map[string]any{"type": "offer", "name": "b", "offer": 1})
	b.expect("offer")
	b.send(map[string]any{"type": "offer", "name": "a", "offer": 2})
	a.expect("offer")
	b.send(map[string]any{"type": "candidate", "name": "a", "candidate": 3})
	a.expect("candidate")
	a.send(map[string]any{"type": "leave", "name": "b"})
	b.expect("leave")
	// The call is over: no more candidates.
	b.send(map[string]any{"type": "candidate", "name": "a", "candidate": 4})
	b.expectError(CodeNotInCall)
	b.sync()
}

func TestLoginNames(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t, Config{})
	tests := []struct {
		in, want, code string
	}{
		{in: "小明", want: "小明"},
		{in: "  bob  ", want: "bob"},
		{in: "José María", want: "José María"},
		{in: strings.Repeat("名", 32), want: strings.Repeat("名", 32)},
		{in: "<img src=x onerror=alert(1)>", want: "<img src=x onerror=alert(1)>"},
		{in: "", code: CodeInvalidName},
		{in: "   ", code: CodeInvalidName},
		{in: strings.Repeat("x", 33), code: CodeInvalidName},
		{in: "a\nb", code: CodeInvalidName},
		{in: "a\tb", code: CodeInvalidName},
		{in: "nul\x00", code: CodeInvalidName},
		{in: "zero\u200bwidth", code: CodeInvalidName},
		{in: "bidi\u202eevil", code: CodeInvalidName},
	}
	for _, tt := range tests {
		c := dial(t, hub)
		c.send(map[string]any{"type": "login", "name": tt.in})
		m := c.expect("login")
		if tt.code == "" {
			if m["success"] != true || m["name"] != tt.want {
				t.Errorf("login %q: got %v, want success as %q", tt.in, m, tt.want)
			}
		} else if m["success"] != false || m["code"] != tt.code || m["message"] == "" {
			t.Errorf("login %q: got %v, want refusal %q", tt.in, m, tt.code)
		}
	}
}

func TestNameTaken(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t, Config{})
	login(t, hub, "alice")
	c := dial(t, hub)
	c.send(map[string]any{"type": "login", "name": " alice "})
	m := c.expect("login")
	if m["success"] != false || m["code"] != CodeNameTaken || m["message"] == "" {
		t.Fatalf("got %v, want name-taken", m)
	}
	// The refused client may try another name on the same connection.
	c.send(map[string]any{"type": "login", "name": "alice2"})
	if m := c.expect("login"); m["success"] != true {
		t.Fatalf("second try: %v", m)
	}
}

func TestSecondLoginRefused(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t, Config{})
	c := login(t, hub, "first")
	c.send(map[string]any{"type": "login", "name": "second"})
	if m := c.expect("login"); m["success"] != false || m["code"] != CodeAlreadyLoggedIn {
		t.Fatalf("got %v, want already-logged-in", m)
	}
	// The connection holds only its first name: "second" is still free.
	login(t, hub, "second")
}

// countingICE hands out a new credential on every call, like TURN REST.
type countingICE struct{ n atomic.Int64 }

func (c *countingICE) HelloServers() json.RawMessage { return json.RawMessage(`[]`) }
func (c *countingICE) LoginServers(name string) json.RawMessage {
	return mustJSON([]map[string]any{{"urls": []string{"turn:relay.test:3478"}, "username": fmt.Sprintf("%d:%s", c.n.Add(1), name), "credential": "x"}})
}

func TestICERefreshGivesFreshCredentials(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t, Config{ICE: &countingICE{}})
	anon := dial(t, hub)
	anon.send(map[string]any{"type": "ice"})
	anon.expectError(CodeNotLoggedIn)

	c := dial(t, hub)
	c.send(map[string]any{"type": "login", "name": "alice"})
	first := c.expect("login")["iceServers"].([]any)[0].(map[string]any)["username"]
	c.send(map[string]any{"type": "ice"})
	m := c.expect("ice")
	again := m["iceServers"].([]any)[0].(map[string]any)["username"]
	if first != "1:alice" || again != "2:alice" {
		t.Fatalf("usernames %v then %v, want 1:alice then 2:alice", first, again)
	}
}
