//go:build unix

package server

import "syscall"

// rawReads says that leanConn can read a socket's descriptor itself.
const rawReads = true

// readRaw reads from a non-blocking socket; EAGAIN means no data yet.
func readRaw(fd uintptr, p []byte) (int, error) {
	for {
		n, err := syscall.Read(int(fd), p)
		if err != syscall.EINTR {
			return n, err
		}
	}
}
