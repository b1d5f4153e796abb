// Package natsbus joins p2pchat instances into one name space over NATS,
// behind the hub's Cluster seam (server/signaling/cluster.go).
//
// # Names
//
// A name is a key in a JetStream KV bucket (default "p2pchat_names"): its
// value is the owner token of the instance holding it and the SHA-256 of
// the session token (never the token). Claiming is one KV Create, which
// fails with ErrKeyExists while the name is held.
//
// The lease is per instance, not per name: each instance has one key in
// a second bucket (<bucket>_live) whose TTL is the lease, rewritten every
// lease/4, so keeping 100,000 names costs one write per instance per
// round, not one per name. Name keys have no TTL; a name key is held
// while its owner's live key exists. When a live key expires (the
// bucket's LimitMarkerTTL makes that visible to watchers) or is deleted,
// every instance takes the owner's names offline and purges their keys
// with compare-and-set; a claim that meets a key whose owner has no live
// key takes it over at once; and an instance that starts checks the
// owners of the names it finds (sweep), so the names of an instance that
// died unwatched are freed too. Released names are purged with a marker
// TTL, so the bucket keeps nothing for names nobody holds.
//
// Claims fail closed. An instance that has not written its live key for
// half the lease drops every client with 1012 (they reconnect, through
// the load balancer, to an instance that works) and refuses logins until
// NATS answers again, so its live key always outlives its belief that it
// owns a name: no name is held on two instances. It comes back as a new
// incarnation (owner token "<id>-<n+1>") and deletes the old one's live
// key, so the old keys are garbage to everyone, in whatever order the
// other instances see the death and the new claims.
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
// Every instance watches both buckets: a name put is a name online, a
// purge or delete a name gone, and so are all names of an owner whose
// live key went (their local call peers get leave). The hub
// coalesces those into its usual presence diffs, so the cost per login is
// one watch event per instance, not a message per online user.
//
// # Files
//
// bus.go opens and closes the membership (connection, bucket, watcher,
// the bus's goroutines); claim.go claims, takes over, rekeys and releases
// names; lease.go refreshes the instance's lease, fails closed and purges
// dead instances' names; relay.go sends
// relays to other instances and delivers theirs; presence.go turns the
// bucket's changes into presence. Each goroutine owns one loop: deliverLoop
// (relay.go), watchLoop (presence.go), refreshLoop (lease.go) and
// releaseLoop (claim.go), plus short-lived purges of a dead owner's keys
// (lease.go); watchLoop alone keeps the view of who owns which name. The
// maps of held names and of names being released, and the owner token,
// are the only state they share, under Bus.mu, which is never
// held across a network call (only across a subscription change, a
// buffered write). A released name's subject is unsubscribed by
// releaseLoop, not by Release, since the hub gives names back with its
// lock held.
package natsbus
