package main

import (
	"bufio"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"
)

// serverFrame is an unmasked frame as a server sends it.
func serverFrame(first byte, payload string) []byte {
	return append([]byte{first, byte(len(payload))}, payload...)
}

// The lean client's frame reader takes text, answers pings, reports the
// server's close, and refuses what a server must not send.
func TestRawConnRead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      []byte
		want    string
		wantErr error
		pong    bool
	}{
		{"text", serverFrame(0x81, "hi"), "hi", nil, false},
		{"ping, then text", append(serverFrame(0x89, "p"), serverFrame(0x81, "hi")...), "hi", nil, true},
		{"16-bit length", append([]byte{0x81, 126, 0, 200}, strings.Repeat("x", 200)...), strings.Repeat("x", 200), nil, false},
		{"close", serverFrame(0x88, "\x03\xe8"), "", errServerClosed, false},
		{"fragment", serverFrame(0x01, "h"), "", errUnexpected, false},
		{"masked", []byte{0x81, 0x82, 1, 2, 3, 4, 'a', 'b'}, "", errUnexpected, false},
		{"reserved bit", serverFrame(0xc1, "hi"), "", errUnexpected, false},
		{"binary", serverFrame(0x82, "hi"), "", errUnexpected, false},
		{"over the limit", []byte{0x81, 127, 0, 0, 0, 0, 0x10, 0, 0, 0}, "", errUnexpected, false},
		{"cut short", []byte{0x81, 5, 'h'}, "", io.ErrUnexpectedEOF, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client, server := net.Pipe()
			defer client.Close()
			pongs := make(chan []byte, 1)
			go func() {
				defer server.Close()
				_ = server.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := server.Write(tt.in); err != nil {
					return
				}
				if tt.pong {
					b := make([]byte, 7) // header, mask, one byte
					_, _ = io.ReadFull(server, b)
					pongs <- b
				}
			}()
			c := &rawConn{nc: client, br: bufio.NewReader(client), rng: rand.NewChaCha8([32]byte{})}
			got, err := c.read()
			if !errors.Is(err, tt.wantErr) || string(got) != tt.want {
				t.Fatalf("read() = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
			if tt.pong {
				b := <-pongs
				if b[0] != 0x8a || b[1] != 0x81 || b[6]^b[2] != 'p' {
					t.Fatalf("pong frame % x, want a masked pong echoing \"p\"", b)
				}
			}
		})
	}
}

// RFC 6455's example handshake.
func TestAcceptKey(t *testing.T) {
	t.Parallel()
	if got, want := acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; got != want {
		t.Fatalf("acceptKey = %q, want %q", got, want)
	}
}
