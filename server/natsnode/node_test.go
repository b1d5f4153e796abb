package natsnode

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func start(t *testing.T, o Options) *Node {
	t.Helper()
	if o.StoreDir == "" {
		o.StoreDir = t.TempDir()
	}
	n, err := Start(o, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Shutdown)
	return n
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Alone, the node serves JetStream to the in-process client, and its
// loopback client port wants the password only that client has.
func TestAloneServesJetStreamInProcessOnly(t *testing.T) {
	t.Parallel()
	n := start(t, Options{})
	if n.Servers() != 1 {
		t.Errorf("servers %d, want 1", n.Servers())
	}
	nc, err := nats.Connect("", n.Connect()...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}

	url := n.srv.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Errorf("client listener %s, want loopback", url)
	}
	for _, opts := range [][]nats.Option{nil, {nats.UserInfo(clientUser, "guess")}} {
		if c, err := nats.Connect(url, append(opts, nats.NoReconnect())...); err == nil {
			c.Close()
			t.Errorf("connected to the client port with %d options", len(opts))
		}
	}
}

func TestStartRefusesBadAddresses(t *testing.T) {
	t.Parallel()
	for _, o := range []Options{
		{Routes: []string{"127.0.0.1:6222"}},
		{Cluster: "nope"},
		{Cluster: "127.0.0.1:0"},
		{Cluster: "127.0.0.1:70000"},
		{Cluster: freeAddr(t), Routes: []string{"127.0.0.1"}},
	} {
		o.StoreDir = t.TempDir()
		if n, err := Start(o, quiet()); err == nil {
			n.Shutdown()
			t.Errorf("%+v accepted", o)
		}
	}
}

// A cluster port in use fails Start at once, not after its timeout.
func TestStartFailsOnTakenPort(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	began := time.Now()
	n, err := Start(Options{Cluster: ln.Addr().String(), StoreDir: t.TempDir()}, quiet())
	if err == nil {
		n.Shutdown()
		t.Fatal("started on a taken port")
	}
	if d := time.Since(began); d > readyTimeout/2 {
		t.Errorf("took %v to fail", d)
	}
	t.Logf("%v", err)
}

// Routes carry the password: a server with the wrong one gets no route.
func TestRoutesWantThePassword(t *testing.T) {
	t.Parallel()
	a := freeAddr(t)
	start(t, Options{Cluster: a, User: "p2pchat", Password: "secret"})
	wrong := start(t, Options{Cluster: freeAddr(t), Routes: []string{a}, User: "p2pchat", Password: "wrong"})
	right := start(t, Options{Cluster: freeAddr(t), Routes: []string{"nats://" + a}, User: "p2pchat", Password: "secret"})
	if right.Servers() != 2 {
		t.Errorf("servers %d, want 2", right.Servers())
	}
	deadline := time.Now().Add(10 * time.Second)
	for right.srv.NumRoutes() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no route with the right password")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := wrong.srv.NumRoutes(); got != 0 {
		t.Errorf("%d routes with the wrong password", got)
	}
}

func TestDefaultNameHasNoDots(t *testing.T) {
	t.Parallel()
	for _, port := range []int{0, 6222} {
		name := defaultName(port)
		if strings.ContainsAny(name, ". *>") || !strings.HasPrefix(name, "p2pchat-") {
			t.Errorf("defaultName(%d) = %q", port, name)
		}
		if port != 0 && !strings.HasSuffix(name, fmt.Sprint("-", port)) {
			t.Errorf("defaultName(%d) = %q: no port", port, name)
		}
	}
}
