package conformance

import (
	"strconv"
)

// utf8Cases are Autobahn's section 6: UTF-8 validity of text messages,
// whole and across fragment boundaries (RFC 6455 8.1: fail with 1007).
func utf8Cases(add func(id, desc string, run func(c *conn))) {
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
}
