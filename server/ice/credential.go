package ice

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // HMAC-SHA1 is what the TURN REST scheme and every TURN server use.
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Username returns the TURN REST username for name, valid until expiry:
// "<unix seconds>:<name>".
func Username(expiry time.Time, name string) string {
	return strconv.FormatInt(expiry.Unix(), 10) + ":" + name
}

// Credential returns the TURN REST password for username:
// base64(HMAC-SHA1(secret, username)) with standard padding.
func Credential(secret, username string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username)) // a hash.Hash never returns an error
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ErrExpired is returned by ParseUsername for a username whose expiry has
// passed.
var ErrExpired = errors.New("turn credential expired")

// ParseUsername splits a TURN REST username into its expiry and name and
// refuses it if the expiry is not after now. The name is everything after
// the first colon, so login names that contain colons survive intact.
func ParseUsername(username string, now time.Time) (expiry time.Time, name string, err error) {
	ts, name, ok := strings.Cut(username, ":")
	if !ok {
		return time.Time{}, "", fmt.Errorf("parsing turn username %q: no colon", username)
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("parsing turn username expiry %q: %w", ts, err)
	}
	expiry = time.Unix(secs, 0)
	if !expiry.After(now) {
		return expiry, name, fmt.Errorf("turn username %q: %w", username, ErrExpired)
	}
	return expiry, name, nil
}

// Verify reports whether credential is the correct password for username
// under secret, comparing in constant time. It does not check the expiry.
func Verify(secret, username, credential string) bool {
	return hmac.Equal([]byte(Credential(secret, username)), []byte(credential))
}
