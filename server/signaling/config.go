package signaling

import (
	"encoding/json"
	"time"
)

// Defaults for Config. Each is chosen so that a real browser client never
// meets a limit while one misbehaving client cannot hurt the others.
const (
	// DefaultReadLimit bounds one incoming frame. An SDP offer with audio,
	// video and data is 5-10 KB; 64 KiB leaves room without letting a
	// client make the server buffer megabytes.
	DefaultReadLimit = 64 << 10
	// DefaultMsgRate is the sustained messages per second per connection.
	// A call start sends an offer plus 30-50 candidates within a second;
	// the burst below absorbs that and the rate refills it quickly.
	DefaultMsgRate = 50
	// DefaultMsgBurst is the token bucket size.
	DefaultMsgBurst = 200
	// DefaultSendQueueBytes is how much output may wait for one client
	// (beyond what its socket has taken) before it is disconnected as too
	// slow. A call start sends a few offers and answers of up to the read
	// limit and a presence list of up to ~70 KB, most of which the socket
	// takes at once; 128 KiB on top holds that even on a slow link, while
	// 1,000 clients that stop reading hold at most 125 MiB between them
	// (a server RSS of ~265 MB in all, measured: docs/benchmarks.md).
	DefaultSendQueueBytes = 128 << 10
	// DefaultWriteTimeout bounds one frame write to a client.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultPingInterval is the keep-alive period; a peer that does not
	// answer a ping within the same period is dropped.
	DefaultPingInterval = 30 * time.Second
	// DefaultPresenceInterval is how often online-list changes are sent,
	// coalesced, to subscribed clients.
	DefaultPresenceInterval = time.Second
	// DefaultPresenceMax is the largest online list sent by name; above it
	// clients only get the count (a list of thousands helps nobody).
	DefaultPresenceMax = 1000
	// DefaultSessionTTL is how long a session token stays valid after its
	// connection is gone: long enough for a phone to change networks or a
	// laptop to wake, short enough that a leaked token soon dies.
	DefaultSessionTTL = 5 * time.Minute
	// DefaultMaxHeldSessions bounds the sessions of closed connections
	// kept for their TTL (about 100 bytes each); past it the oldest go
	// first, which only costs their owners the resume.
	DefaultMaxHeldSessions = 20000
	// strikesBeforeClose is how many refused messages in a row, over the
	// rate limit, close the connection with 1008.
	strikesBeforeClose = 100
)

// DefaultSTUN is the STUN server offered when no ICEProvider is configured.
const DefaultSTUN = "stun:stun2.l.google.com:19302"

// ICEProvider supplies RTCPeerConnection iceServers lists. HelloServers is
// sent to every connection (no credentials); LoginServers is sent in the
// successful login reply and may carry TURN credentials bound to name.
type ICEProvider interface {
	HelloServers() json.RawMessage
	LoginServers(name string) json.RawMessage
}

// Config holds the hub's limits, and the per-connection limits the
// transports in front of it apply (ReadLimit, WriteTimeout, PingInterval;
// see Hub.Config). Zero numeric fields take the defaults above, but a zero
// Presence is off: DefaultConfig, what p2pchat runs with, turns it on.
type Config struct {
	// ReadLimit is the largest accepted frame in bytes; a larger one
	// closes that connection with status 1009.
	ReadLimit int64
	// MsgRate is the sustained message rate per connection (messages per
	// second). Zero means the default; a negative value turns the limit
	// off (the -msg-rate 0 flag maps to that for load tests).
	MsgRate float64
	// MsgBurst is the token bucket size for MsgRate.
	MsgBurst int
	// SendQueueBytes bounds a connection's queued output in bytes; a
	// client whose output grows past it is cut off (Stats.SlowDisconnects).
	SendQueueBytes int
	// WriteTimeout bounds each frame write.
	WriteTimeout time.Duration
	// PingInterval is the keep-alive ping period.
	PingInterval time.Duration
	// Presence turns the online list on. Clients get it only if they ask
	// for it in their login message.
	Presence bool
	// PresenceInterval is the coalescing period of presence changes.
	PresenceInterval time.Duration
	// PresenceMax is the largest online list sent by name.
	PresenceMax int
	// SessionTTL is how long a session token can be resumed after its
	// connection is gone (session.go).
	SessionTTL time.Duration
	// MaxHeldSessions bounds the sessions of closed connections kept for
	// their TTL.
	MaxHeldSessions int
	// ICE supplies iceServers; nil means DefaultSTUN only.
	ICE ICEProvider
	// TestRelay tells clients in hello ("testRelay":true) that they may
	// force relay-only ICE from a page URL parameter. For tests of a TURN
	// relay only: without it, the client ignores the parameter.
	TestRelay bool
	// HTTPSPort, when not zero, is the port of a second, HTTPS listener
	// on the same host (the self-signed one of cmd/p2pchat). hello carries
	// it ("httpsPort"), so a page opened over plain HTTP, where browsers
	// refuse the camera and microphone, can point to the address that
	// works.
	HTTPSPort int
}

// DefaultConfig returns the configuration p2pchat runs with by default.
func DefaultConfig() Config {
	return Config{
		ReadLimit:        DefaultReadLimit,
		MsgRate:          DefaultMsgRate,
		MsgBurst:         DefaultMsgBurst,
		SendQueueBytes:   DefaultSendQueueBytes,
		WriteTimeout:     DefaultWriteTimeout,
		PingInterval:     DefaultPingInterval,
		Presence:         true,
		PresenceInterval: DefaultPresenceInterval,
		PresenceMax:      DefaultPresenceMax,
		SessionTTL:       DefaultSessionTTL,
		MaxHeldSessions:  DefaultMaxHeldSessions,
	}
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.ReadLimit <= 0 {
		c.ReadLimit = d.ReadLimit
	}
	if c.MsgRate == 0 {
		c.MsgRate = d.MsgRate
	}
	if c.MsgBurst <= 0 {
		c.MsgBurst = d.MsgBurst
	}
	if c.SendQueueBytes <= 0 {
		c.SendQueueBytes = d.SendQueueBytes
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.PingInterval <= 0 {
		c.PingInterval = d.PingInterval
	}
	if c.PresenceInterval <= 0 {
		c.PresenceInterval = d.PresenceInterval
	}
	if c.PresenceMax <= 0 {
		c.PresenceMax = d.PresenceMax
	}
	if c.SessionTTL <= 0 {
		c.SessionTTL = d.SessionTTL
	}
	if c.MaxHeldSessions <= 0 {
		c.MaxHeldSessions = d.MaxHeldSessions
	}
	if c.ICE == nil {
		c.ICE = StaticICE{URLs: []string{DefaultSTUN}}
	}
	return c
}

// StaticICE is an ICEProvider with a fixed list of credential-free URLs
// (STUN, or TURN that needs no password). An empty list is valid: LAN-only.
type StaticICE struct{ URLs []string }

// HelloServers returns the URLs as one iceServers entry.
func (s StaticICE) HelloServers() json.RawMessage {
	if len(s.URLs) == 0 {
		return json.RawMessage("[]")
	}
	return mustJSON([]map[string][]string{{"urls": s.URLs}})
}

// LoginServers returns the same list as HelloServers.
func (s StaticICE) LoginServers(string) json.RawMessage { return s.HelloServers() }
