package natsbus

import (
	"bytes"
	"testing"
)

// FuzzParseRelay: whatever arrives on a user subject is split without a
// panic, and what Relay builds comes back whole.
func FuzzParseRelay(f *testing.F) {
	f.Add("offer", "小明", []byte(`{"type":"offer","offer":{},"name":"小明"}`), []byte{0, 6})
	f.Add("leave", "", []byte{}, []byte{3, 200, 'x'})
	f.Fuzz(func(t *testing.T, typ, from string, frame, raw []byte) {
		parseRelay(raw)
		decode(string(raw))
		parseValue(raw)
		if len(from) > 255 {
			return
		}
		data := append([]byte{typeCode(typ), byte(len(from))}, from...)
		data = append(data, frame...)
		gtyp, gfrom, gframe, ok := parseRelay(data)
		if !ok || gfrom != from || !bytes.Equal(gframe, frame) || gtyp != typeCodes[typeCode(typ)] {
			t.Fatalf("round trip of %q %q %q: %q %q %q %v", typ, from, frame, gtyp, gfrom, gframe, ok)
		}
	})
}
