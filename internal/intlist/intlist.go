// Package intlist parses the comma-separated integer lists that command-line flags take
// ("4,32,64", "16,1"): the one parser of the CLI and the benchmarks.
package intlist

import (
	"fmt"
	"strconv"
	"strings"
)

// Parse parses s, a comma-separated list of integers (spaces around each allowed), each of
// which ok accepts (nil accepts any). An item that is not an integer, or that ok refuses, is an
// error `"ITEM" is not WANT` (the item as written); the empty string is one empty item.
func Parse(s string, ok func(int) bool, want string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || (ok != nil && !ok(n)) {
			return nil, fmt.Errorf("%q is not %s", f, want)
		}
		out = append(out, n)
	}
	return out, nil
}
