// Package natsbus joins p2pchat instances into one name space over NATS,
// behind the hub's Cluster seam (server/signaling/cluster.go).
//
// # Names
//
// A name is a key in a JetStream KV bucket (default "p2pchat_names"): its
// value is the owning instance's id and the SHA-256 of the session token
// (never the token). Claiming is one KV Create, which fails with
// ErrKeyExists while another connection holds the name. The bucket has a
// TTL, the lease: every instance rewrites all its keys every lease/4, in
// one batch of asynchronous compare-and-set publishes, and a key of a
// dead instance expires within the lease. The bucket's LimitMarkerTTL
// makes expiries visible to watchers as purge markers. A per-key TTL
// cannot be used for the lease: it is set only at creation, and an update
// clears it.
//
// Claims fail closed. An instance that has not completed a refresh round
// for half the lease drops every client with 1012 (they reconnect, through
// the load balancer, to an instance that works) and refuses logins until
// NATS answers again, so a name's key always outlives the instance's
// belief that it owns it: no name is held on two instances.
//
// A login that presents the token of a session held by another instance
// (its client's network moved, or the instance died) takes the key over
// with a compare-and-set Update and asks the old instance, by request, to
// close its connection (4001) and hand over the names it was in calls
// with: the name comes back at once, not after the lease.
//
// # Routing
//
// Each held name has a core NATS subject, p2pchat.u.<key>, subscribed on
// the instance that holds it. A relay to a name not held locally is
// published there with the sender's name, the message type and the frame
// the hub built (sender stamped, payload byte for byte), and with a reply
// subject naming sender and target. Nobody replies on success. If nobody
// subscribes the subject, the server answers the reply subject with a 503
// status (no responders) at once, which becomes user-not-found for the
// sender: no lookup and no waiting. One connection publishes, and one
// goroutine delivers what the subscriptions receive, so order holds per
// sender, as core NATS keeps it per publishing connection.
//
// Keys and subject tokens are the base64url encoding of the name's UTF-8
// bytes, so 小明 or names with dots and spaces are safe in both.
//
// # Presence
//
// Every instance watches the bucket: a put is a name online, a delete or
// an expiry marker a name gone (its local call peers get leave). The hub
// coalesces those into its usual presence diffs, so the cost per login is
// one watch event per instance, not a message per online user.
//
// # Files
//
// bus.go opens and closes the membership (connection, bucket, watcher,
// the bus's goroutines); claim.go claims, takes over, rekeys and releases
// names; lease.go refreshes the leases and fails closed; relay.go sends
// relays to other instances and delivers theirs; presence.go turns the
// bucket's changes into presence. Each goroutine owns one loop: deliverLoop
// (relay.go), watchLoop (presence.go), refreshLoop (lease.go) and
// releaseLoop (claim.go); the maps of held names and of names being
// released are the only state they share, under Bus.mu, which is never
// held across a network call (only across a subscription change, a
// buffered write). A released name's subject is unsubscribed by
// releaseLoop, not by Release, since the hub gives names back with its
// lock held.
package natsbus
