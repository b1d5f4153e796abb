package signaling

import "sync/atomic"

// Stats are the hub's live counters, read by the metrics endpoint. They
// are plain atomics so that counting costs nothing measurable on the hot
// path and the package needs no metrics library.
type Stats struct {
	Connections     atomic.Int64  // open WebSocket connections
	Logins          atomic.Uint64 // successful logins
	Resumes         atomic.Uint64 // logins that presented a valid session token
	SlowDisconnects atomic.Uint64 // clients cut off for a full send queue
	QueueHighWater  atomic.Int64  // largest queued output seen, in bytes

	refusals [len(refusalCodes)]atomic.Uint64
	relayed  [len(relayTypes)]atomic.Uint64
}

// refusalCodes lists every error code, in a fixed order for Refusals.
var refusalCodes = [...]string{
	CodeUnknownType, CodeInvalidJSON, CodeNotLoggedIn, CodeUserNotFound,
	CodeNotInCall, CodeNameTaken, CodeInvalidName, CodeAlreadyLoggedIn,
	CodeRateLimited, CodeInvalidMessage,
}

// relayTypes lists the relayed message types, in a fixed order for Relayed.
var relayTypes = [...]string{"offer", "answer", "candidate", "leave"}

func (s *Stats) countRefusal(code string) {
	for i, c := range refusalCodes {
		if c == code {
			s.refusals[i].Add(1)
			return
		}
	}
}

func (s *Stats) countRelay(typ string) {
	for i, t := range relayTypes {
		if t == typ {
			s.relayed[i].Add(1)
			return
		}
	}
}

func (s *Stats) noteQueueLen(n int) {
	for {
		hw := s.QueueHighWater.Load()
		if int64(n) <= hw || s.QueueHighWater.CompareAndSwap(hw, int64(n)) {
			return
		}
	}
}

// Refusals calls fn with every error code and how often it was sent.
func (s *Stats) Refusals(fn func(code string, n uint64)) {
	for i, c := range refusalCodes {
		fn(c, s.refusals[i].Load())
	}
}

// Relayed calls fn with every relayed message type and its count.
func (s *Stats) Relayed(fn func(typ string, n uint64)) {
	for i, t := range relayTypes {
		fn(t, s.relayed[i].Load())
	}
}
