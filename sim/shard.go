package sim

import (
	"strconv"
	"strings"
)

// ParseShard parses a shard spec "I/N" (shard I of N, 0 ≤ I < N); "" is the whole, shard 0 of
// 1. ok is false for anything else.
func ParseShard(s string) (i, n int, ok bool) {
	if s == "" {
		return 0, 1, true
	}
	a, b, cut := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !cut || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, false
	}
	return i, n, true
}
