package wsloop

import (
	"strconv"
	"unicode/utf8"
)

// decoder turns a client's byte stream into messages and control frames.
// It is fed whatever one read returned; a frame that has not fully arrived
// is kept in partial until the rest comes, so an idle connection holds no
// buffer at all. Complete frames are unmasked in place and handed to emit
// as slices of the input: no copy unless a frame spans two reads or a
// message is fragmented.
type decoder struct {
	limit   int64  // largest message payload
	partial []byte // start of an incomplete frame, nil when none
	msg     []byte // fragments of a message in progress
	msgOp   byte   // opText or opBinary while a fragmented message is in progress
}

// frameSink receives one complete message (opText or opBinary) or control
// frame; payload is valid only during the call. A non-nil error stops
// decoding and is returned by feed. (An interface rather than a func: a
// method value would be allocated on every read.)
type frameSink interface {
	frame(opcode byte, payload []byte) error
}

// feed decodes data, which the decoder may modify.
func (d *decoder) feed(data []byte, emit frameSink) error {
	if len(d.partial) > 0 {
		d.partial = append(d.partial, data...)
		data = d.partial
	}
	n, err := d.decode(data, emit)
	rest := data[n:]
	switch {
	case err != nil || len(rest) == 0:
		d.partial = nil
	case len(d.partial) > 0:
		// data is d.partial: move the rest to its front.
		d.partial = d.partial[:copy(d.partial, rest)]
	default:
		d.partial = append(make([]byte, 0, len(rest)+512), rest...)
	}
	return err
}

// decode handles the complete frames at the start of data and returns how
// many bytes they took.
func (d *decoder) decode(data []byte, emit frameSink) (int, error) {
	used := 0
	for {
		h, ok, perr := parseHeader(data[used:])
		if perr != nil {
			return used, perr
		}
		if !ok {
			return used, nil
		}
		if h.opcode < opClose {
			// Refuse an oversized message as soon as its header says so,
			// before buffering any of it.
			if int64(len(d.msg))+h.length > d.limit {
				return used, &CloseError{Code: closeTooBig, Reason: "message larger than " + strconv.FormatInt(d.limit, 10) + " bytes"}
			}
		}
		end := int64(used) + int64(h.size) + h.length
		if end > int64(len(data)) {
			return used, nil
		}
		payload := data[used+h.size : end]
		used = int(end)
		maskBytes(payload, h.mask)
		if err := d.frame(h, payload, emit); err != nil {
			return used, err
		}
	}
}

// frame handles one complete frame.
func (d *decoder) frame(h header, payload []byte, emit frameSink) error {
	switch h.opcode {
	case opText, opBinary:
		if d.msgOp != 0 {
			return protocolError("new message before the previous one ended")
		}
		if h.fin {
			return emitMessage(emit, h.opcode, payload)
		}
		d.msgOp = h.opcode
		d.msg = append(d.msg[:0], payload...)
		return nil
	case opContinuation:
		if d.msgOp == 0 {
			return protocolError("continuation frame without a message")
		}
		d.msg = append(d.msg, payload...)
		if !h.fin {
			return nil
		}
		op, msg := d.msgOp, d.msg
		d.msgOp, d.msg = 0, nil
		return emitMessage(emit, op, msg)
	default:
		return emit.frame(h.opcode, payload)
	}
}

// emitMessage hands over a complete message. A text message must be
// UTF-8 (RFC 6455 8.1): one that is not fails the connection with 1007.
func emitMessage(emit frameSink, op byte, msg []byte) error {
	if op == opText && !utf8.Valid(msg) {
		return &CloseError{Code: closeInvalidData, Reason: "text message is not UTF-8"}
	}
	return emit.frame(op, msg)
}
