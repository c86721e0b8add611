package serve

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/reelml/reel/internal/intlist"
	"github.com/reelml/reel/policy"
)

// AdaptOptions declare how a benchmark's observations and actions are fitted to a policy that was
// trained on another robot or another simulator: which benchmark camera feeds which policy
// camera, how images of other sizes are resized, which state values the policy reads and how many
// action values the benchmark takes. The zero value adapts nothing beyond resizing images with
// the spec's mode.
type AdaptOptions struct {
	// Cameras maps a benchmark camera (a key of observation.images, e.g. "agentview") to the
	// policy camera it feeds ("scene"). A benchmark camera named like a policy camera feeds it
	// unless another camera is mapped to it; benchmark cameras that feed nothing are ignored.
	Cameras map[string]string
	// Resize is the mode images of another size are fitted with (policy.ResizePad, ...); ""
	// keeps the spec's.
	Resize string
	// StateDims picks the policy's state from the benchmark's: the values at these indices, in
	// this order, zero-padded to Spec.StateDim. Nil means the benchmark's state must have
	// Spec.StateDim values; an observation without a state then feeds zeros, with a warning.
	StateDims []int
	// NoState feeds the policy a zero state whatever the benchmark sends, and does not ask the
	// benchmark for one.
	NoState bool
	// ActionDim is the number of action values the benchmark takes: the policy's actions (in
	// raw units, after unnormalisation) are zero-padded or truncated to it, as openpi pads pi0's
	// actions to the robot's. 0 keeps Spec.ActionDim.
	ActionDim int
}

// ParseAdaptOptions reads AdaptOptions as 'reel serve' takes them: cameras as ParseCameraMap,
// stateDims as ParseStateDims ("" keeps the spec's state); errors name the flag (--camera,
// --state-dims).
func ParseAdaptOptions(cameras []string, resize, stateDims string, actionDim int) (AdaptOptions, error) {
	o := AdaptOptions{Resize: resize, ActionDim: actionDim}
	var err error
	if o.Cameras, err = ParseCameraMap(cameras); err != nil {
		return o, fmt.Errorf("--camera: %w", err)
	}
	if stateDims != "" {
		if o.StateDims, o.NoState, err = ParseStateDims(stateDims); err != nil {
			return o, fmt.Errorf("--state-dims: %w", err)
		}
	}
	return o, nil
}

// ParseCameraMap parses camera mappings of the form BENCHMARK=POLICY ("agentview=scene").
func ParseCameraMap(pairs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range pairs {
		bench, pol, ok := strings.Cut(p, "=")
		bench, pol = strings.TrimSpace(bench), strings.TrimSpace(pol)
		if !ok || bench == "" || pol == "" {
			return nil, fmt.Errorf("camera mapping %q is not BENCHMARK_CAMERA=POLICY_CAMERA (e.g. agentview=scene)", p)
		}
		if prev, dup := out[bench]; dup && prev != pol {
			return nil, fmt.Errorf("camera %q is mapped twice (to %q and %q)", bench, prev, pol)
		}
		out[bench] = pol
	}
	return out, nil
}

// ParseStateDims parses a comma-separated list of state indices ("0,1,2,6"); "none" selects
// AdaptOptions.NoState (nil indices, none = true).
func ParseStateDims(s string) (dims []int, none bool, err error) {
	s = strings.TrimSpace(s)
	if s == "none" {
		return nil, true, nil
	}
	dims, err = intlist.Parse(s, func(n int) bool { return n >= 0 }, "an index ≥ 0 (expected e.g. 0,1,2,6 or none)")
	if err != nil {
		return nil, false, fmt.Errorf("state dims %q: %w", s, err)
	}
	return dims, false, nil
}

// Adapter fits benchmark observations to a policy's spec and the policy's actions to the
// benchmark, as AdaptOptions declare, and describes what it expects in the vla-eval harness's
// terms (the hello reply's observation_spec, action_spec and observation_params).
type Adapter struct {
	spec   policy.Spec
	opt    AdaptOptions
	resize string
	// feeds maps each policy camera to the benchmark camera that feeds it.
	feeds map[string]string
}

// CheckAdapter checks opt against the spec of the policy in checkpoint dir (its policy.Spec
// file), before the policy is loaded; a dir without a readable spec passes.
func CheckAdapter(dir string, opt AdaptOptions) error {
	spec, err := policy.ReadSpec(filepath.Join(dir, policy.SpecFile))
	if err != nil {
		return nil
	}
	_, err = NewAdapter(spec, opt)
	return err
}

// NewAdapter checks opt against spec. A zero spec (no cameras) accepts any observation as it is.
func NewAdapter(spec policy.Spec, opt AdaptOptions) (*Adapter, error) {
	resize := spec.Resize
	if opt.Resize != "" {
		resize = opt.Resize
	}
	resize, err := policy.ParseResizeMode(resize)
	if err != nil {
		return nil, fmt.Errorf("adapt: %w", err)
	}
	a := &Adapter{spec: spec, opt: opt, resize: resize, feeds: map[string]string{}}
	for _, c := range spec.Cameras {
		a.feeds[c.Name] = c.Name
	}
	for _, bench := range slices.Sorted(maps.Keys(opt.Cameras)) {
		pol := opt.Cameras[bench]
		if _, ok := spec.Camera(pol); !ok {
			return nil, fmt.Errorf("adapt: camera %s=%s: the policy has no camera %q (it reads %s)", bench, pol, pol, strings.Join(spec.CameraNames(), ", "))
		}
		if prev := a.feeds[pol]; prev != pol {
			return nil, fmt.Errorf("adapt: cameras %q and %q are both mapped to the policy's camera %q", prev, bench, pol)
		}
		a.feeds[pol] = bench
	}
	switch {
	case opt.NoState && opt.StateDims != nil:
		return nil, fmt.Errorf("adapt: state dims are picked and none at once")
	case len(opt.StateDims) > spec.StateDim && len(spec.Cameras) > 0:
		return nil, fmt.Errorf("adapt: %d state dims picked (%v), the policy reads %d state values", len(opt.StateDims), opt.StateDims, spec.StateDim)
	case opt.ActionDim < 0:
		return nil, fmt.Errorf("adapt: action dim must be ≥ 0, got %d", opt.ActionDim)
	}
	for _, d := range opt.StateDims {
		if d < 0 {
			return nil, fmt.Errorf("adapt: state dim %d is negative", d)
		}
	}
	return a, nil
}

// Spec is the policy's spec.
func (a *Adapter) Spec() policy.Spec { return a.spec }

// ActionDim is the number of values of every action sent to the benchmark (0 for a zero spec:
// whatever the policy returns).
func (a *Adapter) ActionDim() int {
	if a.opt.ActionDim > 0 {
		return a.opt.ActionDim
	}
	return a.spec.ActionDim
}

// BenchmarkCameras lists, for each policy camera in spec order, the benchmark camera feeding it.
func (a *Adapter) BenchmarkCameras() []string {
	out := make([]string, len(a.spec.Cameras))
	for i, c := range a.spec.Cameras {
		out[i] = a.feeds[c.Name]
	}
	return out
}

// readsState reports whether the policy reads state values from the benchmark.
func (a *Adapter) readsState() bool { return a.spec.StateDim > 0 && !a.opt.NoState }

// stateIn is the number of state values the benchmark must send (0: none is read).
func (a *Adapter) stateIn() int {
	switch {
	case !a.readsState():
		return 0
	case a.opt.StateDims != nil:
		return slices.Max(append([]int{-1}, a.opt.StateDims...)) + 1
	}
	return a.spec.StateDim
}

// Observation decodes an observation payload and fits it to the policy: each policy camera's
// image (from the benchmark camera feeding it) resized to the camera's size, the state picked
// and padded, the instruction. Warnings say what was filled in. Errors name the payload key and,
// for a mismatch that cannot be adapted, both shapes.
func (a *Adapter) Observation(p map[string]any) (policy.Observation, []string, error) {
	var obs policy.Observation
	var warnings []string
	raw := map[string]any{}
	if v, ok := p[keyImages]; ok && v != nil {
		m, ok := v.(map[string]any)
		if !ok {
			return obs, nil, fmt.Errorf("observation.images must be a map from camera name to image, got %s", typeName(v))
		}
		raw = m
	}
	obs.Images = map[string]policy.Image{}
	if len(a.spec.Cameras) == 0 { // a zero spec takes every camera as it comes
		for _, name := range slices.Sorted(maps.Keys(raw)) {
			pix, h, w, err := decodeImageValue(raw[name])
			if err != nil {
				return obs, nil, fmt.Errorf("observation.images.%s: %w", name, err)
			}
			obs.Images[name] = policy.Image{W: w, H: h, Pix: pix}
		}
	}
	for _, cam := range a.spec.Cameras {
		bench := a.feeds[cam.Name]
		v, ok := raw[bench]
		if !ok {
			have := strings.Join(slices.Sorted(maps.Keys(raw)), ", ")
			if have == "" {
				have = "none"
			}
			hint := ""
			if bench == cam.Name && len(raw) > 0 {
				hint = fmt.Sprintf("; map one to it, e.g. --camera %s=%s", slices.Sorted(maps.Keys(raw))[0], cam.Name)
			}
			return obs, nil, fmt.Errorf("observation.images has no camera %q for the policy's camera %q (the observation has %s%s)", bench, cam.Name, have, hint)
		}
		pix, h, w, err := decodeImageValue(v)
		if err != nil {
			return obs, nil, fmt.Errorf("observation.images.%s: %w", bench, err)
		}
		im, err := policy.Resize(policy.Image{W: w, H: h, Pix: pix}, cam.Width, cam.Height, a.resize)
		if err != nil {
			return obs, nil, fmt.Errorf("observation.images.%s: %w", bench, err)
		}
		obs.Images[cam.Name] = im
	}

	key := keyInstruction
	if _, ok := p[key]; !ok {
		key = "instruction"
	}
	if v, ok := p[key]; ok && v != nil {
		s, ok := v.(string)
		if !ok {
			return obs, nil, fmt.Errorf("observation.%s must be a string, got %s", key, typeName(v))
		}
		obs.Instruction = s
	}

	key = keyStates
	if _, ok := p[key]; !ok {
		key = "state"
	}
	var state []float32
	v, present := p[key]
	present = present && v != nil
	if present && (a.readsState() || len(a.spec.Cameras) == 0) {
		var err error
		if state, err = floatValues(v); err != nil {
			return obs, nil, fmt.Errorf("observation.%s: %w", key, err)
		}
	}
	switch {
	case len(a.spec.Cameras) == 0:
		obs.State = state
	case a.spec.StateDim == 0:
	case a.opt.NoState:
		obs.State = make([]float32, a.spec.StateDim)
	case !present:
		obs.State = make([]float32, a.spec.StateDim)
		warnings = append(warnings, fmt.Sprintf("observation has no states; the policy reads %d state values and was given zeros", a.spec.StateDim))
	case a.opt.StateDims != nil:
		obs.State = make([]float32, a.spec.StateDim)
		for i, d := range a.opt.StateDims {
			if d >= len(state) {
				return obs, nil, fmt.Errorf("observation.%s has shape [%d], the policy picks state index %d of it (state dims %v)", key, len(state), d, a.opt.StateDims)
			}
			obs.State[i] = state[d]
		}
	case len(state) != a.spec.StateDim:
		return obs, nil, fmt.Errorf("observation.%s has shape [%d], the policy reads [%d] (pick values with --state-dims, e.g. --state-dims %s)",
			key, len(state), a.spec.StateDim, exampleDims(min(len(state), a.spec.StateDim)))
	default:
		obs.State = state
	}
	return obs, warnings, nil
}

func exampleDims(n int) string {
	parts := make([]string, max(n, 1))
	for i := range parts {
		parts[i] = strconv.Itoa(i)
	}
	if n == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// Action fits one of the policy's actions to the benchmark's action dimension: zero-padded or
// truncated (a copy when changed).
func (a *Adapter) Action(act []float32) []float32 {
	n := a.ActionDim()
	if n == 0 || n == len(act) {
		return act
	}
	out := make([]float32, n)
	copy(out, act)
	return out
}

// Harness DimSpec formats (vla-evaluation-harness src/vla_eval/specs.py): IMAGE_RGB, LANGUAGE
// and RAW.
const (
	formatImageRGB = "rgb_hwc_uint8"
	formatLanguage = "language"
	formatRaw      = "raw"
)

// dimSpec is the wire form of the harness's DimSpec.to_dict(): name, dims, format and, when
// set, description.
func dimSpec(name string, dims int, format, description string) map[string]any {
	d := map[string]any{"name": name, "dims": dims, "format": format}
	if description != "" {
		d["description"] = description
	}
	return d
}

// ObservationSpec is the hello reply's observation_spec: what the server reads, keyed like the
// benchmark's observation spec (one IMAGE_RGB entry per benchmark camera it reads, "language"
// and, when it reads one, "state").
func (a *Adapter) ObservationSpec() map[string]any {
	out := map[string]any{"language": dimSpec("language", 0, formatLanguage, "")}
	for i, c := range a.spec.Cameras {
		bench := a.BenchmarkCameras()[i]
		desc := fmt.Sprintf("fitted to the policy's camera %q, %d×%d (%s)", c.Name, c.Width, c.Height, a.resize)
		out[bench] = dimSpec("image", 0, formatImageRGB, desc)
	}
	if n := a.stateIn(); n > 0 {
		desc := fmt.Sprintf("the policy reads %d state values", a.spec.StateDim)
		if len(a.spec.StateNames) > 0 {
			desc += " (" + strings.Join(a.spec.StateNames, ", ") + ")"
		}
		if a.opt.StateDims != nil {
			desc += fmt.Sprintf(", picked at indices %v", a.opt.StateDims)
		}
		out["state"] = dimSpec("state", n, formatRaw, desc)
	}
	return out
}

// ActionSpec is the hello reply's action_spec: one RAW "actions" component of ActionDim values.
func (a *Adapter) ActionSpec() map[string]any {
	n := a.ActionDim()
	desc := ""
	if len(a.spec.ActionNames) > 0 {
		desc = strings.Join(a.spec.ActionNames, ", ")
	}
	switch {
	case n > a.spec.ActionDim && a.spec.ActionDim > 0:
		desc = strings.TrimPrefix(desc+fmt.Sprintf(", then %d zeros", n-a.spec.ActionDim), ", ")
	case n < a.spec.ActionDim:
		desc = fmt.Sprintf("the first %d of the policy's %d action values", n, a.spec.ActionDim)
		if len(a.spec.ActionNames) > 0 {
			desc += " (" + strings.Join(a.spec.ActionNames[:n], ", ") + ")"
		}
	}
	return map[string]any{"actions": dimSpec("actions", n, formatRaw, desc)}
}

// ObservationParams is the hello reply's observation_params: the benchmark parameters the
// harness's orchestrator merges into the benchmark's constructor arguments (send_state,
// send_wrist_image, as the harness's LeRobot model server declares them).
func (a *Adapter) ObservationParams() map[string]any {
	out := map[string]any{}
	if a.stateIn() > 0 {
		out["send_state"] = true
	}
	if len(a.spec.Cameras) > 1 {
		out["send_wrist_image"] = true
	}
	return out
}
