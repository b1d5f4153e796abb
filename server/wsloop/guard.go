package wsloop

import "strconv"

// Guard checks, from outside, the byte stream a client sends to a
// connection that another WebSocket library serves (coder/websocket, for
// TLS), for what the loop's decoder refuses and that library lets
// through, or catches too late: a message whose frame header announces
// more than the limit is refused from the header (1009), before its
// payload arrives; a close frame with an invalid code or a reason that is
// not UTF-8 fails the connection (1002) instead of being echoed; and the
// other protocol errors of parseHeader (1002).
//
// The reading side calls Check on every chunk it reads, before passing
// the bytes on, and passes on only what Check allows: the library never
// sees the frame that is at fault, and the caller closes the connection
// with the CloseError's status itself. Payloads are only counted, never
// copied, except for control frames (125 bytes at most).
type Guard struct {
	limit  int64
	hdr    [14]byte
	nh     int    // header bytes in hdr
	op     byte   // opcode of the frame whose payload is arriving
	mask   uint32 // its mask key
	left   int64  // its payload bytes still to come
	inBody bool   // the header is complete and the payload arriving
	fin    bool
	msg    bool  // a fragmented data message is in progress
	msgLen int64 // its payload so far, the current frame's included
	ctrl   []byte
	closed bool // a valid close frame came: the rest is not looked at
	err    *CloseError
}

// NewGuard returns a Guard for a connection whose messages may have up
// to limit bytes.
func NewGuard(limit int64) *Guard { return &Guard{limit: limit} }

// Err returns the error Check found, or nil. (A method of its own so
// that a caller can return a nil error interface.)
func (g *Guard) Err() error {
	if g.err == nil {
		return nil
	}
	return g.err
}

// Check scans b, the next bytes of the stream, and returns how many of
// them may be passed on: all of them and nil, or fewer and the error the
// next byte makes certain, which every later call returns at once.
func (g *Guard) Check(b []byte) (int, *CloseError) {
	if g.err != nil {
		return 0, g.err
	}
	for i := 0; i < len(b) && !g.closed; {
		if !g.inBody {
			g.hdr[g.nh] = b[i]
			g.nh++
			h, ok, perr := parseHeader(g.hdr[:g.nh])
			if perr == nil && ok {
				perr = g.start(h)
			}
			if perr != nil {
				g.err = perr
				return i, perr
			}
			i++
			if ok && g.left == 0 {
				if err := g.end(); err != nil {
					return i - 1, err
				}
			}
			continue
		}
		n := int(min(g.left, int64(len(b)-i)))
		if g.op >= opClose {
			g.ctrl = append(g.ctrl, b[i:i+n]...)
		}
		g.left -= int64(n)
		i += n
		if g.left == 0 {
			if err := g.end(); err != nil {
				return i - 1, err
			}
		}
	}
	return len(b), nil
}

// start begins a frame whose header is complete.
func (g *Guard) start(h header) *CloseError {
	g.nh, g.inBody = 0, true
	g.op, g.mask, g.left, g.fin = h.opcode, h.mask, h.length, h.fin
	g.ctrl = g.ctrl[:0]
	if h.opcode >= opClose {
		return nil
	}
	// In the decoder's order: the size first, from the header alone.
	total := h.length
	if g.msg {
		total += g.msgLen
	}
	if total > g.limit {
		return &CloseError{Code: closeTooBig, Reason: "message larger than " + strconv.FormatInt(g.limit, 10) + " bytes"}
	}
	switch {
	case h.opcode != opContinuation && g.msg:
		return protocolError("new message before the previous one ended")
	case h.opcode == opContinuation && !g.msg:
		return protocolError("continuation frame without a message")
	}
	g.msg, g.msgLen = true, total
	return nil
}

// end finishes the current frame, and checks a close frame's payload.
func (g *Guard) end() *CloseError {
	g.inBody = false
	switch {
	case g.op < opClose:
		if g.fin {
			g.msg = false
		}
	case g.op == opClose:
		maskBytes(g.ctrl, g.mask)
		if _, err := parseClose(g.ctrl); err != nil {
			g.err = err
			return err
		}
		g.closed = true
	}
	return nil
}
