package signaling

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

var envelopeSeeds = []string{
	`{"type":"login","name":"alice","presence":true}`,
	`{"type":"login","name":"小明"}`,
	`{"type":"offer","name":"bob","offer":{"type":"offer","sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}}`,
	`{"type":"candidate","name":"bob","candidate":{"candidate":"candidate:1 1 udp 1 192.0.2.1 9 typ host","sdpMid":"0","sdpMLineIndex":0}}`,
	`{"type":"candidate","name":"bob","candidate":null}`,
	`{"type":"leave","name":"bob","reason":"busy"}`,
	` { "TYPE" : "offer" , "Name":"bob", "offer": [1, -2.5e+3, true, false, null, {"a":{}}, []] } `,
	`{"type":"offer","name":"bob","name":"mallory"}`,
	`{"type":"x","extra":{"deep":[[[[1]]]]},"presence":false}`,
	`{"type":"l\u006fgin","name":"a"}`, `{"\u0074ype":"login"}`, `{"type":5}`, `{"type":null}`,
	`{"type":"login","name":"a","token":"q3J0c2Vzc2lvbnRva2VuMQ"}`, `{"token":5}`, `{"Token":"\u00e9"}`,
	`{"presence":"yes"}`, `{"preſence":true}`, `{"type":"a"}x`, `{"type":"a",}`, `{,}`, `{}`, `[]`,
	`{"offer":01}`, `{"offer":1.}`, `{"offer":-}`, `{"offer":"\x01"}`, `{"offer":"\q"}`, `{"offer":tru}`,
	`{"offer":{"a" 1}}`, `{"offer":{"a":1,}}`, `{"offer":[1,]}`, `{"offer":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`,
}

// FuzzParseEnvelope checks the fast parser against encoding/json: whenever
// the fast path accepts a message, encoding/json must accept it too and
// decode exactly the same fields.
func FuzzParseEnvelope(f *testing.F) {
	for _, s := range envelopeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !utf8.Valid(data) {
			return
		}
		var fast, std inbound
		ok := parseEnvelope(data, &fast)
		err := json.Unmarshal(data, &std)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("fast path accepted %q, encoding/json says %v", data, err)
		}
		if fast.Type != std.Type || fast.Name != std.Name || fast.Reason != std.Reason || fast.Presence != std.Presence ||
			!sameRaw(fast.Offer, std.Offer) || !sameRaw(fast.Answer, std.Answer) || !sameRaw(fast.Candidate, std.Candidate) {
			t.Fatalf("%q:\nfast %+v\nstd  %+v", data, fast, std)
		}
	})
}

func sameRaw(a, b json.RawMessage) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

// TestParseEnvelopeTakesTheCommonCases checks that the messages real
// clients send do not fall back to encoding/json.
func TestParseEnvelopeTakesTheCommonCases(t *testing.T) {
	t.Parallel()
	for _, s := range envelopeSeeds[:9] {
		var m inbound
		if !parseEnvelope([]byte(s), &m) {
			t.Errorf("fast path declined %s", s)
		}
	}
	for _, s := range []string{`{"type":"l\u006fgin"}`, `{"type":null}`, `{"preſence":true}`, `{"type":"a"}x`, `[]`} {
		var m inbound
		if parseEnvelope([]byte(s), &m) {
			t.Errorf("fast path accepted %s, which encoding/json must decide", s)
		}
	}
	var m inbound
	parseEnvelope([]byte(benchOffer), &m)
	if m.Type != "offer" || m.Name != "bob" || !json.Valid(m.Offer) || len(m.Offer) < 1000 {
		t.Errorf("offer decoded as %+v", m)
	}
}

// BenchmarkParse compares the envelope parsers on a ~1.1 KB offer.
func BenchmarkParse(b *testing.B) {
	data := []byte(benchOffer)
	b.Run("parser=fast", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var m inbound
			if !parseEnvelope(data, &m) {
				b.Fatal("declined")
			}
		}
	})
	b.Run("parser=encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var m inbound
			if err := json.Unmarshal(data, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
