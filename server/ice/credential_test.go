package ice

import (
	"errors"
	"testing"
	"time"
)

// The expected values were computed outside Go, with
//
//	printf '%s' "$username" | openssl dgst -sha1 -hmac north-wind -binary | base64
//
// so a bug shared by Credential and a Go-written check cannot hide.
func TestCredentialVector(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, username, want string
	}{
		{"ascii", "1700000000:alice", "Oko4dt8u/EbTRjRUJWQDFm/zTCc="},
		{"utf-8 name", "1700003600:小明", "impD9a2Kls76Ik59BEqtivQ7Kgs="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Credential("north-wind", tt.username); got != tt.want {
				t.Errorf("Credential(%q) = %q, want %q", tt.username, got, tt.want)
			}
			if !Verify("north-wind", tt.username, tt.want) {
				t.Error("Verify refused the correct credential")
			}
			if Verify("south-wind", tt.username, tt.want) {
				t.Error("Verify accepted a credential made with another secret")
			}
		})
	}
}

func TestUsername(t *testing.T) {
	t.Parallel()
	if got := Username(time.Unix(1700000000, 0), "alice"); got != "1700000000:alice" {
		t.Errorf("Username = %q", got)
	}
}

func TestParseUsername(t *testing.T) {
	t.Parallel()
	now := time.Unix(1700000000, 0)
	tests := []struct {
		in       string
		wantName string
		wantErr  error // nil: no error; errAny: some error
	}{
		{"1700000060:alice", "alice", nil},
		{"1700000060:a:b", "a:b", nil},
		{"1700000060:", "", nil},
		{"1700000000:alice", "", ErrExpired}, // expiry == now is expired
		{"1699999999:alice", "", ErrExpired},
		{"alice", "", errAny},
		{"x:alice", "", errAny},
		{"", "", errAny},
	}
	for _, tt := range tests {
		_, name, err := ParseUsername(tt.in, now)
		switch {
		case tt.wantErr == nil && err != nil:
			t.Errorf("ParseUsername(%q) error %v", tt.in, err)
		case tt.wantErr == nil && name != tt.wantName:
			t.Errorf("ParseUsername(%q) name %q, want %q", tt.in, name, tt.wantName)
		case tt.wantErr == errAny && err == nil:
			t.Errorf("ParseUsername(%q) accepted", tt.in)
		case tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
			t.Errorf("ParseUsername(%q) error %v, want %v", tt.in, err, tt.wantErr)
		}
	}
}

var errAny = errors.New("any error")
