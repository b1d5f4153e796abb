package wsloop

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// clientFrame is one masked client-to-server frame.
func clientFrame(fin bool, opcode byte, payload []byte, key uint32) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		out = append(out, 0x80|byte(n))
	case n <= 0xFFFF:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	default:
		out = append(out, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	out = binary.LittleEndian.AppendUint32(out, key)
	masked := append([]byte(nil), payload...)
	for i := range masked {
		masked[i] ^= byte(key >> (8 * (i % 4)))
	}
	return append(out, masked...)
}

func TestParseHeader(t *testing.T) {
	t.Parallel()
	long := clientFrame(true, opBinary, make([]byte, 70000), 1)
	tests := []struct {
		name     string
		in       []byte
		ok       bool
		errCode  int
		wantLen  int64
		wantSize int
	}{
		{name: "empty", in: nil},
		{name: "one byte", in: []byte{0x81}},
		{name: "no mask key yet", in: []byte{0x81, 0x85, 1, 2}},
		{name: "small text", in: clientFrame(true, opText, []byte("hello"), 7), ok: true, wantLen: 5, wantSize: 6},
		{name: "16-bit length", in: clientFrame(true, opText, make([]byte, 200), 7), ok: true, wantLen: 200, wantSize: 8},
		{name: "16-bit length cut", in: []byte{0x81, 0x80 | 126, 0}},
		{name: "64-bit length", in: long, ok: true, wantLen: 70000, wantSize: 14},
		{name: "64-bit length cut", in: long[:9]},
		{name: "top bit of length", in: []byte{0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}, errCode: closeProtocolError},
		{name: "reserved bit", in: []byte{0x81 | 0x40, 0x80}, errCode: closeProtocolError},
		{name: "unmasked", in: []byte{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'}, errCode: closeProtocolError},
		{name: "unknown opcode", in: []byte{0x83, 0x80}, errCode: closeProtocolError},
		{name: "fragmented ping", in: []byte{0x09, 0x80}, errCode: closeProtocolError},
		{name: "long ping", in: []byte{0x89, 0x80 | 126, 0, 126}, errCode: closeProtocolError},
		{name: "125-byte ping", in: clientFrame(true, opPing, make([]byte, 125), 3), ok: true, wantLen: 125, wantSize: 6},
	}
	for _, tt := range tests {
		h, ok, err := parseHeader(tt.in)
		switch {
		case tt.errCode != 0:
			if err == nil || err.Code != tt.errCode {
				t.Errorf("%s: err %v, want close code %d", tt.name, err, tt.errCode)
			}
		case err != nil:
			t.Errorf("%s: unexpected error %v", tt.name, err)
		case ok != tt.ok:
			t.Errorf("%s: ok %v, want %v", tt.name, ok, tt.ok)
		case ok && (h.length != tt.wantLen || h.size != tt.wantSize):
			t.Errorf("%s: length %d size %d, want %d %d", tt.name, h.length, h.size, tt.wantLen, tt.wantSize)
		}
	}
}

func TestAppendFrameLengths(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 125, 126, 127, 0xFFFF, 0x10000, 100000} {
		payload := bytes.Repeat([]byte{'x'}, n)
		f := appendFrame(nil, opText, payload)
		if f[0] != 0x81 {
			t.Fatalf("n=%d: first byte %#x", n, f[0])
		}
		// Parse it back as if masked with a zero key.
		masked := append([]byte{f[0]}, f[1]|0x80)
		masked = append(masked, f[2:len(f)-n]...)
		masked = append(masked, 0, 0, 0, 0)
		masked = append(masked, payload...)
		h, ok, err := parseHeader(masked)
		if err != nil || !ok || h.length != int64(n) || !bytes.Equal(masked[h.size:], payload) {
			t.Fatalf("n=%d: header %+v ok %v err %v", n, h, ok, err)
		}
	}
}

func TestMaskBytesMatchesBytewise(t *testing.T) {
	t.Parallel()
	key := uint32(0xA1B2C3D4)
	for n := range 40 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 7)
		}
		want := append([]byte(nil), b...)
		for i := range want {
			want[i] ^= byte(key >> (8 * (i % 4)))
		}
		maskBytes(b, key)
		if !bytes.Equal(b, want) {
			t.Fatalf("n=%d: got %x want %x", n, b, want)
		}
	}
}

func TestParseClose(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       []byte
		wantCode int
		wantErr  bool
	}{
		{name: "no status", in: nil, wantCode: closeNoStatus},
		{name: "one byte", in: []byte{3}, wantErr: true},
		{name: "normal with reason", in: append([]byte{0x03, 0xE8}, "bye"...), wantCode: 1000},
		{name: "application code", in: []byte{0x0F, 0xA0}, wantCode: 4000},
		{name: "1005 is not sendable", in: []byte{0x03, 0xED}, wantErr: true},
		{name: "999", in: []byte{0x03, 0xE7}, wantErr: true},
		{name: "reason not UTF-8", in: []byte{0x03, 0xE8, 0xFF}, wantErr: true},
	}
	for _, tt := range tests {
		ce, err := parseClose(tt.in)
		if tt.wantErr {
			if err == nil || err.Code != closeProtocolError {
				t.Errorf("%s: got %v, %v; want a protocol error", tt.name, ce, err)
			}
			continue
		}
		if err != nil || ce.Code != tt.wantCode {
			t.Errorf("%s: got %v, %v; want code %d", tt.name, ce, err, tt.wantCode)
		}
	}
	if p := closePayload(1001, string(bytes.Repeat([]byte{'r'}, 200))); len(p) != maxControlPayload {
		t.Errorf("close payload with a long reason is %d bytes, want %d", len(p), maxControlPayload)
	}
}
