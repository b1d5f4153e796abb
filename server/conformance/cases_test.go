package conformance

import (
	"net/http"
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

// cases are the suite's cases in Autobahn's order, then the opening
// handshake's. Every case but the handshake's starts on an open WebSocket.
func cases() []tcase {
	var cs []tcase
	add := func(id, desc string, run func(c *conn)) {
		cs = append(cs, tcase{id: id, desc: desc, run: opened(run)})
	}
	framingCases(add)
	fragmentCases(add)
	utf8Cases(add)
	closingCases(add)
	return append(cs, handshakeCases()...)
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
