package serve

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/reelml/reel/sim"
)

// Payload keys of observations and actions, as the vla-eval benchmarks name them.
const (
	keyImages      = "images"
	keyInstruction = "task_description"
	keyStates      = "states"
	keyActions     = "actions"
)

// ObservationSpec is what a server accepts in an observation; zero fields accept anything.
type ObservationSpec struct {
	ImageSize int      // every image must be ImageSize×ImageSize×3
	StateDim  int      // "states" must hold StateDim values
	Cameras   []string // exactly these cameras must be present
}

// ObservationPayload encodes an observation: images as PNG (8 bits per channel), the state as a
// float32 array under "states", the instruction under "task_description".
func ObservationPayload(obs sim.Observation) (map[string]any, error) {
	images := make(map[string]any, len(obs.Images))
	for name, pix := range obs.Images {
		im, err := EncodePNG(pix, obs.Size, obs.Size)
		if err != nil {
			return nil, fmt.Errorf("observation image %q: %w", name, err)
		}
		images[name] = im
	}
	p := map[string]any{keyImages: images, keyInstruction: obs.Instruction}
	if len(obs.State) > 0 {
		p[keyStates] = NewFloat32Array(obs.State)
	}
	return p, nil
}

// ParseObservation decodes an observation payload and checks it against spec. Images may be
// encoded images (png, jpeg, raw), uint8 or float HWC ndarrays, or bare PNG bytes; the state
// may be an ndarray of any numeric dtype or a list of numbers ("state" is accepted for "states"
// and "instruction" for "task_description").
func ParseObservation(p map[string]any, spec ObservationSpec) (sim.Observation, error) {
	var obs sim.Observation
	rawImages := map[string]any{}
	if v, ok := p[keyImages]; ok {
		m, ok := v.(map[string]any)
		if !ok {
			return obs, fmt.Errorf("observation.images must be a map from camera name to image, got %s", typeName(v))
		}
		rawImages = m
	}
	for _, cam := range spec.Cameras {
		if _, ok := rawImages[cam]; !ok {
			return obs, fmt.Errorf("observation.images has no camera %q (expected %s)", cam, strings.Join(spec.Cameras, ", "))
		}
	}
	names := make([]string, 0, len(rawImages))
	for name := range rawImages {
		if len(spec.Cameras) > 0 && !slices.Contains(spec.Cameras, name) {
			return obs, fmt.Errorf("observation.images has unexpected camera %q (expected %s)", name, strings.Join(spec.Cameras, ", "))
		}
		names = append(names, name)
	}
	slices.Sort(names)
	obs.Images = make(map[string][]float32, len(names))
	obs.Size = spec.ImageSize
	for _, name := range names {
		pix, h, w, err := decodeImageValue(rawImages[name])
		if err != nil {
			return obs, fmt.Errorf("observation.images.%s: %w", name, err)
		}
		switch {
		case spec.ImageSize > 0 && (h != spec.ImageSize || w != spec.ImageSize):
			return obs, fmt.Errorf("observation.images.%s is %d×%d, expected %d×%d", name, h, w, spec.ImageSize, spec.ImageSize)
		case h != w:
			return obs, fmt.Errorf("observation.images.%s is %d×%d, expected a square image", name, h, w)
		case obs.Size > 0 && h != obs.Size:
			return obs, fmt.Errorf("observation.images.%s is %d×%d, but other cameras are %d×%d", name, h, w, obs.Size, obs.Size)
		}
		obs.Size = h
		obs.Images[name] = pix
	}

	key := keyInstruction
	if _, ok := p[key]; !ok {
		key = "instruction"
	}
	if v, ok := p[key]; ok && v != nil {
		s, ok := v.(string)
		if !ok {
			return obs, fmt.Errorf("observation.%s must be a string, got %s", key, typeName(v))
		}
		obs.Instruction = s
	}

	key = keyStates
	if _, ok := p[key]; !ok {
		key = "state"
	}
	if v, ok := p[key]; ok && v != nil {
		state, err := floatValues(v)
		if err != nil {
			return obs, fmt.Errorf("observation.%s: %w", key, err)
		}
		obs.State = state
	}
	if spec.StateDim > 0 && len(obs.State) != spec.StateDim {
		return obs, fmt.Errorf("observation.states has %d values, expected %d", len(obs.State), spec.StateDim)
	}
	return obs, nil
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

// oneLine folds a message onto one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
