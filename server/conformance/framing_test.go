package conformance

import (
	"bytes"
	"strconv"
)

// framingCases are Autobahn's sections 1-4: framing and the three length
// encodings, chopping and coalescing, pings and pongs, reserved bits and
// reserved opcodes.
func framingCases(add func(id, desc string, run func(c *conn))) {
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
}
