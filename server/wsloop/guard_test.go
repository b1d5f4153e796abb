package wsloop

import (
	"bytes"
	"errors"
	"testing"
)

// guardAll runs a Guard over stream cut into reads of size cut (0: one
// read), and returns how many bytes it let through and its error.
func guardAll(stream []byte, limit int64, cut int) (int, *CloseError) {
	g := NewGuard(limit)
	if cut <= 0 {
		cut = len(stream) + 1
	}
	passed := 0
	for len(stream) > 0 {
		n := min(cut, len(stream))
		k, err := g.Check(stream[:n])
		passed += k
		if err != nil {
			return passed, err
		}
		stream = stream[n:]
	}
	return passed, nil
}

func TestGuard(t *testing.T) {
	t.Parallel()
	text := func(fin bool, s string) []byte { return clientFrame(fin, opText, []byte(s), 9) }
	cont := func(fin bool, s string) []byte { return clientFrame(fin, opContinuation, []byte(s), 9) }
	closeFrame := func(p ...byte) []byte { return clientFrame(true, opClose, p, 0x01020304) }
	ok := bytes.Join([][]byte{text(true, "hello"), text(false, "a"), clientFrame(true, opPing, []byte("p"), 3), cont(true, "b")}, nil)
	huge := []byte{0x81, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4} // 65536 bytes announced
	// The library is never given the byte that completes a frame at
	// fault: the last byte of its header, or of a close frame.
	tests := []struct {
		name   string
		stream []byte
		code   int // 0: no error
		passed int // bytes let through
	}{
		{name: "valid", stream: ok, passed: len(ok)},
		{name: "valid close", stream: append(closeFrame(3, 232, 'o', 'k'), 0xFF), passed: 11},
		{name: "oversized header", stream: append(append(ok, huge...), 'x'), code: closeTooBig, passed: len(ok) + len(huge) - 1},
		{name: "fragments over the limit", stream: append(text(false, string(make([]byte, 60))), cont(true, string(make([]byte, 60)))...), code: closeTooBig, passed: 66 + 5},
		{name: "close reason not UTF-8", stream: closeFrame(3, 232, 0xFF, 0xFE), code: closeProtocolError, passed: 9},
		{name: "invalid close code", stream: closeFrame(3, 237), code: closeProtocolError, passed: 7},
		{name: "reserved bits", stream: append(text(true, "a"), 0xC1, 0x80), code: closeProtocolError, passed: 8},
		{name: "continuation without message", stream: cont(true, "x"), code: closeProtocolError, passed: 5},
	}
	for _, tt := range tests {
		for _, cut := range []int{0, 1, 3} {
			passed, err := guardAll(tt.stream, 100, cut)
			code := 0
			if err != nil {
				code = err.Code
			}
			if code != tt.code || passed != tt.passed {
				t.Errorf("%s, reads of %d: passed %d bytes, code %d; want %d, %d", tt.name, cut, passed, code, tt.passed, tt.code)
			}
		}
	}
}

// stopAtClose is what a Conn does with decoded frames: a close frame's
// payload is checked, and decoding stops after it.
type stopAtClose struct{}

var errStop = errors.New("close frame")

func (stopAtClose) frame(op byte, p []byte) error {
	if op != opClose {
		return nil
	}
	if _, err := parseClose(p); err != nil {
		return err
	}
	return errStop
}

// FuzzGuard checks that the Guard refuses exactly what the loop's decoder
// refuses (UTF-8 of text aside, which the Guard leaves to its caller),
// with the same status, wherever the stream is cut into reads.
func FuzzGuard(f *testing.F) {
	f.Add(clientFrame(true, opText, []byte(`{"type":"offer"}`), 1), 3)
	f.Add(append(clientFrame(false, opText, []byte("ab"), 2), clientFrame(true, opContinuation, []byte("cd"), 3)...), 5)
	f.Add(clientFrame(true, opClose, []byte{3, 232, 0xFF}, 4), 1)
	f.Add([]byte{0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0, 200, 1, 2, 3, 4}, 7)
	f.Fuzz(func(t *testing.T, stream []byte, cut int) {
		d := decoder{limit: 100}
		derr := d.feed(append([]byte(nil), stream...), stopAtClose{})
		var dce *CloseError
		errors.As(derr, &dce)
		if dce != nil && dce.Code == closeInvalidData {
			return
		}
		passed, gerr := guardAll(stream, 100, cut%17)
		switch {
		case dce == nil && gerr != nil && len(d.partial) == 0:
			// The guard may refuse a frame from its header, where the
			// decoder waits for the whole frame.
			t.Fatalf("guard refused (%v) what the decoder took", gerr)
		case dce != nil && (gerr == nil || gerr.Code != dce.Code):
			t.Fatalf("decoder: %v; guard: %v", dce, gerr)
		case gerr == nil && passed != len(stream):
			t.Fatalf("guard passed %d of %d bytes without an error", passed, len(stream))
		}
	})
}
