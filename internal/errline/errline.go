// Package errline turns errors and panic values into the one line reel prints: every error
// message a user sees is one line, naming what was wrong.
package errline

import (
	"fmt"
	"strings"
)

// First returns the first line of an error or of a recovered panic value (GoMLX reports graph
// errors by panicking with multi-line messages and stack traces; the first line says what
// happened). A nil value gives "".
func First(v any) string {
	var s string
	switch x := v.(type) {
	case nil:
		return ""
	case error:
		s = x.Error()
	case string:
		s = x
	default:
		s = fmt.Sprint(x)
	}
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimRight(s, "\r ")
}

// Fold joins the non-empty lines of s with "; ", for messages whose later lines matter (a YAML
// parser's list of problems) but must still print as one line.
func Fold(s string) string {
	var parts []string
	for _, l := range strings.Split(strings.ReplaceAll(s, "\r", ""), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}
