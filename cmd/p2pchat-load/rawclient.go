package main

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// rawConn is the WebSocket client churn uses: a connection is opened,
// logged in and closed again in well under a millisecond of the server's
// time, so on a two-core machine the client's own cost per connection
// decides how fast the server can be driven. coder/websocket spends much
// of a short connection's CPU on what pays off only over a long one: a
// reader goroutine, contexts and timers for every write, a close
// handshake run through them. This client does only what RFC 6455 asks
// of one that sends a few small frames: the opening handshake with its
// key check, masked frames out, unmasked frames in, the closing
// handshake. Every step has a deadline and anything unexpected is an
// error, as with the other modes.
type rawConn struct {
	nc  net.Conn
	br  *bufio.Reader
	rng *rand.ChaCha8
	wmu sync.Mutex // write may be called by a reader (pongs) and a writer
	out []byte
	msg []byte
}

// wsGUID is RFC 6455's key suffix.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// rawDial connects, upgrades and reads the greeting, all within deadline.
func (d *dialer) rawDial(deadline time.Time, rng *rand.ChaCha8) (*rawConn, error) {
	nd := d.netDialers[d.next.Add(1)%uint64(len(d.netDialers))]
	nc, err := nd.Dial("tcp", d.host)
	if err != nil {
		return nil, fmt.Errorf("dialing: %w", err)
	}
	c := &rawConn{nc: nc, br: bufio.NewReaderSize(nc, 1024), rng: rng}
	if err := c.handshake(deadline, d.host, d.path); err != nil {
		nc.Close()
		return nil, err
	}
	msg, err := c.read()
	if err := checkGreeting(msg, err, d.tutorial); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

func (c *rawConn) handshake(deadline time.Time, host, path string) error {
	_ = c.nc.SetDeadline(deadline)
	var nonce [16]byte
	_, _ = c.rng.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c.nc, req); err != nil {
		return fmt.Errorf("writing upgrade request: %w", err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return fmt.Errorf("reading upgrade response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("dialing: HTTP %d %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != acceptKey(key) {
		return fmt.Errorf("%w: Sec-WebSocket-Accept %q does not match the key", errUnexpected, got)
	}
	return nil
}

// acceptKey is the Sec-WebSocket-Accept a server must answer key with.
func acceptKey(key string) string {
	sum := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// login logs in as name and waits for the reply, within deadline.
func (c *rawConn) login(deadline time.Time, name string, presence bool) error {
	_ = c.nc.SetDeadline(deadline)
	if err := c.write(opText, loginMessage(name, presence)); err != nil {
		return fmt.Errorf("sending login: %w", err)
	}
	msg, err := c.read()
	if err != nil {
		return fmt.Errorf("reading login reply: %w", err)
	}
	return checkLoginReply(msg)
}

// close runs the closing handshake: status 1000 out, then frames are read
// (and skipped: presence may still be in flight) until the server's close.
func (c *rawConn) close(deadline time.Time) error {
	defer c.nc.Close()
	_ = c.nc.SetDeadline(deadline)
	if err := c.write(opClose, []byte{0x03, 0xe8}); err != nil {
		return fmt.Errorf("sending close: %w", err)
	}
	for {
		_, err := c.read()
		if errors.Is(err, errServerClosed) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xa
)

var errServerClosed = fmt.Errorf("%w: server sent a close frame", errUnexpected)

// write sends one masked frame.
func (c *rawConn) write(opcode byte, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := append(c.out[:0], 0x80|opcode)
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var mask [4]byte
	binary.LittleEndian.PutUint32(mask[:], uint32(c.rng.Uint64()))
	b = append(b, mask[:]...)
	start := len(b)
	b = append(b, payload...)
	for i := range b[start:] {
		b[start+i] ^= mask[i&3]
	}
	c.out = b
	_, err := c.nc.Write(b)
	return err
}

// read returns the next text message, answering pings on the way. The
// server's close frame is errServerClosed; fragments, binary frames,
// masked frames and oversized ones are errors.
func (c *rawConn) read() ([]byte, error) {
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			return nil, err
		}
		fin, opcode, masked := h[0]&0x80 != 0, h[0]&0x0f, h[1]&0x80 != 0
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var ext [2]byte
			if _, err := io.ReadFull(c.br, ext[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(ext[:]))
		case 127:
			var ext [8]byte
			if _, err := io.ReadFull(c.br, ext[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(ext[:])
		}
		if !fin || masked || h[0]&0x70 != 0 || n > readLimit {
			return nil, fmt.Errorf("%w: frame header %x, length %d", errUnexpected, h, n)
		}
		if uint64(cap(c.msg)) < n {
			c.msg = make([]byte, n)
		}
		msg := c.msg[:n]
		if _, err := io.ReadFull(c.br, msg); err != nil {
			return nil, err
		}
		switch opcode {
		case opText:
			return msg, nil
		case opPing:
			if err := c.write(opPong, msg); err != nil {
				return nil, err
			}
		case opPong:
		case opClose:
			return nil, errServerClosed
		default:
			return nil, fmt.Errorf("%w: frame opcode %d", errUnexpected, opcode)
		}
	}
}

// loginMessage is the login both clients send.
func loginMessage(name string, presence bool) []byte {
	b := make([]byte, 0, 64)
	b = append(b, `{"type":"login","name":`...)
	b = strconv.AppendQuote(b, name) // names are ASCII: Go and JSON quoting agree
	if presence {
		b = append(b, `,"presence":true`...)
	}
	return append(b, '}')
}

// checkLoginReply accepts only a successful login reply.
func checkLoginReply(msg []byte) error {
	if string(field(msg, "type")) != "login" {
		return fmt.Errorf("%w: %.80q while waiting for login reply", errUnexpected, msg)
	}
	if !bytes.Contains(msg, []byte(`"success":true`)) {
		return fmt.Errorf("%w: %.120q", errLoginFailed, msg)
	}
	return nil
}
