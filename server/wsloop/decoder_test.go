package wsloop

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// emitFunc adapts a function to frameSink.
type emitFunc func(opcode byte, payload []byte) error

func (f emitFunc) frame(opcode byte, payload []byte) error { return f(opcode, payload) }

// decoded is what a decoder emitted, for comparison.
type decoded struct {
	op      byte
	payload string
}

// decodeAll feeds stream to a fresh decoder in chunks of the given sizes
// (the rest in one piece) and returns what it emitted and its error.
func decodeAll(stream []byte, limit int64, chunks ...int) ([]decoded, error) {
	d := decoder{limit: limit}
	var got []decoded
	emit := emitFunc(func(op byte, p []byte) error {
		got = append(got, decoded{op, string(p)})
		return nil
	})
	data := append([]byte(nil), stream...)
	for _, n := range chunks {
		n = min(n, len(data))
		if err := d.feed(data[:n], emit); err != nil {
			return got, err
		}
		data = data[n:]
	}
	err := d.feed(data, emit)
	if err == nil && len(d.partial) > 0 {
		err = fmt.Errorf("%d bytes left undecoded", len(d.partial))
	}
	return got, err
}

func TestDecoderSplitsAnywhere(t *testing.T) {
	t.Parallel()
	offer := bytes.Repeat([]byte("v=0 o=- 1 2 IN IP4 127.0.0.1 "), 40)
	var stream []byte
	stream = append(stream, clientFrame(true, opText, []byte(`{"type":"login","name":"alice"}`), 0x01020304)...)
	stream = append(stream, clientFrame(false, opText, offer[:500], 0x0A0B0C0D)...)
	stream = append(stream, clientFrame(true, opPing, []byte("p1"), 0x11111111)...) // between fragments
	stream = append(stream, clientFrame(false, opContinuation, offer[500:900], 0x22222222)...)
	stream = append(stream, clientFrame(true, opContinuation, offer[900:], 0x33333333)...)
	stream = append(stream, clientFrame(true, opPong, nil, 0x44444444)...)
	stream = append(stream, clientFrame(true, opBinary, make([]byte, 70000), 0x55555555)...)
	want := []decoded{
		{opText, `{"type":"login","name":"alice"}`},
		{opPing, "p1"},
		{opText, string(offer)},
		{opPong, ""},
		{opBinary, string(make([]byte, 70000))},
	}
	for split := 0; split <= len(stream); split += 1 + split/50 {
		got, err := decodeAll(stream, 1<<20, split, 3, 1, 700)
		if err != nil {
			t.Fatalf("split at %d: %v", split, err)
		}
		if len(got) != len(want) {
			t.Fatalf("split at %d: %d frames, want %d", split, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("split at %d: frame %d is op %d %.40q, want op %d %.40q", split, i, got[i].op, got[i].payload, want[i].op, want[i].payload)
			}
		}
	}
}

func TestDecoderErrors(t *testing.T) {
	t.Parallel()
	text := func(fin bool, s string) []byte { return clientFrame(fin, opText, []byte(s), 9) }
	cont := func(fin bool, s string) []byte { return clientFrame(fin, opContinuation, []byte(s), 9) }
	cat := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	tests := []struct {
		name   string
		stream []byte
		code   int
		before int // frames emitted before the error
	}{
		{name: "continuation without message", stream: cont(true, "x"), code: closeProtocolError},
		{name: "new message inside a fragmented one", stream: cat(text(false, "a"), text(true, "b")), code: closeProtocolError},
		{name: "message over the limit", stream: cat(text(true, "ok"), text(true, string(make([]byte, 101)))), code: closeTooBig, before: 1},
		{name: "fragments over the limit", stream: cat(text(false, string(make([]byte, 60))), cont(true, string(make([]byte, 60)))), code: closeTooBig},
		// Refused from the header alone: the payload never arrives.
		{name: "text not UTF-8", stream: cat(text(true, "ok"), text(true, "a\xffb")), code: closeInvalidData, before: 1},
		// A code point cut between two fragments is still UTF-8; one cut
		// off at the end is not.
		{name: "fragments not UTF-8", stream: cat(text(false, "\xce"), cont(false, "\xba"), cont(true, "\xce")), code: closeInvalidData},
		{name: "huge header", stream: []byte{0x82, 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4}, code: closeTooBig},
	}
	for _, tt := range tests {
		got, err := decodeAll(tt.stream, 100)
		var ce *CloseError
		if !errors.As(err, &ce) || ce.Code != tt.code {
			t.Errorf("%s: err %v, want close code %d", tt.name, err, tt.code)
		}
		if len(got) != tt.before {
			t.Errorf("%s: %d frames before the error, want %d", tt.name, len(got), tt.before)
		}
	}
}

func TestDecoderIdleHoldsNoBuffer(t *testing.T) {
	t.Parallel()
	d := decoder{limit: 1 << 16}
	f := clientFrame(true, opText, []byte("hello"), 5)
	emit := emitFunc(func(byte, []byte) error { return nil })
	if err := d.feed(append([]byte(nil), f[:4]...), emit); err != nil || d.partial == nil {
		t.Fatalf("after half a frame: err %v, partial %v", err, d.partial)
	}
	if err := d.feed(append([]byte(nil), f[4:]...), emit); err != nil || d.partial != nil || d.msg != nil {
		t.Fatalf("after the whole frame: err %v, partial %v, msg %v", err, d.partial, d.msg)
	}
}

// FuzzDecoder checks that arbitrary input never panics, and that how the
// stream is cut into reads never changes what comes out of it.
func FuzzDecoder(f *testing.F) {
	f.Add(clientFrame(true, opText, []byte(`{"type":"offer"}`), 1), 3)
	f.Add(append(clientFrame(false, opText, []byte("ab"), 2), clientFrame(true, opContinuation, []byte("cd"), 3)...), 5)
	f.Add(clientFrame(true, opClose, []byte{3, 232, 'b'}, 4), 1)
	f.Add([]byte{0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0, 200, 1, 2, 3, 4}, 7)
	f.Fuzz(func(t *testing.T, stream []byte, cut int) {
		whole, werr := decodeAll(stream, 1000)
		if cut < 0 {
			cut = -cut
		}
		chunked, cerr := decodeAll(stream, 1000, cut%(len(stream)+1), 1, 2)
		if (werr == nil) != (cerr == nil) {
			t.Fatalf("whole: %v; chunked: %v", werr, cerr)
		}
		if len(whole) != len(chunked) {
			t.Fatalf("whole gave %d frames, chunked %d", len(whole), len(chunked))
		}
		for i := range whole {
			if whole[i] != chunked[i] {
				t.Fatalf("frame %d differs: %v vs %v", i, whole[i], chunked[i])
			}
			if whole[i].op < opClose && len(whole[i].payload) > 1000 {
				t.Fatalf("frame %d is %d bytes, over the limit", i, len(whole[i].payload))
			}
		}
	})
}

// BenchmarkDecode is the loop's per-message work on input: parse the
// header, unmask, hand over.
func BenchmarkDecode(b *testing.B) {
	offer := append([]byte(`{"type":"offer","name":"bob","offer":{"type":"offer","sdp":"`),
		bytes.Repeat([]byte(`a=candidate:1 1 udp 2122260223 192.0.2.7 49152 typ host\r\n`), 18)...)
	offer = append(offer, `"}}`...)
	for _, bm := range []struct {
		name    string
		payload []byte
	}{
		{"type=offer", offer},
		{"type=candidate", offer[:200]},
	} {
		frame := clientFrame(true, opText, bm.payload, 0x01020304)
		buf := make([]byte, len(frame))
		sink := emitFunc(func(byte, []byte) error { return nil })
		b.Run(bm.name, func(b *testing.B) {
			b.SetBytes(int64(len(bm.payload)))
			d := decoder{limit: 1 << 16}
			for b.Loop() {
				copy(buf, frame) // unmasking is in place
				if err := d.feed(buf, sink); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
