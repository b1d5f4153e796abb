//go:build !linux

package wsloop

import (
	"log/slog"
	"net"
	"net/http"
)

// Loop is not available on this system; New reports ErrUnsupported.
type Loop struct{}

// New reports ErrUnsupported: the loop needs Linux's epoll.
func New(Config, *slog.Logger) (*Loop, error) { return nil, ErrUnsupported }

// Attach reports ErrUnsupported.
func (*Loop) Attach(net.Conn, []byte, func(*Conn) Handler) error { return ErrUnsupported }

// Listen reports ErrUnsupported.
func (*Loop) Listen(net.Listener, http.Handler) (net.Listener, error) { return nil, ErrUnsupported }

// Close does nothing.
func (*Loop) Close() {}

// Conn is not available on this system.
type Conn struct{}

// Send reports the connection as closed.
func (*Conn) Send([]byte) int { return -1 }

// Close does nothing.
func (*Conn) Close(int, string) {}

// CloseNow does nothing.
func (*Conn) CloseNow() {}
