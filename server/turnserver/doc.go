// Package turnserver runs p2pchat's embedded TURN relay (RFC 8656, UDP),
// built on github.com/pion/turn.
//
// # Why it is embedded
//
// STUN alone fails between many real pairs of machines (symmetric NATs,
// firewalls that drop inbound UDP). A relay fixes that, and putting it in
// the same binary means a public p2pchat needs one extra flag and a secret,
// not a second daemon with its own configuration.
//
// # Authentication
//
// The relay accepts exactly the TURN REST credentials the signaling server
// hands out after login (see package ice): the username is
// "<unix expiry>:<login name>", the password the HMAC of it under the
// shared secret. Nothing is stored per user; an expired or forged username
// is refused before any allocation is made. Once made, an allocation may be
// refreshed with the same credential after its expiry, so a long call does
// not drop. The login name becomes the allocation's user id, which is what
// the quotas count.
//
// # Quotas
//
// A per-user limit and a total cap on concurrent allocations bound what one
// user, and everyone together, can take of the host's ports and bandwidth.
// A refusal is answered with 486 Allocation Quota Reached, logged, and
// counted. pion handles all packets of one UDP listener on one goroutine, in
// order, so the check in the quota handler and the count in
// OnAllocationCreated cannot interleave with another allocation's.
//
// # Peer policy
//
// A relay sends datagrams wherever its client asks: without a policy it is
// a door from the internet into the host's own network. By default it
// refuses permissions (and so all traffic) to loopback, unspecified,
// link-local (including the cloud metadata address 169.254.169.254),
// other metadata endpoints, multicast and reserved ranges. Operators add
// ranges to deny (private networks on a public host) or to allow (tests on
// loopback); an allowed range wins over a denied one.
package turnserver
