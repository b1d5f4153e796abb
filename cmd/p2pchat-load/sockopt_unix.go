//go:build unix

package main

import "syscall"

// setRcvBuf returns a net.Dialer Control that sets SO_RCVBUF before the
// connection is made, which is what bounds the TCP window it offers.
func setRcvBuf(n int) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
		})
		if err != nil {
			return err
		}
		return serr
	}
}
