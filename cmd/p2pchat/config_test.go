package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseConfigFlagsAndEnv(t *testing.T) {
	t.Parallel()
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c config)
	}{
		{"defaults", nil, nil, func(t *testing.T, c config) {
			if c.addr != ":8080" || c.logFormat != "text" || c.server.Signaling.ReadLimit != 64<<10 || len(c.server.AllowOrigins) != 0 {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{"env twin", nil, map[string]string{"P2PCHAT_ADDR": "127.0.0.1:9000", "P2PCHAT_READ_LIMIT": "1024", "P2PCHAT_PING_INTERVAL": "5s"}, func(t *testing.T, c config) {
			if c.addr != "127.0.0.1:9000" || c.server.Signaling.ReadLimit != 1024 || c.server.Signaling.PingInterval != 5*time.Second {
				t.Errorf("env not applied: %+v", c)
			}
		}},
		{"flag beats env", []string{"-addr", ":7000"}, map[string]string{"P2PCHAT_ADDR": ":9000"}, func(t *testing.T, c config) {
			if c.addr != ":7000" {
				t.Errorf("addr = %q", c.addr)
			}
		}},
		{"origins list", []string{"-allow-origin", " a.example , *.b.example ,"}, nil, func(t *testing.T, c config) {
			if !reflect.DeepEqual(c.server.AllowOrigins, []string{"a.example", "*.b.example"}) {
				t.Errorf("origins = %q", c.server.AllowOrigins)
			}
		}},
		{"msg-rate 0 turns the limit off", []string{"-msg-rate", "0"}, nil, func(t *testing.T, c config) {
			if c.server.Signaling.MsgRate >= 0 {
				t.Errorf("MsgRate = %v, want negative (off)", c.server.Signaling.MsgRate)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	t.Parallel()
	noEnv := func(string) string { return "" }
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"-log-format", "xml"}, want: "log-format"},
		{args: []string{"-no-such-flag"}, want: "no-such-flag"},
		{args: []string{"stray"}, want: "stray"},
		{args: []string{"-read-limit", "lots"}, want: "read-limit"},
		{env: map[string]string{"P2PCHAT_SEND_QUEUE_BYTES": "many"}, want: "P2PCHAT_SEND_QUEUE_BYTES"},
	} {
		getenv := noEnv
		if tt.env != nil {
			getenv = func(k string) string { return tt.env[k] }
		}
		_, err := parseConfig(tt.args, getenv)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("args %q env %v: error %v, want one naming %q", tt.args, tt.env, err, tt.want)
		}
	}
}

func TestEnvName(t *testing.T) {
	t.Parallel()
	if got := envName("read-limit"); got != "P2PCHAT_READ_LIMIT" {
		t.Errorf("envName = %q", got)
	}
}
