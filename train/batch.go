package train

import (
	"fmt"
	"reflect"

	"github.com/gomlx/gomlx/core/graph"
)

// Bind returns the typed batch B whose fields are a graph's positional inputs, in field order:
// the i-th input is B's i-th field. Every field of B is a *graph.Node; trailing fields beyond
// len(inputs) stay nil (inputs a batch carries only in some configurations, listed last). A Task
// binds its inputs once, at the top of Loss/EvalGraph, and reads them by name from then on; the
// host side (MicroBatch, EvalData.Batch) lists its tensors in the same order.
//
// Bind panics, as graph building does on a shape error, when B is not such a struct or when
// there are more inputs than fields: both are programming errors, not bad data.
func Bind[B any](inputs []*graph.Node) B {
	var b B
	v := reflect.ValueOf(&b).Elem()
	nodeType := reflect.TypeFor[*graph.Node]()
	if v.Kind() != reflect.Struct {
		panic(fmt.Sprintf("train.Bind: %s is not a struct", v.Type()))
	}
	if len(inputs) > v.NumField() {
		panic(fmt.Sprintf("train.Bind: %d inputs for the %d fields of %s", len(inputs), v.NumField(), v.Type()))
	}
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.Type != nodeType || !f.IsExported() {
			panic(fmt.Sprintf("train.Bind: field %s.%s is not an exported *graph.Node", v.Type(), f.Name))
		}
		if i < len(inputs) {
			v.Field(i).Set(reflect.ValueOf(inputs[i]))
		}
	}
	return b
}
