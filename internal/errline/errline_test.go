package errline

import (
	"errors"
	"testing"
)

func TestFirstAndFold(t *testing.T) {
	for _, c := range []struct {
		in   any
		want string
	}{
		{nil, ""},
		{errors.New("bad shape\ngoroutine 1 [running]:\n..."), "bad shape"},
		{"panic text\r\nmore", "panic text"},
		{42, "42"},
	} {
		if got := First(c.in); got != c.want {
			t.Errorf("First(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := Fold(" a\n\n b \r\nc"); got != "a; b; c" {
		t.Errorf("Fold = %q", got)
	}
}
