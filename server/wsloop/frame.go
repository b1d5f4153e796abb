package wsloop

import (
	"encoding/binary"
	"strconv"
	"unicode/utf8"
)

// WebSocket opcodes (RFC 6455, section 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// Close codes sent by the server (RFC 6455, section 7.4.1).
const (
	closeProtocolError = 1002
	closeNoStatus      = 1005 // received only: the close frame had no code
	closeInvalidData   = 1007 // a text message that is not UTF-8
	closeTooBig        = 1009
)

// maxControlPayload is the largest payload of a control frame.
const maxControlPayload = 125

// CloseError is how a connection ended with a close frame: the code and
// reason the peer sent, or the code the server sent for a protocol error.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return "websocket closed with status " + strconv.Itoa(e.Code) + " " + e.Reason
}

// header is a parsed client-to-server frame header.
type header struct {
	fin    bool
	opcode byte
	length int64
	mask   uint32 // little-endian, as maskBytes wants it
	size   int    // bytes of header, the mask key included
}

// parseHeader parses the frame header at the start of b. ok is false when
// b does not hold the whole header yet. Clients must mask every frame and
// cannot use extensions (none are negotiated), so unmasked frames and
// reserved bits are protocol errors, as are fragmented or long control
// frames and unknown opcodes.
func parseHeader(b []byte) (h header, ok bool, err *CloseError) {
	if len(b) < 2 {
		return h, false, nil
	}
	b0, b1 := b[0], b[1]
	if b0&0x70 != 0 {
		return h, false, protocolError("reserved bits set")
	}
	h.fin = b0&0x80 != 0
	h.opcode = b0 & 0x0F
	switch h.opcode {
	case opContinuation, opText, opBinary, opClose, opPing, opPong:
	default:
		return h, false, protocolError("unknown opcode " + strconv.Itoa(int(h.opcode)))
	}
	if b1&0x80 == 0 {
		return h, false, protocolError("unmasked frame from client")
	}
	h.length = int64(b1 & 0x7F)
	h.size = 2
	switch h.length {
	case 126:
		if len(b) < 4 {
			return h, false, nil
		}
		h.length = int64(binary.BigEndian.Uint16(b[2:]))
		h.size = 4
	case 127:
		if len(b) < 10 {
			return h, false, nil
		}
		n := binary.BigEndian.Uint64(b[2:])
		if n>>63 != 0 {
			return h, false, protocolError("frame length has its top bit set")
		}
		h.length = int64(n)
		h.size = 10
	}
	if h.opcode >= opClose {
		if !h.fin {
			return h, false, protocolError("fragmented control frame")
		}
		if h.length > maxControlPayload {
			return h, false, protocolError("control frame longer than 125 bytes")
		}
	}
	if len(b) < h.size+4 {
		return h, false, nil
	}
	h.mask = binary.LittleEndian.Uint32(b[h.size:])
	h.size += 4
	return h, true, nil
}

// maskBytes XORs b with the mask key, eight bytes at a time.
func maskBytes(b []byte, key uint32) {
	k := uint64(key) | uint64(key)<<32
	for len(b) >= 8 {
		v := binary.LittleEndian.Uint64(b)
		binary.LittleEndian.PutUint64(b, v^k)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= byte(key >> (8 * (i & 3)))
	}
}

// appendFrame appends one unfragmented, unmasked server frame.
func appendFrame(dst []byte, opcode byte, payload []byte) []byte {
	dst = append(dst, 0x80|opcode)
	switch n := len(payload); {
	case n <= 125:
		dst = append(dst, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}

// closePayload is the payload of a close frame with code and reason, the
// reason cut to fit in a control frame.
func closePayload(code int, reason string) []byte {
	if code == closeNoStatus {
		return nil
	}
	if len(reason) > maxControlPayload-2 {
		reason = reason[:maxControlPayload-2]
	}
	return append([]byte{byte(code >> 8), byte(code)}, reason...)
}

// parseClose reads a received close frame's payload.
func parseClose(p []byte) (*CloseError, *CloseError) {
	switch {
	case len(p) == 0:
		return &CloseError{Code: closeNoStatus}, nil
	case len(p) == 1:
		return nil, protocolError("close frame with a 1-byte payload")
	}
	code := int(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return nil, protocolError("invalid close code " + strconv.Itoa(code))
	}
	if !utf8.Valid(p[2:]) {
		return nil, protocolError("close reason is not UTF-8")
	}
	return &CloseError{Code: code, Reason: string(p[2:])}, nil
}

// validCloseCode reports whether a peer may send code (RFC 6455, 7.4).
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1011:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

func protocolError(reason string) *CloseError {
	return &CloseError{Code: closeProtocolError, Reason: reason}
}
