package conformance

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
)

// tcase is one conformance case. id follows Autobahn's numbering where
// the case is one of its fuzzingclient cases; h.* are handshake cases.
type tcase struct {
	id, desc string
	run      func(c *conn)
}

// opened wraps a case that starts on an open WebSocket.
func opened(run func(c *conn)) func(c *conn) {
	return func(c *conn) { c.open(); run(c) }
}

func cases() []tcase {
	var cs []tcase
	add := func(id, desc string, run func(c *conn)) {
		cs = append(cs, tcase{id: id, desc: desc, run: opened(run)})
	}

	// 1: framing, the three length encodings, chopping, coalescing.
	add("1.1.1", "empty text message: answered (invalid JSON), stream in sync", func(c *conn) {
		c.write(c.text(""))
		if m := c.expectMsg("error"); m["code"] != "invalid-json" {
			c.failf("empty message answered %v", m)
		}
		c.probe()
	})
	for i, n := range []int{125, 126, 127, 128, 65535, 65536} {
		add("1.1."+strconv.Itoa(i+2), "text message of "+strconv.Itoa(n)+" bytes", func(c *conn) {
			c.write(c.text(sized(n)))
			c.expectProbeReply()
			c.probe()
		})
	}
	add("1.1.8", "text message of 65536 bytes in writes of 997 bytes", func(c *conn) {
		c.writeChopped(997, c.text(sized(65536)))
		c.expectProbeReply()
	})
	for i, n := range []int{125, 126, 65535, 65536} {
		add("1.2."+strconv.Itoa(i+1), "binary message of "+strconv.Itoa(n)+" bytes", func(c *conn) {
			c.write(c.frame(fin|opBinary, []byte(sized(n))))
			c.expectProbeReply()
			c.probe()
		})
	}
	add("1.3.1", "a message in 1-byte writes", func(c *conn) {
		c.writeChopped(1, c.text(probeMsg))
		c.expectProbeReply()
	})
	add("1.3.2", "a 126-byte (16-bit length) message in 1-byte writes", func(c *conn) {
		c.writeChopped(1, c.text(sized(126)))
		c.expectProbeReply()
	})
	add("1.3.3", "100 messages coalesced in one write, answered in order", func(c *conn) {
		var b []byte
		for i := range 100 {
			b = append(b, c.text(`{"type":"p`+strconv.Itoa(i)+`"}`)...)
		}
		c.write(b)
		for i := range 100 {
			if m := c.expectMsg("error"); m["message"] != "Command not found: p"+strconv.Itoa(i) {
				c.failf("reply %d: %v", i, m)
			}
		}
	})
	add("1.3.4", "a login and a probe in one write", func(c *conn) {
		name := uniqueName()
		c.write(c.text(`{"type":"login","name":"`+name+`"}`), c.text(probeMsg))
		if m := c.expectMsg("login"); m["success"] != true {
			c.failf("login %v", m)
		}
		c.expectProbeReply()
	})

	// 2: pings and pongs.
	pingCase := func(id, desc string, payload []byte, chop int) {
		add(id, desc, func(c *conn) {
			c.writeChopped(chop, c.frame(fin|opPing, payload))
			c.probe()
			c.expectPong(payload)
		})
	}
	pingCase("2.1", "ping without payload", nil, 1<<20)
	pingCase("2.2", "ping with a text payload", []byte("Hello, world!"), 1<<20)
	pingCase("2.3", "ping with a binary payload", []byte{0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff}, 1<<20)
	pingCase("2.4", "ping with a 125-byte payload", bytes.Repeat([]byte{0xfe}, 125), 1<<20)
	add("2.5", "ping with a 126-byte payload: protocol error", func(c *conn) {
		c.write(c.frame(fin|opPing, bytes.Repeat([]byte{0xfe}, 126)))
		c.expectFail(1002)
	})
	pingCase("2.6", "ping with a 125-byte payload in 1-byte writes", bytes.Repeat([]byte{0xfe}, 125), 1)
	add("2.7", "unsolicited empty pong: ignored", func(c *conn) {
		c.write(c.frame(fin|opPong, nil))
		c.probe()
	})
	add("2.8", "unsolicited pong with payload: ignored", func(c *conn) {
		c.write(c.frame(fin|opPong, []byte("unsolicited pong payload")))
		c.probe()
	})
	add("2.9", "unsolicited pong, then a ping: answered", func(c *conn) {
		c.write(c.frame(fin|opPong, []byte("unsolicited")), c.frame(fin|opPing, []byte("solicited")))
		c.probe()
		c.expectPong([]byte("solicited"))
	})
	tenPings := func(c *conn, chop int, before []byte) {
		var b []byte
		b = append(b, before...)
		for i := range 10 {
			b = append(b, c.frame(fin|opPing, []byte("payload-"+strconv.Itoa(i)))...)
		}
		c.writeChopped(chop, b)
		if len(before) > 0 {
			c.expectProbeReply()
		}
		c.probe()
		// RFC 6455 5.5.3: pongs may skip pings, only for the most recent.
		c.expectPong([]byte("payload-9"))
	}
	add("2.10", "10 pings in one write: the last is answered", func(c *conn) { tenPings(c, 1<<20, nil) })
	add("2.11", "10 pings in 1-byte writes: the last is answered", func(c *conn) { tenPings(c, 1, nil) })
	add("2.12", "a message and 10 pings in one write: the last ping is answered", func(c *conn) {
		tenPings(c, 1<<20, c.text(probeMsg))
	})

	// 3: reserved bits (no extension is negotiated).
	rsv := []struct {
		id, desc string
		frame    func(c *conn) []byte
	}{
		{"3.1", "RSV1 on a text frame", func(c *conn) []byte { return c.frame(fin|rsv1|opText, []byte(probeMsg)) }},
		{"3.2", "RSV2 on a text frame", func(c *conn) []byte { return c.frame(fin|rsv2|opText, []byte(probeMsg)) }},
		{"3.3", "RSV1+RSV2 on a text frame", func(c *conn) []byte { return c.frame(fin|rsv1|rsv2|opText, []byte(probeMsg)) }},
		{"3.4", "RSV3 on a text frame", func(c *conn) []byte { return c.frame(fin|rsv3|opText, []byte(probeMsg)) }},
		{"3.5", "RSV1+RSV3 on a binary frame", func(c *conn) []byte { return c.frame(fin|rsv1|rsv3|opBinary, []byte(probeMsg)) }},
		{"3.6", "RSV2+RSV3 on a ping", func(c *conn) []byte { return c.frame(fin|rsv2|rsv3|opPing, []byte("p")) }},
		{"3.7", "all RSV bits on a close frame", func(c *conn) []byte { return c.frame(fin|rsv1|rsv2|rsv3|opClose, []byte{3, 232}) }},
	}
	for _, r := range rsv {
		add(r.id, r.desc+", after a message: answered, then protocol error", func(c *conn) {
			c.write(c.text(probeMsg), r.frame(c), c.text(probeMsg))
			c.expectProbeReply()
			c.expectFail(1002)
		})
	}
	add("3.8", "RSV1 on a text frame in 1-byte writes", func(c *conn) {
		c.writeChopped(1, c.frame(fin|rsv1|opText, []byte(probeMsg)))
		c.expectFail(1002)
	})

	// 4: reserved opcodes.
	for i, op := range []byte{3, 4, 5, 6, 7, 11, 12, 13, 14, 15} {
		id := "4.1." + strconv.Itoa(i+1)
		if op > 10 {
			id = "4.2." + strconv.Itoa(i-4)
		}
		add(id, "reserved opcode "+strconv.Itoa(int(op))+", after a message: answered, then protocol error", func(c *conn) {
			c.write(c.text(probeMsg), c.frame(fin|op, []byte("reserved")), c.frame(fin|opPing, []byte("late")))
			c.expectProbeReply()
			c.expectFail(1002)
		})
	}

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

	// 6: UTF-8.
	add("6.1.1", "empty fragments of a text message", func(c *conn) {
		c.write(c.frame(opText, nil), c.frame(opCont, []byte(probeMsg)), c.frame(fin|opCont, nil))
		c.expectProbeReply()
	})
	valid := []string{
		"Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!!",
		"\u03ba\u1f79\u03c3\u03bc\u03b5",    // κόσμε, RFC 3629's example
		"\u0080\u07ff\u0800\uffff",          // boundaries of 2- and 3-byte sequences
		"\U00010000\U0010ffff",              // boundaries of 4-byte sequences
		"\ud7ff\ue000\ufffd",                // around the surrogates
		"\xef\xbb\xbfa byte order mark",     // U+FEFF is a valid character
		"\u2028\u2029\u00a0 line separator", // more valid characters
	}
	for i, v := range valid {
		msg := `{"type":"` + v + `"}`
		add("6.2."+strconv.Itoa(i+1), "valid UTF-8 "+strconv.Quote(v)+" in one frame", func(c *conn) {
			c.write(c.text(msg))
			if m := c.expectMsg("error"); m["message"] != "Command not found: "+v {
				c.failf("answered %v", m)
			}
		})
		add("6.3."+strconv.Itoa(i+1), "valid UTF-8 "+strconv.Quote(v)+", one byte per fragment", func(c *conn) {
			var b []byte
			for j := range len(msg) {
				var b0 byte = opCont
				if j == 0 {
					b0 = opText
				}
				if j == len(msg)-1 {
					b0 |= fin
				}
				b = append(b, c.frame(b0, []byte{msg[j]})...)
			}
			c.write(b)
			if m := c.expectMsg("error"); m["message"] != "Command not found: "+v {
				c.failf("answered %v", m)
			}
		})
	}
	invalid := []struct{ name, bytes string }{
		{"a lone continuation byte", "\x80"},
		{"a truncated 2-byte sequence", "\xce"},
		{"a truncated 3-byte sequence", "\xe2\x82"},
		{"a truncated 4-byte sequence", "\xf0\x9f\x98"},
		{"an overlong slash", "\xc0\xaf"},
		{"an overlong NUL in 3 bytes", "\xe0\x80\x80"},
		{"a UTF-16 surrogate", "\xed\xa0\x80"},
		{"a code point above U+10FFFF", "\xf4\x90\x80\x80"},
		{"the byte 0xFE", "\xfe"},
		{"the byte 0xFF", "\xff"},
		{"a 5-byte sequence", "\xf8\x88\x80\x80\x80"},
		{"κόσμε with a surrogate after it", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"},
	}
	for i, v := range invalid {
		msg := `{"type":"login","name":"` + v.bytes + `"}`
		add("6.4."+strconv.Itoa(i+1), "text with "+v.name+": fails with 1007", func(c *conn) {
			c.write(c.text(probeMsg), c.text(msg), c.text(probeMsg))
			c.expectProbeReply()
			c.expectFail(1007)
		})
	}
	add("6.5.1", "invalid UTF-8, one byte per fragment: fails with 1007", func(c *conn) {
		msg := "{\"type\":\"\xce\xba\xed\xa0\x80\"}"
		var b []byte
		for j := range len(msg) {
			var b0 byte = opCont
			if j == 0 {
				b0 = opText
			}
			if j == len(msg)-1 {
				b0 |= fin
			}
			b = append(b, c.frame(b0, []byte{msg[j]})...)
		}
		c.write(b)
		c.expectFail(1007)
	})
	add("6.5.2", "a message that ends inside a code point, whole in the next fragment: fails with 1007", func(c *conn) {
		c.write(c.frame(opText, []byte("{\"type\":\"\xce\"}")), c.frame(fin|opCont, []byte("\xba")))
		c.expectFail(1007)
	})
	add("6.5.3", "invalid UTF-8 in a binary message: not a transport error (invalid JSON)", func(c *conn) {
		c.write(c.frame(fin|opBinary, []byte("{\"type\":\"\xff\"}")))
		if m := c.expectMsg("error"); m["code"] != "invalid-json" {
			c.failf("answered %v", m)
		}
		c.probe()
	})

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

	cs = append(cs, handshakeCases()...)
	return cs
}

// handshakeCases are the opening handshake's (RFC 6455 4, RFC 7230).
func handshakeCases() []tcase {
	var cs []tcase
	add := func(id, desc string, run func(c *conn)) { cs = append(cs, tcase{id: id, desc: desc, run: run}) }
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	upgraded := func(c *conn) {
		resp, _ := c.response(false)
		c.expectUpgrade(resp, key)
		c.expectHello()
	}
	refused := func(c *conn, codes ...int) *http.Response {
		resp, _ := c.response(false)
		if !contains(codes, resp.StatusCode) {
			c.failf("status %d, want one of %v", resp.StatusCode, codes)
		}
		return resp
	}
	add("h.1", "a plain upgrade, then a login", func(c *conn) {
		c.write([]byte(c.upgradeRequest("")))
		upgraded(c)
		c.login()
		c.probe()
	})
	add("h.2", "header tokens in lists and any case", func(c *conn) {
		c.write([]byte("GET /ws HTTP/1.1\r\nhost: " + c.tg.host + "\r\nupgrade: WebSocket\r\nconnection: keep-alive, UPGRADE\r\n" +
			"sec-websocket-key: " + key + "\r\nsec-websocket-version: 13\r\n\r\n"))
		upgraded(c)
		c.probe()
	})
	add("h.3", "Connection in two header lines", func(c *conn) {
		c.write([]byte("GET /ws HTTP/1.1\r\nHost: " + c.tg.host + "\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n"))
		upgraded(c)
		c.probe()
	})
	add("h.4", "a compression offer is not taken up", func(c *conn) {
		c.write([]byte(c.upgradeRequest("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n")))
		upgraded(c)
		c.probe()
	})
	add("h.5", "frames in the same write as the head", func(c *conn) {
		c.write([]byte(c.upgradeRequest("")), c.text(probeMsg), c.text(probeMsg))
		upgraded(c)
		c.expectProbeReply()
		c.expectProbeReply()
	})
	add("h.6", "a 9 KB Cookie header, with 200 messages in the same write", func(c *conn) {
		var b []byte
		for range 200 {
			b = append(b, c.text(probeMsg)...)
		}
		c.write([]byte(c.upgradeRequest("Cookie: session="+strings.Repeat("c", 9000)+"\r\n")), b)
		upgraded(c)
		for range 200 {
			c.expectProbeReply()
		}
		c.login()
	})
	add("h.7", "GET /healthz, then the upgrade, then messages, on one keep-alive connection in one write", func(c *conn) {
		var b []byte
		for range 200 {
			b = append(b, c.text(probeMsg)...)
		}
		c.write([]byte("GET /healthz HTTP/1.1\r\nHost: "+c.tg.host+"\r\n\r\n"+c.upgradeRequest("")), b)
		if resp, body := c.response(false); resp.StatusCode != http.StatusOK || body != "ok\n" {
			c.failf("healthz: %d %q", resp.StatusCode, body)
		}
		upgraded(c)
		for range 200 {
			c.expectProbeReply()
		}
		c.login()
	})
	add("h.8", "the head in 1-byte writes", func(c *conn) {
		c.writeChopped(1, []byte(c.upgradeRequest("")))
		upgraded(c)
		c.probe()
	})
	add("h.9", "bare-LF line ends: upgraded, or refused with 400", func(c *conn) {
		c.write([]byte(strings.ReplaceAll(c.upgradeRequest(""), "\r\n", "\n")), c.text(probeMsg))
		resp, _ := c.response(false)
		switch resp.StatusCode {
		case http.StatusSwitchingProtocols:
			c.expectUpgrade(resp, key)
			c.expectHello()
			c.expectProbeReply()
		case http.StatusBadRequest:
		default:
			c.failf("status %d, want 101 or 400", resp.StatusCode)
		}
	})
	add("h.10", "HTTP/1.0: refused", func(c *conn) {
		c.write([]byte(strings.Replace(c.upgradeRequest(""), "HTTP/1.1", "HTTP/1.0", 1)))
		refused(c, http.StatusBadRequest, http.StatusUpgradeRequired)
	})
	add("h.11", "version 8: refused, with Sec-WebSocket-Version: 13", func(c *conn) {
		c.write([]byte(strings.Replace(c.upgradeRequest(""), "Version: 13", "Version: 8", 1)))
		resp := refused(c, http.StatusBadRequest, http.StatusUpgradeRequired)
		if !hasToken(resp.Header.Values("Sec-WebSocket-Version"), "13") {
			c.failf("Sec-WebSocket-Version: %q, want 13", resp.Header.Values("Sec-WebSocket-Version"))
		}
	})
	add("h.12", "no Sec-WebSocket-Key: refused", func(c *conn) {
		c.write([]byte(strings.Replace(c.upgradeRequest(""), "Sec-WebSocket-Key: "+key+"\r\n", "", 1)))
		refused(c, http.StatusBadRequest)
	})
	add("h.13", "no Upgrade header: refused", func(c *conn) {
		c.write([]byte(strings.Replace(c.upgradeRequest(""), "Upgrade: websocket\r\n", "", 1)))
		refused(c, http.StatusBadRequest, http.StatusUpgradeRequired)
	})
	add("h.14", "POST: refused", func(c *conn) {
		c.write([]byte(strings.Replace(c.upgradeRequest(""), "GET", "POST", 1)))
		refused(c, http.StatusBadRequest, http.StatusMethodNotAllowed)
	})
	add("h.15", "a foreign Origin: refused with 403", func(c *conn) {
		c.write([]byte(c.upgradeRequest("Origin: https://elsewhere.example\r\n")))
		refused(c, http.StatusForbidden)
	})
	add("h.16", "no Host: refused", func(c *conn) {
		c.write([]byte(strings.Replace(c.upgradeRequest(""), "Host: "+c.tg.host+"\r\n", "", 1)))
		refused(c, http.StatusBadRequest)
	})
	add("h.17", "a second key: another Sec-WebSocket-Accept", func(c *conn) {
		k := "x3JJHMbDL1EzLkh9GBhXDw=="
		c.write([]byte(strings.Replace(c.upgradeRequest(""), key, k, 1)))
		resp, _ := c.response(false)
		c.expectUpgrade(resp, k)
		c.expectHello()
	})
	return cs
}
