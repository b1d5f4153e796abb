package signaling

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Error codes sent in the "code" field of "error" messages and failed
// "login" replies. They are part of the protocol: never rename one.
const (
	CodeUnknownType     = "unknown-type"
	CodeInvalidJSON     = "invalid-json"
	CodeNotLoggedIn     = "not-logged-in"
	CodeUserNotFound    = "user-not-found"
	CodeNotInCall       = "not-in-call"
	CodeNameTaken       = "name-taken"
	CodeInvalidName     = "invalid-name"
	CodeAlreadyLoggedIn = "already-logged-in"
	CodeRateLimited     = "rate-limited"
	CodeInvalidMessage  = "invalid-message"
)

// Leave reasons the server itself sends. Clients may send others
// (hangup, declined, busy, timeout); the hub relays any short reason.
const (
	ReasonOffline = "offline"
)

// maxReasonLen bounds the free-text "reason" of a leave message.
const maxReasonLen = 32

// inbound is the envelope of a client message. Payloads stay raw JSON so
// they are relayed byte for byte without a decode/encode round trip.
type inbound struct {
	Type      string          `json:"type"`
	Name      string          `json:"name"`
	Offer     json.RawMessage `json:"offer"`
	Answer    json.RawMessage `json:"answer"`
	Candidate json.RawMessage `json:"candidate"`
	Reason    string          `json:"reason"`
	Presence  bool            `json:"presence"`
	Token     string          `json:"token"`
}

// errInvalidUTF8 is reported for frames that are not valid UTF-8. Relaying
// such bytes inside a text frame would make the receiving browser fail the
// whole WebSocket, so one sender could disconnect another.
var errInvalidUTF8 = errors.New("message is not valid UTF-8")

// parse decodes one client frame. Any error means the frame is not a JSON
// object of the expected shape.
func parse(data []byte, m *inbound) error {
	if !utf8.Valid(data) {
		return errInvalidUTF8
	}
	if parseEnvelope(data, m) { // scan.go: one pass, same result
		return nil
	}
	if err := json.Unmarshal(data, m); err != nil {
		return fmt.Errorf("decode message: %w", err)
	}
	return nil
}

// payload returns the raw payload field that belongs to a relay type.
func (m *inbound) payload() json.RawMessage {
	switch m.Type {
	case "offer":
		return m.Offer
	case "answer":
		return m.Answer
	case "candidate":
		return m.Candidate
	}
	return nil
}

// appendString appends s as a JSON string literal.
func appendString(b []byte, s string) []byte {
	// strconv quoting is not JSON quoting (\x escapes), so use the JSON
	// encoder, which also escapes <, > and & for safe embedding.
	enc, _ := json.Marshal(s) // a string always marshals
	return append(b, enc...)
}

// appendRelay appends {"type":T,"T":payload,"name":from} to b. fromJSON is the
// sender's name already encoded as a JSON string.
func appendRelay(b []byte, typ string, payload json.RawMessage, fromJSON []byte) []byte {
	if len(payload) == 0 {
		payload = json.RawMessage("null")
	}
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","`...)
	b = append(b, typ...)
	b = append(b, `":`...)
	b = append(b, payload...)
	b = append(b, `,"name":`...)
	b = append(b, fromJSON...)
	return append(b, '}')
}

// encodeLeave builds {"type":"leave","name":from,"reason":reason}.
func encodeLeave(fromJSON []byte, reason string) []byte {
	b := make([]byte, 0, len(fromJSON)+len(reason)+40)
	b = append(b, `{"type":"leave","name":`...)
	b = append(b, fromJSON...)
	if reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, reason)
	}
	return append(b, '}')
}

// encodeError builds an error reply. name is the target the error is
// about, if any.
func encodeError(code, message, name string) []byte {
	b := make([]byte, 0, 64+len(message)+len(name))
	b = append(b, `{"type":"error","code":"`...)
	b = append(b, code...)
	b = append(b, `","message":`...)
	b = appendString(b, message)
	if name != "" {
		b = append(b, `,"name":`...)
		b = appendString(b, name)
	}
	return append(b, '}')
}

// loginReply is the reply to a login; ICE servers ride on success.
type loginReply struct {
	Type       string          `json:"type"`
	Success    bool            `json:"success"`
	Name       string          `json:"name,omitempty"`
	Code       string          `json:"code,omitempty"`
	Message    string          `json:"message,omitempty"`
	Token      string          `json:"token,omitempty"`   // session.go; never logged
	Resumed    bool            `json:"resumed,omitempty"` // the login presented a valid token
	IceServers json.RawMessage `json:"iceServers,omitempty"`
}

// helloMessage greets every new connection.
type helloMessage struct {
	Type       string          `json:"type"`
	Message    string          `json:"message"`
	IceServers json.RawMessage `json:"iceServers,omitempty"`
	TestRelay  bool            `json:"testRelay,omitempty"`
	HTTPSPort  int             `json:"httpsPort,omitempty"`
}

// iceMessage answers an "ice" request with fresh iceServers.
type iceMessage struct {
	Type       string          `json:"type"`
	IceServers json.RawMessage `json:"iceServers"`
}

// presenceMessage carries the online list (full) or a coalesced change.
type presenceMessage struct {
	Type      string   `json:"type"`
	Full      bool     `json:"full,omitempty"`
	Online    int      `json:"online"`
	Users     []string `json:"users,omitempty"`
	Joined    []string `json:"joined,omitempty"`
	Left      []string `json:"left,omitempty"`
	Truncated bool     `json:"truncated,omitempty"`
}

// mustJSON encodes values whose types cannot fail to marshal.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("signaling: encode " + strconv.Quote(fmt.Sprintf("%T", v)) + ": " + err.Error())
	}
	return b
}
