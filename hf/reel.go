package hf

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"
)

// ReelPrefix starts the name of an exported tensor that has no transformers name: "reel." then
// the variable's scope path with "/" replaced by "." (the leading "/" dropped), e.g.
// reel.gemma_expert.model.layers.0.self_attn.q_proj.weights.
const ReelPrefix = "reel."

// TakeReelTensors removes the tensors named ReelPrefix+… from w and returns them as f32 tensors
// (stored shape, no transform) by reel variable path ("/gemma_expert/model/…"), so that the rest
// of w maps onto a transformers architecture.
func TakeReelTensors(w *Weights) (map[string]*tensors.Tensor, error) {
	out := map[string]*tensors.Tensor{}
	for _, name := range slices.Sorted(maps.Keys(w.Shapes)) {
		if !strings.HasPrefix(name, ReelPrefix) {
			continue
		}
		path := "/" + strings.ReplaceAll(strings.TrimPrefix(name, ReelPrefix), ".", "/")
		if t := w.Tensors[name]; t != nil {
			v, err := Float32Values(t)
			if err != nil {
				return nil, fmt.Errorf("%s: tensor %s: %w", w.Dir, name, err)
			}
			out[path] = tensors.FromFlatDataAndDimensions(v, t.Shape().Dimensions...)
		}
		delete(w.Shapes, name)
		delete(w.Tensors, name)
		delete(w.Source, name)
		delete(w.File, name)
	}
	return out, nil
}
