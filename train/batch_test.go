package train

import (
	"testing"

	"github.com/gomlx/gomlx/core/graph"
)

func TestBind(t *testing.T) {
	type batch struct{ A, B, C *graph.Node }
	a, b := new(graph.Node), new(graph.Node)
	got := Bind[batch]([]*graph.Node{a, b})
	if got.A != a || got.B != b || got.C != nil {
		t.Fatalf("Bind = %+v, want A, B set in order and C nil", got)
	}
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", name)
			}
		}()
		f()
	}
	mustPanic("too many inputs", func() { Bind[batch]([]*graph.Node{a, b, a, b}) })
	mustPanic("non-node field", func() {
		Bind[struct {
			A *graph.Node
			N int
		}]([]*graph.Node{a})
	})
	mustPanic("not a struct", func() { Bind[int](nil) })
}
