package iprange

import (
	"fmt"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   []string
		want string // fmt of the result, or "error"
	}{
		{[]string{" 10.0.0.0/8", "", "192.0.2.1"}, "[10.0.0.0/8 192.0.2.1/32]"},
		{[]string{"10.1.2.3/8"}, "[10.0.0.0/8]"},
		{[]string{"::1", "2001:db8::/32"}, "[::1/128 2001:db8::/32]"},
		{[]string{"::ffff:192.0.2.7"}, "[192.0.2.7/32]"},
		{nil, "[]"},
		{[]string{"10.0.0.0/33"}, "error"},
		{[]string{"example.com"}, "error"},
		{[]string{"1.2.3/8"}, "error"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		s := fmt.Sprint(got)
		if err != nil {
			s = "error"
		}
		if s != tt.want {
			t.Errorf("Parse(%q) = %s (%v), want %s", tt.in, s, err, tt.want)
		}
	}
}
