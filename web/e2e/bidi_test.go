package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// bidi is a minimal WebDriver BiDi client (https://w3c.github.io/webdriver-bidi/),
// enough to drive Firefox: commands are {id, method, params} over one
// WebSocket, answered by {id, type: "success", result} or {id, type:
// "error", error, message}; events come as {type: "event", method, params}.
// The tests use five commands (session.new, session.subscribe,
// browsingContext.getTree, browsingContext.navigate, script.evaluate) and
// one event (log.entryAdded), so this file is the whole
// protocol layer: no Node.js, no npm, no geckodriver. docs/client.md says
// why it is ours and not puppeteer's.
type bidi struct {
	ws      *websocket.Conn
	onEvent func(method string, params json.RawMessage)

	mu      sync.Mutex
	next    int
	waiting map[int]chan bidiMessage
	err     error         // why the connection ended
	done    chan struct{} // closed when the reader stops
}

type bidiMessage struct {
	ID      int             `json:"id"`
	Type    string          `json:"type"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   string          `json:"error"`
	Message string          `json:"message"`
}

// dialBiDi connects to a BiDi endpoint (ws://host:port/session). onEvent
// runs on the reader goroutine for every event; it must not block.
func dialBiDi(ctx context.Context, url string, onEvent func(string, json.RawMessage)) (*bidi, error) {
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	ws.SetReadLimit(16 << 20) // a script result can be a whole page's state
	b := &bidi{ws: ws, onEvent: onEvent, waiting: map[int]chan bidiMessage{}, done: make(chan struct{})}
	go b.read()
	return b, nil
}

// read hands every reply to its waiting command, and events to onEvent.
// Its context never expires: with coder/websocket an expired read context
// closes the connection.
func (b *bidi) read() {
	defer close(b.done)
	for {
		_, data, err := b.ws.Read(context.Background())
		if err != nil {
			b.mu.Lock()
			b.err = err
			b.mu.Unlock()
			return
		}
		var m bidiMessage
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		if m.Type == "event" {
			if b.onEvent != nil {
				b.onEvent(m.Method, m.Params)
			}
			continue
		}
		b.mu.Lock()
		ch := b.waiting[m.ID]
		delete(b.waiting, m.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- m // buffered: never blocks the reader
		}
	}
}

// call sends one command and waits for its result, or for ctx.
func (b *bidi) call(ctx context.Context, method string, params any) (json.RawMessage, error) {
	if params == nil {
		params = struct{}{}
	}
	ch := make(chan bidiMessage, 1)
	b.mu.Lock()
	b.next++
	id := b.next
	b.waiting[id] = ch
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.waiting, id)
		b.mu.Unlock()
	}()
	msg, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	// Its own timeout: a step's deadline expiring mid-write must not close
	// the connection (coder/websocket closes it when a write's context ends).
	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.ws.Write(wctx, websocket.MessageText, msg); err != nil {
		return nil, fmt.Errorf("%s: send: %w", method, err)
	}
	select {
	case m := <-ch:
		if m.Type == "error" {
			return nil, fmt.Errorf("%s: %s: %s", method, m.Error, m.Message)
		}
		return m.Result, nil
	case <-b.done:
		b.mu.Lock()
		defer b.mu.Unlock()
		return nil, fmt.Errorf("%s: connection closed: %w", method, b.err)
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// evaluate runs a JavaScript expression in the browsing context, awaiting
// it if it is a promise, and returns JSON.stringify of its value (BiDi's own
// typed "remote values" are not worth decoding here).
func (b *bidi) evaluate(ctx context.Context, browsingContext, js string) (string, error) {
	res, err := b.call(ctx, "script.evaluate", map[string]any{
		"expression":      jsonOf(js),
		"target":          map[string]string{"context": browsingContext},
		"awaitPromise":    true,
		"resultOwnership": "none",
	})
	if err != nil {
		return "", err
	}
	var r struct {
		Type   string `json:"type"`
		Result struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"result"`
		ExceptionDetails struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return "", fmt.Errorf("script.evaluate: %w", err)
	}
	if r.Type == "exception" {
		return "", errors.New("script.evaluate: " + r.ExceptionDetails.Text)
	}
	if r.Result.Type != "string" {
		return "", fmt.Errorf("script.evaluate: result of type %q", r.Result.Type)
	}
	return r.Result.Value, nil
}

// jsonOf wraps an expression so that it yields the JSON text of its
// (awaited) value, "null" for undefined. The Chromium side uses it too.
func jsonOf(js string) string {
	return "(async () => JSON.stringify(await (" + js + ")) ?? 'null')()"
}

func (b *bidi) close() {
	_ = b.ws.Close(websocket.StatusNormalClosure, "")
	<-b.done
}
