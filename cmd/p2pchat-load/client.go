package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// readLimit bounds one server message. A full presence list of 1,000 names
// is the largest thing the server sends; 1 MiB leaves ample room.
const readLimit = 1 << 20

// dialer opens WebSocket connections, spreading them over several loopback
// source addresses. One source address has only ~28k ephemeral ports
// towards one server address, so 100k connections need at least four.
type dialer struct {
	url        string
	host, path string // of url, for rawDial
	tutorial   bool   // accept any greeting, as the tutorial's clients do
	clients    []*http.Client
	netDialers []*net.Dialer // the clients' own, for rawDial
	next       atomic.Uint64
}

// newDialer checks that target is a loopback WebSocket URL and prepares one
// HTTP client per source address 127.0.0.(2+srcFirst) …
// 127.0.0.(1+srcFirst+srcAddrs). With
// srcAddrs 0, or an IPv6 target, the kernel picks the source address.
// With tutorial, any first message counts as the greeting: the tutorial's
// server sends the text "Hello world".
func newDialer(target string, srcFirst, srcAddrs int, timeout time.Duration, tutorial bool) (*dialer, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("parsing url: %w", err)
	}
	if u.Scheme != "ws" && u.Scheme != "http" {
		return nil, fmt.Errorf("url %q: only ws:// to a loopback address is allowed", target)
	}
	ip, err := loopbackIP(u.Hostname())
	if err != nil {
		return nil, err
	}
	if srcAddrs < 0 || srcFirst < 0 || srcFirst+srcAddrs > 250 {
		return nil, fmt.Errorf("source addresses: %d from %d do not fit in 127.0.0.2-252", srcAddrs, srcFirst)
	}
	d := &dialer{url: target, host: u.Host, path: u.RequestURI(), tutorial: tutorial}
	if ip.To4() == nil || srcAddrs == 0 {
		d.addSource(nil, timeout)
		return d, nil
	}
	for i := range srcAddrs {
		d.addSource(&net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+srcFirst+i))}, timeout)
	}
	return d, nil
}

// addSource adds a client dialing from local (nil: the kernel picks).
func (d *dialer) addSource(local *net.TCPAddr, timeout time.Duration) {
	nd := &net.Dialer{Timeout: timeout}
	if local != nil {
		nd.LocalAddr = local
	}
	d.netDialers = append(d.netDialers, nd)
	d.clients = append(d.clients, &http.Client{Transport: &upgradeTransport{dialer: nd}})
}

// loopbackIP resolves host and refuses anything that is not loopback: the
// load tool must never send traffic off the machine.
func loopbackIP(host string) (net.IP, error) {
	if host == "localhost" {
		return net.IPv4(127, 0, 0, 1), nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("host %q: only loopback addresses (127.0.0.0/8, ::1) are allowed", host)
	}
	return ip, nil
}

// upgradeTransport is the smallest http.RoundTripper a WebSocket dial
// needs: dial, write the upgrade request, read the response, hand over the
// connection. net/http's Transport starts two goroutines per connection
// and routes the handshake through them; on a machine where the load tool
// shares two cores with the server, that overhead would be measured as a
// lower login rate.
type upgradeTransport struct{ dialer *net.Dialer }

func (t *upgradeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	conn, err := t.dialer.DialContext(req.Context(), "tcp", req.URL.Host)
	if err != nil {
		return nil, err
	}
	if dl, ok := req.Context().Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("writing upgrade request: %w", err)
	}
	br := bufio.NewReaderSize(conn, 1024)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("reading upgrade response: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	if resp.StatusCode != http.StatusSwitchingProtocols {
		resp.Body = &upgradedConn{r: io.MultiReader(resp.Body), c: conn}
		return resp, nil
	}
	resp.Body = &upgradedConn{r: br, c: conn}
	return resp, nil
}

// upgradedConn is the response body of an upgrade: the connection itself,
// read through the buffer that may hold the first frames already.
type upgradedConn struct {
	r io.Reader
	c net.Conn
}

func (u *upgradedConn) Read(p []byte) (int, error)  { return u.r.Read(p) }
func (u *upgradedConn) Write(p []byte) (int, error) { return u.c.Write(p) }
func (u *upgradedConn) Close() error                { return u.c.Close() }

// dial opens one connection and reads the server's hello.
func (d *dialer) dial(ctx context.Context) (*websocket.Conn, error) {
	hc := d.clients[d.next.Add(1)%uint64(len(d.clients))]
	c, resp, err := websocket.Dial(ctx, d.url, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			body, _ := io.ReadAll(resp.Body)
			return nil, fmt.Errorf("dialing: HTTP %d %s", resp.StatusCode, bytes.TrimSpace(body))
		}
		return nil, fmt.Errorf("dialing: %w", err)
	}
	c.SetReadLimit(readLimit)
	msg, err := readMsg(ctx, c, nil)
	if err := checkGreeting(msg, err, d.tutorial); err != nil {
		c.CloseNow()
		return nil, err
	}
	return c, nil
}

// checkGreeting checks the first read of a connection, msg and err.
func checkGreeting(msg []byte, err error, tutorial bool) error {
	if err != nil {
		return fmt.Errorf("reading hello: %w", err)
	}
	if !isGreeting(msg, tutorial) {
		return fmt.Errorf("%w: first message %.80q, want hello", errUnexpected, msg)
	}
	return nil
}

// isGreeting reports whether msg may open a connection: p2pchat's hello,
// or with tutorial anything (the tutorial's server sends "Hello world").
func isGreeting(msg []byte, tutorial bool) bool {
	return tutorial || string(field(msg, "type")) == "hello"
}

var (
	errUnexpected  = errors.New("unexpected message")
	errLoginFailed = errors.New("login failed")
)

// login logs c in as name and waits for the reply.
func login(ctx context.Context, c *websocket.Conn, name string, presence bool) error {
	if err := c.Write(ctx, websocket.MessageText, loginMessage(name, presence)); err != nil {
		return fmt.Errorf("sending login: %w", err)
	}
	msg, err := readMsg(ctx, c, nil)
	if err != nil {
		return fmt.Errorf("reading login reply: %w", err)
	}
	return checkLoginReply(msg)
}

// readMsg reads one message into buf (reused if large enough).
func readMsg(ctx context.Context, c *websocket.Conn, buf []byte) ([]byte, error) {
	_, r, err := c.Reader(ctx)
	if err != nil {
		return buf, err
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// field returns the string value of the first "key":"…" in msg, or nil.
// The load tool controls every payload it sends, so a first-match scan is
// exact for the messages it checks, and far cheaper than decoding JSON on
// a machine where the tool competes with the server for CPU.
func field(msg []byte, key string) []byte {
	i := indexKey(msg, key)
	if i < 0 || i >= len(msg) || msg[i] != '"' {
		return nil
	}
	j := bytes.IndexByte(msg[i+1:], '"')
	if j < 0 {
		return nil
	}
	return msg[i+1 : i+1+j]
}

// intField returns the integer value of the first "key":N in msg.
func intField(msg []byte, key string) (int64, bool) {
	i := indexKey(msg, key)
	if i < 0 {
		return 0, false
	}
	j := i
	for j < len(msg) && (msg[j] >= '0' && msg[j] <= '9' || msg[j] == '-') {
		j++
	}
	n, err := strconv.ParseInt(string(msg[i:j]), 10, 64)
	return n, err == nil
}

// indexKey returns the index just after `"key":` in msg, or -1.
func indexKey(msg []byte, key string) int {
	var pat [32]byte
	p := append(pat[:0], '"')
	p = append(p, key...)
	p = append(p, '"', ':')
	i := bytes.Index(msg, p)
	if i < 0 {
		return -1
	}
	return i + len(p)
}

// isTimeout tells whether err is a deadline rather than a refusal.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// errorKinds are the categories every mode counts. Each is an error: a
// clean run has all of them at zero.
var errorKinds = []string{"dial", "login-failed", "timeout", "unexpected", "server-error", "send", "closed", "lost",
	"stalled-login", "flooder-login", "flooder-reply", "flooder-write", "stalled-not-cut", "rss-limit"}

// counters counts errors by kind and prints the first few of each, so a
// failing run shows what went wrong without flooding the terminal.
type counters struct {
	n      map[string]*atomic.Int64
	mu     sync.Mutex
	shown  map[string]int
	output io.Writer
}

const examplesPerKind = 3

func newCounters() *counters {
	c := &counters{n: map[string]*atomic.Int64{}, shown: map[string]int{}, output: os.Stderr}
	for _, k := range errorKinds {
		c.n[k] = new(atomic.Int64)
	}
	return c
}

// add counts n errors of kind, printing err as an example.
func (c *counters) add(kind string, n int64, err error) {
	c.n[kind].Add(n)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shown[kind] < examplesPerKind && err != nil {
		c.shown[kind]++
		fmt.Fprintf(c.output, "error %s: %v\n", kind, err)
	}
}

// classify counts err from a dial or login under the right kind.
func (c *counters) classify(err error) {
	switch {
	case isTimeout(err):
		c.add("timeout", 1, err)
	case errors.Is(err, errLoginFailed):
		c.add("login-failed", 1, err)
	case errors.Is(err, errUnexpected):
		c.add("unexpected", 1, err)
	default:
		c.add("dial", 1, err)
	}
}

func (c *counters) snapshot() (map[string]int64, int64) {
	m := make(map[string]int64, len(c.n))
	var total int64
	for k, v := range c.n {
		m[k] = v.Load()
		total += m[k]
	}
	return m, total
}

// connectAndLogin dials, then logs in as name, each step bounded by
// timeout; it returns how long the connect and the login took. Any error
// has already closed the connection.
func (d *dialer) connectAndLogin(ctx context.Context, timeout time.Duration, name string, presence bool) (c *websocket.Conn, connect, loggedIn time.Duration, err error) {
	opCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t0 := time.Now()
	c, err = d.dial(opCtx)
	if err != nil {
		return nil, 0, 0, err
	}
	t1 := time.Now()
	if err := login(opCtx, c, name, presence); err != nil {
		c.CloseNow()
		return nil, 0, 0, err
	}
	return c, t1.Sub(t0), time.Since(t1), nil
}
