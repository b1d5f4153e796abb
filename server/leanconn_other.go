//go:build !unix

package server

import "errors"

// rawReads is false: elsewhere leanConn reads through net.Conn and only
// batches writes.
const rawReads = false

func readRaw(uintptr, []byte) (int, error) { return 0, errors.ErrUnsupported }
