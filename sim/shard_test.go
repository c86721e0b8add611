package sim

import "testing"

func TestParseShard(t *testing.T) {
	for s, want := range map[string][3]int{"": {0, 1, 1}, "0/1": {0, 1, 1}, "2/3": {2, 3, 1}, "3/3": {0, 0, 0}, "-1/2": {0, 0, 0},
		"1": {0, 0, 0}, "a/2": {0, 0, 0}, "1/0": {0, 0, 0}} {
		i, n, ok := ParseShard(s)
		if got := [3]int{i, n, map[bool]int{true: 1}[ok]}; got != want {
			t.Errorf("ParseShard(%q) = %v, want %v", s, got, want)
		}
	}
}
