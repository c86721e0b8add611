package serve

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/policy"
)

// payload encodes obs as a client would send it and decodes it as the server receives it.
func payload(t *testing.T, obs policy.Observation) map[string]any {
	t.Helper()
	p, err := ObservationPayload(obs)
	require.NoError(t, err)
	m, err := Decode(mustEncode(t, NewMessage(TypeObservation, 1, p)))
	require.NoError(t, err)
	return m.Payload
}

func TestAdapterCameras(t *testing.T) {
	spec := simSpec() // scene 8×8, pad
	a, err := NewAdapter(spec, AdaptOptions{Cameras: map[string]string{"agentview": "scene"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"agentview"}, a.BenchmarkCameras())
	view := testImage(24, 3)
	obs, warnings, err := a.Observation(payload(t, policy.Observation{
		Images: map[string]policy.Image{"agentview": view, "scene": testImage(8, 9), "wrist": testImage(4, 1)},
		State:  []float32{1, 2, 3, 4},
	}))
	require.NoError(t, err)
	assert.Empty(t, warnings)
	want, err := policy.Resize(view, 8, 8, policy.ResizePad)
	require.NoError(t, err)
	assert.Equal(t, map[string]policy.Image{"scene": want}, obs.Images, "the mapped camera feeds scene; the others are ignored")

	// --resize overrides the spec's mode: a 16×8 image stretched, not padded.
	a, err = NewAdapter(spec, AdaptOptions{Cameras: map[string]string{"agentview": "scene"}, Resize: policy.ResizeStretch})
	require.NoError(t, err)
	wide := policy.Image{W: 16, H: 8, Pix: testPixels(16, 2)[:16*8*3]}
	obs, _, err = a.Observation(payload(t, policy.Observation{Images: map[string]policy.Image{"agentview": wide}, State: make([]float32, 4)}))
	require.NoError(t, err)
	want, err = policy.Resize(wide, 8, 8, policy.ResizeStretch)
	require.NoError(t, err)
	assert.Equal(t, want, obs.Images["scene"])
	padded, err := policy.Resize(wide, 8, 8, policy.ResizePad)
	require.NoError(t, err)
	assert.NotEqual(t, padded, obs.Images["scene"])

	for _, c := range []struct {
		opt  AdaptOptions
		want string
	}{
		{AdaptOptions{Cameras: map[string]string{"agentview": "top"}}, `camera agentview=top: the policy has no camera "top" (it reads scene)`},
		{AdaptOptions{Cameras: map[string]string{"a": "scene", "b": "scene"}}, `cameras "a" and "b" are both mapped to the policy's camera "scene"`},
		{AdaptOptions{Resize: "squash"}, `resize mode "squash" is not one of pad, crop, stretch, pad_topleft`},
		{AdaptOptions{StateDims: []int{0, 1, 2, 3, 4}}, "5 state dims picked ([0 1 2 3 4]), the policy reads 4 state values"},
		{AdaptOptions{ActionDim: -1}, "action dim must be ≥ 0"},
		{AdaptOptions{StateDims: []int{0}, NoState: true}, "picked and none at once"},
	} {
		_, err := NewAdapter(spec, c.opt)
		assert.ErrorContains(t, err, c.want)
	}
	cams, err := ParseCameraMap([]string{"agentview=scene", " wrist = top "})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"agentview": "scene", "wrist": "top"}, cams)
	_, err = ParseCameraMap([]string{"agentview"})
	assert.ErrorContains(t, err, "not BENCHMARK_CAMERA=POLICY_CAMERA")
	_, err = ParseCameraMap([]string{"a=scene", "a=wrist"})
	assert.ErrorContains(t, err, "mapped twice")
}

func TestAdapterState(t *testing.T) {
	spec := simSpec() // StateDim 4
	obsWith := func(state []float32) map[string]any {
		return payload(t, policy.Observation{Images: map[string]policy.Image{"scene": testImage(8, 1)}, State: state})
	}
	pick, none, err := ParseStateDims("6, 0,2")
	require.NoError(t, err)
	assert.False(t, none)
	a, err := NewAdapter(spec, AdaptOptions{StateDims: pick})
	require.NoError(t, err)
	obs, _, err := a.Observation(obsWith([]float32{10, 11, 12, 13, 14, 15, 16, 17}))
	require.NoError(t, err)
	assert.Equal(t, []float32{16, 10, 12, 0}, obs.State, "picked in order, zero-padded to 4")
	_, _, err = a.Observation(obsWith([]float32{1, 2, 3}))
	assert.ErrorContains(t, err, "observation.states has shape [3], the policy picks state index 6 of it (state dims [6 0 2])")

	_, none, err = ParseStateDims("none")
	require.NoError(t, err)
	a, err = NewAdapter(spec, AdaptOptions{NoState: none})
	require.NoError(t, err)
	obs, warnings, err := a.Observation(obsWith([]float32{1, 2, 3, 4, 5, 6, 7, 8}))
	require.NoError(t, err)
	assert.Equal(t, []float32{0, 0, 0, 0}, obs.State)
	assert.Empty(t, warnings)
	_, _, err = ParseStateDims("0,-1")
	assert.ErrorContains(t, err, `"-1" is not an index ≥ 0`)

	a, err = NewAdapter(spec, AdaptOptions{})
	require.NoError(t, err)
	obs, warnings, err = a.Observation(obsWith(nil))
	require.NoError(t, err)
	assert.Equal(t, []float32{0, 0, 0, 0}, obs.State, "no state: zeros")
	assert.Equal(t, []string{"observation has no states; the policy reads 4 state values and was given zeros"}, warnings)
	_, _, err = a.Observation(obsWith(make([]float32, 8)))
	assert.EqualError(t, err, "observation.states has shape [8], the policy reads [4] (pick values with --state-dims, e.g. --state-dims 0,1,2,3)")

	// A stateless policy ignores any state the benchmark sends.
	stateless := testSpec(8, 0, 7, 1, "agentview")
	a, err = NewAdapter(stateless, AdaptOptions{})
	require.NoError(t, err)
	obs, warnings, err = a.Observation(payload(t, policy.Observation{Images: map[string]policy.Image{"agentview": testImage(8, 1)}, State: []float32{1, 2}}))
	require.NoError(t, err)
	assert.Nil(t, obs.State)
	assert.Empty(t, warnings)
	assert.Equal(t, map[string]any{}, a.ObservationParams())
	assert.NotContains(t, a.ObservationSpec(), "state")
}

func TestAdapterActions(t *testing.T) {
	spec := simSpec() // 3-D actions dx, dy, grip
	a, err := NewAdapter(spec, AdaptOptions{ActionDim: 7})
	require.NoError(t, err)
	act := []float32{0.5, -0.25, 1}
	assert.Equal(t, []float32{0.5, -0.25, 1, 0, 0, 0, 0}, a.Action(act))
	assert.Equal(t, []float32{0.5, -0.25, 1}, act, "the policy's action is not modified")
	assert.Equal(t, map[string]any{"actions": map[string]any{"name": "actions", "dims": 7, "format": "raw", "description": "dx, dy, grip, then 4 zeros"}}, a.ActionSpec())

	a, err = NewAdapter(spec, AdaptOptions{ActionDim: 2})
	require.NoError(t, err)
	assert.Equal(t, []float32{0.5, -0.25}, a.Action(act))
	assert.Equal(t, "the first 2 of the policy's 3 action values (dx, dy)", a.ActionSpec()["actions"].(map[string]any)["description"])

	a, err = NewAdapter(spec, AdaptOptions{})
	require.NoError(t, err)
	assert.Equal(t, act, a.Action(act))
	assert.Equal(t, 3, a.ActionDim())
}

// The hello reply's harness fields for a two-camera policy with picked state dims.
func TestAdapterHarnessSpecs(t *testing.T) {
	spec := testSpec(16, 2, 3, 4, "scene", "wrist")
	a, err := NewAdapter(spec, AdaptOptions{Cameras: map[string]string{"agentview": "scene", "eye_in_hand": "wrist"}, StateDims: []int{0, 5}})
	require.NoError(t, err)
	os := a.ObservationSpec()
	assert.Equal(t, []string{"agentview", "eye_in_hand"}, a.BenchmarkCameras())
	assert.Contains(t, os, "agentview")
	assert.Contains(t, os, "eye_in_hand")
	assert.Equal(t, 6, os["state"].(map[string]any)["dims"], "the benchmark must send at least 6 values for index 5")
	assert.Equal(t, map[string]any{"send_state": true, "send_wrist_image": true}, a.ObservationParams())
}
