package serve

import (
	"fmt"
	"math"

	"github.com/reelml/reel/policy"
)

// Payload keys of observations and actions, as the vla-eval benchmarks name them.
const (
	keyImages      = "images"
	keyInstruction = "task_description"
	keyStates      = "states"
	keyActions     = "actions"
	keyMetadata    = "metadata" // of an action reply: {"warnings": [...]}
)

// ObservationPayload encodes an observation: images as PNG (8 bits per channel), the state as a
// float32 array under "states", the instruction under "task_description".
func ObservationPayload(obs policy.Observation) (map[string]any, error) {
	images := make(map[string]any, len(obs.Images))
	for name, im := range obs.Images {
		enc, err := EncodePNG(im.Pix, im.H, im.W)
		if err != nil {
			return nil, fmt.Errorf("observation image %q: %w", name, err)
		}
		images[name] = enc
	}
	p := map[string]any{keyImages: images, keyInstruction: obs.Instruction}
	if len(obs.State) > 0 {
		p[keyStates] = NewFloat32Array(obs.State)
	}
	return p, nil
}

// ParseObservation decodes an observation payload and checks it against the policy's spec, with
// no adaptation beyond resizing (see Adapter for camera mapping, state selection and the
// warnings). Images may be encoded images (png, jpeg, raw), uint8 or float HWC ndarrays, or bare
// PNG bytes; an image of another size than the spec's camera is fitted to it with the spec's
// resize mode, and cameras the policy does not read are ignored. The state may be an ndarray of
// any numeric dtype or a list of numbers ("state" is accepted for "states" and "instruction" for
// "task_description"). A zero spec accepts any cameras, sizes and state.
func ParseObservation(p map[string]any, spec policy.Spec) (policy.Observation, error) {
	a, err := NewAdapter(spec, AdaptOptions{})
	if err != nil {
		return policy.Observation{}, err
	}
	obs, _, err := a.Observation(p)
	return obs, err
}

// decodeImageValue decodes one camera's image into h×w×3 floats.
func decodeImageValue(v any) ([]float32, int, int, error) {
	switch x := v.(type) {
	case Image:
		return x.RGB()
	case NDArray:
		pix, h, w, err := hwcToRGB(x)
		if err != nil {
			return nil, 0, 0, err
		}
		if i := firstNonFinite(pix); i >= 0 {
			return nil, 0, 0, fmt.Errorf("value %d is %v, expected a finite number", i, pix[i])
		}
		return pix, h, w, nil
	case []byte:
		return decodeCompressed("png", x, nil)
	}
	return nil, 0, 0, fmt.Errorf("expected an encoded image, an [H, W, 3] ndarray or PNG bytes, got %s", typeName(v))
}

// floatValues converts an ndarray or a list of numbers into finite float32 values.
func floatValues(v any) ([]float32, error) {
	var out []float32
	switch x := v.(type) {
	case NDArray:
		var err error
		if out, err = x.Float32s(); err != nil {
			return nil, err
		}
	case []any:
		out = make([]float32, len(x))
		for i, e := range x {
			f, ok := asFloat(e)
			if !ok {
				return nil, fmt.Errorf("element %d is %s, expected a number", i, typeName(e))
			}
			out[i] = float32(f)
		}
	default:
		return nil, fmt.Errorf("expected an ndarray or a list of numbers, got %s", typeName(v))
	}
	if i := firstNonFinite(out); i >= 0 {
		return nil, fmt.Errorf("value %d is %v, expected a finite number", i, out[i])
	}
	return out, nil
}

func firstNonFinite(v []float32) int {
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return i
		}
	}
	return -1
}

// ActionPayload encodes one action as {"actions": float32 array [len(action)]}.
func ActionPayload(action []float32) map[string]any {
	return map[string]any{keyActions: NewFloat32Array(action)}
}

// ParseActions decodes an action payload: a one-dimensional "actions" array is one action, a
// two-dimensional [n, ActionDim] array a chunk of n actions (what servers that do not buffer
// chunks send).
func ParseActions(p map[string]any) ([][]float32, error) {
	v, ok := p[keyActions]
	if !ok {
		v, ok = p["action"]
	}
	if !ok {
		return nil, fmt.Errorf("action payload has no \"actions\" field")
	}
	vals, err := floatValues(v)
	if err != nil {
		return nil, fmt.Errorf("action.actions: %w", err)
	}
	shape := []int{len(vals)}
	if a, ok := v.(NDArray); ok {
		shape = a.Shape
	}
	switch {
	case len(shape) == 1 && shape[0] > 0:
		return [][]float32{vals}, nil
	case len(shape) == 2 && shape[0] > 0 && shape[1] > 0:
		out := make([][]float32, shape[0])
		for i := range out {
			out[i] = vals[i*shape[1] : (i+1)*shape[1]]
		}
		return out, nil
	}
	return nil, fmt.Errorf("action.actions has shape %v, expected [ActionDim] or [n, ActionDim]", shape)
}
