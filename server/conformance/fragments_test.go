package conformance

import (
	"strconv"
)

// fragmentCases are Autobahn's section 5: fragmented messages, with
// control frames between the fragments.
func fragmentCases(add func(id, desc string, run func(c *conn))) {
	// 5: fragmentation.
	add("5.1", "fragmented ping: protocol error", func(c *conn) {
		c.write(c.frame(opPing, []byte("frag")), c.frame(fin|opCont, []byte("ment")))
		c.expectFail(1002)
	})
	add("5.2", "fragmented pong: protocol error", func(c *conn) {
		c.write(c.frame(opPong, []byte("frag")), c.frame(fin|opCont, []byte("ment")))
		c.expectFail(1002)
	})
	frag := func(c *conn, msg string, parts int, between func() []byte) []byte {
		var b []byte
		step := (len(msg) + parts - 1) / parts
		for i := 0; i < len(msg); i += step {
			var b0 byte = opCont
			if i == 0 {
				b0 = opText
			}
			if i+step >= len(msg) {
				b0 |= fin
			}
			b = append(b, c.frame(b0, []byte(msg[i:min(i+step, len(msg))]))...)
			if between != nil && i+step < len(msg) {
				b = append(b, between()...)
			}
		}
		return b
	}
	add("5.3", "text message in 2 fragments", func(c *conn) {
		c.write(frag(c, probeMsg, 2, nil))
		c.expectProbeReply()
	})
	add("5.4", "text message in 2 fragments, 1-byte writes", func(c *conn) {
		c.writeChopped(1, frag(c, probeMsg, 2, nil))
		c.expectProbeReply()
	})
	add("5.5", "text message in 2 fragments, one write each", func(c *conn) {
		b := frag(c, probeMsg, 2, nil)
		first := 6 + (len(probeMsg)+1)/2
		c.write(b[:first])
		c.write(b[first:])
		c.expectProbeReply()
	})
	add("5.6", "text message in 2 fragments with a ping between: pong, then the answer", func(c *conn) {
		c.write(frag(c, probeMsg, 2, func() []byte { return c.frame(fin|opPing, []byte("between")) }))
		c.expectProbeReply()
		c.expectPong([]byte("between"))
	})
	add("5.7", "as 5.6, in 1-byte writes", func(c *conn) {
		c.writeChopped(1, frag(c, probeMsg, 2, func() []byte { return c.frame(fin|opPing, []byte("between")) }))
		c.expectProbeReply()
		c.expectPong([]byte("between"))
	})
	add("5.8", "text message in 2 fragments with an unsolicited pong between", func(c *conn) {
		c.write(frag(c, probeMsg, 2, func() []byte { return c.frame(fin|opPong, []byte("between")) }))
		c.expectProbeReply()
	})
	add("5.9", "continuation frame (FIN) without a message: protocol error", func(c *conn) {
		c.write(c.frame(fin|opCont, []byte("fragment")), c.text(probeMsg))
		c.expectFail(1002)
	})
	add("5.10", "continuation frame (no FIN) without a message: protocol error", func(c *conn) {
		c.write(c.frame(opCont, []byte("fragment")), c.text(probeMsg))
		c.expectFail(1002)
	})
	add("5.11", "as 5.9, in 1-byte writes", func(c *conn) {
		c.writeChopped(1, c.frame(fin|opCont, []byte("fragment")), c.text(probeMsg))
		c.expectFail(1002)
	})
	add("5.12", "continuation frames without a message after a message: answered, then protocol error", func(c *conn) {
		c.write(c.text(probeMsg), c.frame(opCont, []byte("a")), c.frame(fin|opCont, []byte("b")))
		c.expectProbeReply()
		c.expectFail(1002)
	})
	add("5.15", "a new text message inside a fragmented one: protocol error", func(c *conn) {
		c.write(c.frame(opText, []byte(`{"type":`)), c.text(probeMsg))
		c.expectFail(1002)
	})
	add("5.16", "a fragmented message whose last fragment is a text frame: protocol error", func(c *conn) {
		c.write(c.frame(opText, []byte(`{"ty`)), c.frame(opCont, []byte(`pe":`)), c.frame(fin|opText, []byte(`"x"}`)))
		c.expectFail(1002)
	})
	add("5.17", "a binary message starting inside a fragmented text message: protocol error", func(c *conn) {
		c.write(c.frame(opText, []byte(`{"type":`)), c.frame(fin|opBinary, []byte(probeMsg)))
		c.expectFail(1002)
	})
	add("5.19", "text message in 5 fragments with pings between: pongs, then the answer", func(c *conn) {
		n := 0
		c.write(frag(c, probeMsg, 5, func() []byte { n++; return c.frame(fin|opPing, []byte("ping-"+strconv.Itoa(n))) }))
		c.expectProbeReply()
		c.expectPong([]byte("ping-" + strconv.Itoa(n)))
	})
	add("5.20", "as 5.19, in 1-byte writes", func(c *conn) {
		n := 0
		c.writeChopped(1, frag(c, probeMsg, 5, func() []byte { n++; return c.frame(fin|opPing, []byte("ping-"+strconv.Itoa(n))) }))
		c.expectProbeReply()
		c.expectPong([]byte("ping-" + strconv.Itoa(n)))
	})
	add("5.21", "a close frame between fragments: echoed, the message dropped", func(c *conn) {
		c.write(c.frame(opText, []byte(`{"type":`)), c.closeFrame(1000, ""), c.frame(fin|opCont, []byte(`"x"}`)))
		c.expectCloseEcho(1000)
	})
}
