package main

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestSIGTERMClosesClientsAndExits runs the real binary: on SIGTERM every
// WebSocket gets status 1001 and the process exits within 5 s.
func TestSIGTERMClosesClientsAndExits(t *testing.T) {
	t.Parallel()
	p := startProcess(t, buildBinary(t), "-addr", "127.0.0.1:0", "-stun=")
	addr, cmd := p.listening(t, 10*time.Second), p.cmd

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	if _, _, err := conn.Read(ctx); err != nil { // hello
		t.Fatal(err)
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_, _, err = conn.Read(ctx)
	if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
		t.Errorf("close status %v (%v), want 1001", got, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit: %v", err)
		}
		t.Logf("exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatal("still running 5 s after SIGTERM")
	}
}
