package conformance

import (
	"strconv"
	"strings"
)

// closingCases are Autobahn's section 7 (close codes and reasons), masking
// (RFC 6455 5.3) and section 9 (size limits).
func closingCases(add func(id, desc string, run func(c *conn))) {
	// 7: closing.
	add("7.1.1", "a message, then close 1000, in one write: answered, then the echo", func(c *conn) {
		c.write(c.text(probeMsg), c.closeFrame(1000, ""))
		c.expectProbeReply()
		c.expectCloseEcho(1000)
	})
	add("7.1.2", "a login, then close, in one write: the reply is not lost", func(c *conn) {
		name := uniqueName()
		c.write(c.text(`{"type":"login","name":"`+name+`"}`), c.closeFrame(1000, ""))
		if m := c.expectMsg("login"); m["success"] != true {
			c.failf("login %v", m)
		}
		c.expectCloseEcho(1000)
	})
	add("7.1.3", "close twice: one echo, nothing more", func(c *conn) {
		c.write(c.closeFrame(1000, ""), c.closeFrame(1000, ""))
		c.expectCloseEcho(1000)
	})
	add("7.1.4", "close, then a ping: no pong after the echo", func(c *conn) {
		c.write(c.closeFrame(1000, ""), c.frame(fin|opPing, []byte("late")))
		c.expectCloseEcho(1000)
	})
	add("7.1.5", "close, then a message: not answered", func(c *conn) {
		c.write(c.closeFrame(1000, ""), c.text(probeMsg))
		c.expectCloseEcho(1000)
	})
	add("7.1.6", "close in 1-byte writes", func(c *conn) {
		c.writeChopped(1, c.closeFrame(1000, "bye"))
		c.expectCloseEcho(1000)
	})
	add("7.3.1", "close without payload: echoed without a status (or 1000)", func(c *conn) {
		c.write(c.closeFrame(-1, ""))
		c.expectCloseEcho(-1, 1000)
	})
	add("7.3.2", "close with a 1-byte payload: protocol error", func(c *conn) {
		c.write(c.frame(fin|opClose, []byte{0x03}))
		c.expectFail(1002)
	})
	add("7.3.3", "close 1000 without a reason", func(c *conn) {
		c.write(c.closeFrame(1000, ""))
		c.expectCloseEcho(1000)
	})
	add("7.3.4", "close 1000 with a reason", func(c *conn) {
		c.write(c.closeFrame(1000, "Hello World!"))
		c.expectCloseEcho(1000)
	})
	add("7.3.5", "close 1000 with a 123-byte reason (the longest)", func(c *conn) {
		c.write(c.closeFrame(1000, strings.Repeat("*", 123)))
		c.expectCloseEcho(1000)
	})
	add("7.3.6", "close 1000 with a 124-byte reason: protocol error", func(c *conn) {
		c.write(c.closeFrame(1000, strings.Repeat("*", 124)))
		c.expectFail(1002)
	})
	add("7.5.1", "close reason that is not UTF-8: fails with 1007 or 1002, not echoed", func(c *conn) {
		c.write(c.closeFrame(1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"))
		c.expectFail(1007, 1002)
	})
	for i, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999} {
		add("7.7."+strconv.Itoa(i+1), "close with the valid code "+strconv.Itoa(code)+": echoed", func(c *conn) {
			c.write(c.closeFrame(code, "bye"))
			c.expectCloseEcho(code, 1000)
		})
	}
	for i, code := range []int{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		add("7.9."+strconv.Itoa(i+1), "close with the invalid code "+strconv.Itoa(code)+": protocol error", func(c *conn) {
			c.write(c.closeFrame(code, ""))
			c.expectFail(1002)
		})
	}

	// Masking (RFC 6455 5.3).
	add("m.1", "unmasked text frame: protocol error", func(c *conn) {
		c.write(append([]byte{fin | opText, byte(len(probeMsg))}, probeMsg...))
		c.expectFail(1002)
	})
	add("m.2", "unmasked ping after a message: answered, then protocol error", func(c *conn) {
		c.write(c.text(probeMsg), []byte{fin | opPing, 0})
		c.expectProbeReply()
		c.expectFail(1002)
	})
	add("m.3", "an all-zero mask key is a mask key", func(c *conn) {
		c.write(maskedFrame(fin|opText, []byte(probeMsg), 0))
		c.expectProbeReply()
	})

	// 9: size limits (the read limit is 64 KiB, docs/protocol.md).
	add("9.1.1", "a header announcing 65537 bytes: 1009 before the payload", func(c *conn) {
		f := c.text(sized(65537))
		c.write(f[:14+100]) // the header, the mask key and a little payload
		c.expectFail(1009)
	})
	add("9.1.2", "a 64-bit length of 2^62: 1009", func(c *conn) {
		c.write([]byte{fin | opText, 0x80 | 127, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4})
		c.expectFail(1009)
	})
	add("9.1.3", "a 64-bit length with the top bit set: protocol error", func(c *conn) {
		c.write([]byte{fin | opText, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4})
		c.expectFail(1002)
	})
	add("9.1.4", "fragments whose sum passes the limit: 1009 at the header that passes it", func(c *conn) {
		c.write(c.frame(opText, []byte(`{"type":"`+strings.Repeat("a", 40000))))
		f := c.frame(fin|opCont, []byte(strings.Repeat("a", 30000)+`"}`))
		c.write(f[:8+10])
		c.expectFail(1009)
	})
	add("9.1.5", "fragments of exactly 65536 bytes in all: accepted", func(c *conn) {
		msg := sized(65536)
		c.write(c.frame(opText, []byte(msg[:40000])), c.frame(fin|opCont, []byte(msg[40000:])))
		c.expectProbeReply()
	})
	add("9.1.6", "a 65537-byte message after a valid one, in one write: answered, then 1009", func(c *conn) {
		c.write(c.text(probeMsg), c.text(sized(65537)))
		c.expectProbeReply()
		c.expectFail(1009)
	})
}
