// Package ice builds the ICE server lists p2pchat hands to browsers and the
// short-lived TURN credentials in them.
//
// # Two lists
//
// Every connection gets the STUN list in its hello message: STUN needs no
// secret, and a client can start gathering candidates before it logs in.
// TURN entries appear only in the reply to a successful login, because their
// credentials are bound to the login name. A TURN server then knows whose
// relay it is carrying, and can apply per-user quotas.
//
// # TURN REST credentials
//
// The credential scheme is the one coturn calls use-auth-secret
// (draft-uberti-behave-turn-rest): the server and the TURN server share a
// secret; the username is "<unix expiry>:<login name>" and the password is
// base64(HMAC-SHA1(secret, username)). The TURN server recomputes the HMAC
// from the username it is given and refuses expired usernames, so nothing
// is stored per user, the secret never leaves the servers, and a leaked
// credential is useless after its expiry. Credentials are made fresh for
// every login, so a reconnecting client always gets a new lifetime.
//
// Static TURN usernames and passwords are supported for old TURN servers
// that know nothing else, but every browser then holds the same password
// for as long as it is configured; the caller should warn about that.
package ice
