package signaling

import "encoding/json"

// The fast envelope parser.
//
// encoding/json decodes a message in two passes (a validity scan, then the
// decode, which scans each RawMessage payload a third time) and was a
// quarter of the server's CPU per relayed message. parseEnvelope does it in
// one validating pass over the bytes, and takes the payloads as slices of
// the input instead of copies.
//
// It only accepts what it understands exactly: keys in plain ASCII without
// escapes, string fields without escapes, presence as true or false,
// nesting up to maxFastDepth. For everything else, including every
// malformed message, it declines and parse falls back to encoding/json,
// so the result and the error are always encoding/json's. A fuzz test
// (FuzzParseEnvelope) checks that the two agree.

// maxFastDepth bounds the nesting the fast path validates; deeper
// payloads go to encoding/json (which allows 10,000 levels).
const maxFastDepth = 64

// Fields of inbound, by lower-case key. encoding/json matches keys
// case-insensitively, so parseEnvelope does too (for ASCII keys).
const (
	fieldNone = iota
	fieldType
	fieldName
	fieldOffer
	fieldAnswer
	fieldCandidate
	fieldReason
	fieldPresence
	fieldToken
)

func lookupField(key []byte) int {
	var low [16]byte
	if len(key) > len(low) {
		return fieldNone
	}
	for i, c := range key {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		low[i] = c
	}
	switch string(low[:len(key)]) {
	case "type":
		return fieldType
	case "name":
		return fieldName
	case "offer":
		return fieldOffer
	case "answer":
		return fieldAnswer
	case "candidate":
		return fieldCandidate
	case "reason":
		return fieldReason
	case "presence":
		return fieldPresence
	case "token":
		return fieldToken
	}
	return fieldNone
}

// parseEnvelope decodes data into m if it can do so exactly as
// encoding/json would, and reports whether it did. The payload fields of m
// alias data: they must not be kept beyond the handling of the message.
// data must be valid UTF-8.
func parseEnvelope(data []byte, m *inbound) bool {
	var out inbound
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		i++
	} else {
		for {
			if i >= len(data) || data[i] != '"' {
				return false
			}
			end, plain := scanString(data, i)
			if end < 0 || !plain || !isASCII(data[i+1:end-1]) {
				return false
			}
			key := data[i+1 : end-1]
			i = skipSpace(data, end)
			if i >= len(data) || data[i] != ':' {
				return false
			}
			i = skipSpace(data, i+1)
			vend := skipValue(data, i)
			if vend < 0 {
				return false
			}
			if !out.set(lookupField(key), data[i:vend]) {
				return false
			}
			i = skipSpace(data, vend)
			if i < len(data) && data[i] == ',' {
				i = skipSpace(data, i+1)
				continue
			}
			if i < len(data) && data[i] == '}' {
				i++
				break
			}
			return false
		}
	}
	if skipSpace(data, i) != len(data) {
		return false
	}
	*m = out
	return true
}

// set stores one validated value; false means "let encoding/json decide"
// (a null, a wrong type, an escape sequence).
func (m *inbound) set(field int, v []byte) bool {
	switch field {
	case fieldType, fieldName, fieldReason, fieldToken:
		if v[0] != '"' {
			return false
		}
		if _, plain := scanString(v, 0); !plain {
			return false
		}
		raw := v[1 : len(v)-1]
		switch field {
		case fieldType:
			m.Type = messageType(raw)
		case fieldName:
			m.Name = string(raw)
		case fieldToken:
			m.Token = string(raw)
		default:
			m.Reason = string(raw)
		}
	case fieldPresence:
		switch string(v) {
		case "true":
			m.Presence = true
		case "false":
			m.Presence = false
		default:
			return false
		}
	case fieldOffer:
		m.Offer = json.RawMessage(v)
	case fieldAnswer:
		m.Answer = json.RawMessage(v)
	case fieldCandidate:
		m.Candidate = json.RawMessage(v)
	}
	return true
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

func skipSpace(d []byte, i int) int {
	for i < len(d) && (d[i] == ' ' || d[i] == '\n' || d[i] == '\r' || d[i] == '\t') {
		i++
	}
	return i
}

// strSpecial marks the bytes that end the plain run of a JSON string.
var strSpecial = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// scanString validates the string starting at d[i] (a quote) and returns
// the index after its closing quote, or -1. plain reports that it has no
// escape sequences, so its bytes are its value.
func scanString(d []byte, i int) (end int, plain bool) {
	plain = true
	i++
	for i < len(d) {
		c := d[i]
		if !strSpecial[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			return i + 1, plain
		case c < 0x20:
			return -1, false
		}
		// A backslash escape.
		plain = false
		if i+1 >= len(d) {
			return -1, false
		}
		switch d[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		case 'u':
			if i+6 > len(d) || !isHex(d[i+2]) || !isHex(d[i+3]) || !isHex(d[i+4]) || !isHex(d[i+5]) {
				return -1, false
			}
			i += 6
		default:
			return -1, false
		}
	}
	return -1, false
}

// messageType returns the known message types without allocating a
// string for each message.
func messageType(raw []byte) string {
	switch string(raw) { // compiled without a conversion
	case "offer":
		return "offer"
	case "answer":
		return "answer"
	case "candidate":
		return "candidate"
	case "login":
		return "login"
	case "leave":
		return "leave"
	}
	return string(raw)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// skipNumber validates a JSON number at d[i] and returns its end, or -1.
func skipNumber(d []byte, i int) int {
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && isDigit(d[i]):
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	default:
		return -1
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || !isDigit(d[i]) {
			return -1
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || !isDigit(d[i]) {
			return -1
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	return i
}

func skipLiteral(d []byte, i int, lit string) int {
	if len(d)-i < len(lit) || string(d[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// skipValue validates the JSON value starting at d[i] and returns the
// index just after it, or -1 if it is invalid or nested deeper than
// maxFastDepth. It is iterative, so a payload cannot grow the stack.
func skipValue(d []byte, i int) int {
	var open [maxFastDepth]byte // '{' or '[' of each open container
	depth := 0
	for {
		// A value starts at i.
		if i >= len(d) {
			return -1
		}
		switch c := d[i]; {
		case c == '{' || c == '[':
			closer := byte('}')
			if c == '[' {
				closer = ']'
			}
			i = skipSpace(d, i+1)
			if i < len(d) && d[i] == closer {
				i++
				break // an empty container is a complete value
			}
			if depth == maxFastDepth {
				return -1
			}
			open[depth] = c
			depth++
			if c == '{' {
				if i = skipKey(d, i); i < 0 {
					return -1
				}
			}
			continue // its first element
		case c == '"':
			i, _ = scanString(d, i)
		case c == 't':
			i = skipLiteral(d, i, "true")
		case c == 'f':
			i = skipLiteral(d, i, "false")
		case c == 'n':
			i = skipLiteral(d, i, "null")
		case c == '-' || isDigit(c):
			i = skipNumber(d, i)
		default:
			return -1
		}
		if i < 0 {
			return -1
		}
		// A value ended: close containers until one needs another element.
		for {
			if depth == 0 {
				return i
			}
			i = skipSpace(d, i)
			if i >= len(d) {
				return -1
			}
			top := open[depth-1]
			if d[i] == ',' {
				i = skipSpace(d, i+1)
				if top == '{' {
					if i = skipKey(d, i); i < 0 {
						return -1
					}
				}
				break
			}
			if top == '{' && d[i] == '}' || top == '[' && d[i] == ']' {
				i++
				depth--
				continue
			}
			return -1
		}
	}
}

// skipKey validates `"key" :` at d[i] and returns where the value starts.
func skipKey(d []byte, i int) int {
	if i >= len(d) || d[i] != '"' {
		return -1
	}
	i, _ = scanString(d, i)
	if i < 0 {
		return -1
	}
	i = skipSpace(d, i)
	if i >= len(d) || d[i] != ':' {
		return -1
	}
	return skipSpace(d, i+1)
}
