package wspump

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/p2pchat/p2pchat/server/wsloop"
)

// Conn is one connection served by Serve: a reader goroutine for the
// connection's life, and a writer goroutine only while its queue is
// non-empty. Send, Close and CloseNow may be called from any goroutine and
// never block.
type Conn struct {
	conn *websocket.Conn
	cfg  Config

	// Outgoing queue, guarded by qmu.
	qmu        sync.Mutex
	queue      [][]byte
	queued     int        // bytes in queue
	writing    bool       // a writer goroutine is draining queue
	inflight   int        // bytes the writer has taken and is writing
	dead       bool       // connection is closing; drop further sends
	msgsQueued uint64     // messages ever queued
	msgsSent   uint64     // of those, messages written (or given up on)
	drained    *sync.Cond // signalled when msgsSent reaches msgsQueued; nil until waited on

	pingTimer *time.Timer // guarded by qmu

	batch Batcher // nil: one write (and system call) per message
}

// Send queues a copy of msg and starts a writer if none runs. It returns
// how many bytes of messages wait for the socket, this one included, or
// -1 if the connection is closing and msg was dropped. The caller bounds
// that (a slow reader's output grows until the caller drops it with
// CloseNow).
func (w *Conn) Send(msg []byte) int {
	w.qmu.Lock()
	defer w.qmu.Unlock()
	if w.dead {
		return -1
	}
	w.queue = append(w.queue, bytes.Clone(msg)) // msg is the caller's again after Send
	w.queued += len(msg)
	w.msgsQueued++
	if !w.writing {
		w.writing = true
		go w.writeLoop()
	}
	return w.queued + w.inflight
}

// Close runs coder/websocket's closing handshake on its own goroutine: it
// waits for the peer's answer, which the reader goroutine reads.
func (w *Conn) Close(code int, reason string) {
	go w.conn.Close(websocket.StatusCode(code), reason)
}

// CloseNow stops sends and pings and drops the connection. The socket is
// closed on another goroutine: coder/websocket waits there for a write in
// progress to fail.
func (w *Conn) CloseNow() {
	w.markDead()
	go w.conn.CloseNow()
}

// writeLoop drains the queue, then exits, so idle clients hold no writer.
func (w *Conn) writeLoop() {
	for {
		w.qmu.Lock()
		w.inflight = 0
		if len(w.queue) == 0 || w.dead {
			w.writing = false
			w.queue = nil // give the backing array back while idle
			w.qmu.Unlock()
			return
		}
		// Take everything queued: it goes out as one batch (batch.go).
		// It still counts as waiting until it is written.
		msgs := w.queue
		w.queue = nil
		w.inflight, w.queued = w.queued, 0
		w.qmu.Unlock()

		err := w.writeAll(msgs)
		w.qmu.Lock()
		w.msgsSent += uint64(len(msgs))
		w.signalLocked()
		w.qmu.Unlock()
		if err != nil {
			// A failed or timed-out write leaves the connection unusable;
			// coder/websocket has closed it, which ends the reader too.
			w.markDead()
			w.conn.CloseNow()
			return
		}
	}
}

func (w *Conn) signalLocked() {
	if w.drained != nil {
		w.drained.Broadcast()
	}
}

// waitSent returns once the messages queued after the first mark of
// them have been written, or the connection is dead. The reader calls it
// after a message whose handling queued replies: coder/websocket answers
// a close frame, and shuts the socket, as soon as it reads it, so a reply
// to the message right before the client's close frame would otherwise
// be lost. Relays queue to other connections and wait for nothing.
func (w *Conn) waitSent(mark uint64) {
	w.qmu.Lock()
	defer w.qmu.Unlock()
	target := w.msgsQueued
	if target == mark {
		return
	}
	if w.drained == nil {
		w.drained = sync.NewCond(&w.qmu)
	}
	for w.msgsSent < target && !w.dead {
		w.drained.Wait()
	}
}

// queuedMark is the count waitSent compares with.
func (w *Conn) queuedMark() uint64 {
	w.qmu.Lock()
	defer w.qmu.Unlock()
	return w.msgsQueued
}

// markDead stops further sends and pings.
func (w *Conn) markDead() {
	w.qmu.Lock()
	w.dead = true
	w.queue, w.queued = nil, 0
	w.signalLocked()
	if w.pingTimer != nil {
		w.pingTimer.Stop()
	}
	w.qmu.Unlock()
}

// startPing schedules the first keep-alive ping.
func (w *Conn) startPing() {
	w.qmu.Lock()
	defer w.qmu.Unlock()
	if !w.dead {
		w.pingTimer = time.AfterFunc(w.cfg.PingInterval, w.ping)
	}
}

// ping sends one keep-alive ping and schedules the next. A peer that does
// not answer within the ping interval is dropped; there is no point in a
// close handshake with a peer that does not answer.
func (w *Conn) ping() {
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.PingInterval)
	err := w.conn.Ping(ctx)
	cancel()
	if err != nil {
		w.markDead()
		w.conn.CloseNow()
		return
	}
	w.qmu.Lock()
	defer w.qmu.Unlock()
	if !w.dead {
		w.pingTimer.Reset(w.cfg.PingInterval)
	}
}

// bufPool recycles read buffers: frames are parsed and copied out before
// the buffer is returned, and idle connections hold none.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readLoop reads messages until the connection ends. Between messages it
// waits in IdleWaiter, if the connection has one, on a shallow stack; the
// work for one message is in readMessage so that its larger frame is gone
// while the connection idles.
func (w *Conn) readLoop(ctx context.Context, h Handler) error {
	idle, _ := w.batch.(IdleWaiter)
	for {
		if idle != nil {
			if err := idle.WaitReadable(); err != nil {
				return err
			}
		}
		if err := w.readMessage(ctx, h); err != nil {
			return err
		}
	}
}

// readMessage reads one message and hands it to h.
func (w *Conn) readMessage(ctx context.Context, h Handler) error {
	typ, r, err := w.conn.Reader(ctx)
	if err != nil {
		return w.failed(err)
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(r); err != nil {
		return w.failed(err)
	}
	if typ == websocket.MessageText && !utf8.Valid(buf.Bytes()) {
		// RFC 6455 8.1 fails the connection; coder/websocket does not
		// check, so this does, as the event loop's decoder does. The
		// closing handshake runs here: this goroutine reads the answer.
		_ = w.conn.Close(statusInvalidData, "text message is not UTF-8")
		return errNotUTF8
	}
	mark := w.queuedMark()
	h.OnMessage(buf.Bytes())
	w.waitSent(mark)
	return nil
}

// statusInvalidData is the close status for a text message that is not
// UTF-8 (RFC 6455 7.4.1).
const statusInvalidData = 1007

// failed closes the connection with the status of a guard's refusal
// (leanConn): coder/websocket never saw the frame at fault.
func (w *Conn) failed(err error) error {
	var ce *wsloop.CloseError
	if errors.As(err, &ce) {
		_ = w.conn.Close(websocket.StatusCode(ce.Code), ce.Reason)
	}
	return err
}

// errNotUTF8 ends a connection that sent a text message that is not UTF-8.
var errNotUTF8 = errors.New("text message is not UTF-8")
