// Package wsloop serves WebSocket connections from one event loop instead
// of a goroutine per connection.
//
// A signaling server holds many connections that are idle nearly all the
// time and relays short bursts between them. With a goroutine per
// connection, every idle user costs a goroutine stack (4-8 KiB) plus the
// WebSocket library's reader and writer state, and every relayed message
// costs a goroutine wake-up for the reader, a hand-over to a writer and a
// second wake-up there. Here, after coder/websocket has done the opening
// handshake (Accept), the socket is taken out of Go's network poller and
// put in this package's epoll set:
//
//   - an idle connection is a file descriptor and a small Conn struct: no
//     goroutine, no timer, no buffer;
//   - one goroutine waits in epoll_wait, reads whatever a readable socket
//     has into one shared buffer, decodes the frames in place and calls
//     the connection's Handler for each message;
//   - Send never writes: it appends the frame to the Conn's output and
//     puts the Conn on the loop's list to flush (waking the loop, with one
//     byte down a pipe, only if it is asleep). After each batch of events
//     the loop writes every listed Conn's output with one non-blocking
//     write, so relaying a message from one peer to another is one read
//     and one write on the loop goroutine, and several messages to one
//     peer go out in one system call. Whatever the socket does not take
//     stays queued and goes out when epoll says the socket is writable; a
//     queue that makes no progress for the write timeout ends the
//     connection;
//   - keep-alive pings, the write timeout and the closing handshake's
//     deadline are checked by the loop on a coarse tick, not by a timer per
//     connection.
//
// With Listen, the loop also accepts: a new socket waits in the epoll set
// for its request head, and a WebSocket request is handed to the
// http.Handler on the loop goroutine, with a ResponseWriter whose Hijack
// returns the socket the loop already holds. The handler's checks and
// refusals are unchanged, and a login costs 10 system calls instead of
// the 19 it costs through net/http (a goroutine, the runtime's poller
// registering and dropping the socket, a duplicated descriptor). Any other
// request goes on to net/http with the bytes already read.
//
// The frame codec (frame.go, decoder.go) follows RFC 6455 for what a
// server receives: masked frames, fragmentation, interleaved control
// frames, close codes, UTF-8 text (1007 otherwise), a message size limit
// checked from the header. Guard (guard.go) makes the same checks from
// outside on the byte stream of a connection that coder/websocket serves
// (TLS), for what that library lets through or catches too late. No
// extensions are negotiated, so compression is never used.
//
// The loop needs epoll, so it exists on Linux only; New reports
// ErrUnsupported elsewhere, and callers fall back to coder/websocket's
// own connections (TLS connections, whose bytes the socket does not
// carry in the clear, always do).
package wsloop
