package tasks

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/recipes"
)

const leRobotTiny = "testdata/lerobot_pi0/tiny"

// openLeRobotTinyNet is the pi0 network of the tiny LeRobot directory as OpenPolicy sizes it.
func openLeRobotTinyNet(t *testing.T) (*leRobotPi0, models.Policy, policy.Spec) {
	l, err := openLeRobotPi0(leRobotTiny)
	require.NoError(t, err)
	r, err := recipes.Load("pi0", []string{"model.pretrained=" + leRobotTiny, "model.hf_config=", "model.image_size=32",
		"model.max_text_len=6", "policy.horizon=5", "policy.execute=3", "policy.norm_stats=checkpoint",
		"data.normalization=mean_std", "train.precision=f32"})
	require.NoError(t, err)
	spec, err := l.spec("lerobot:tiny", 6)
	require.NoError(t, err)
	vt, err := newVLAFromSpec(r, spec, "")
	require.NoError(t, err)
	return l, vt.net, spec
}

// The tiny LeRobot-layout pi0 (written by gen_pi0_twin.py with an independent PyTorch twin of
// LeRobot's modeling_pi0.py) opens with the sizes of its tensors and the spec of its features.
func TestLeRobotPi0DirectoryIsRecognised(t *testing.T) {
	require.True(t, isLeRobotPi0(leRobotTiny))
	require.False(t, isLeRobotPi0("../hf/testdata/paligemma"), "a PaliGemma is not a LeRobot pi0")
	l, _, spec := openLeRobotTinyNet(t)
	require.Equal(t, 16, l.expertDim)
	require.Equal(t, 32, l.expertMLP)
	require.Equal(t, 8, l.pg.Text.Heads)
	require.Equal(t, 4, l.pg.Text.HeadDim)
	require.Equal(t, 1, l.pg.Vision.Heads)
	require.Equal(t, 32, l.pg.Vision.ImageSize)
	require.Equal(t, []policy.Camera{{Name: "cam", Width: 32, Height: 32}}, spec.Cameras)
	require.Equal(t, 6, spec.StateDim)
	require.Equal(t, 6, spec.ActionDim)
	require.Equal(t, 5, spec.Horizon)
	require.Equal(t, 3, spec.Execute)
	require.Equal(t, policy.NormMeanStd, spec.Normalization)

	// Its statistics, as LeRobot's normalizer computes them: (x − mean)/(std + eps).
	n, err := l.normalization(spec)
	require.NoError(t, err)
	st, _, err := l.stats()
	require.NoError(t, err)
	require.Equal(t, st["observation.state.mean"], n.StateOffset)
	require.InDelta(t, st["action.std"][2]+1e-8, n.ActionScale[2], 1e-7)
	// Kept for a robot of other dimensions: one error naming the file and the way out.
	spec.StateDim = 26
	_, err = l.normalization(spec)
	require.ErrorContains(t, err, "policy_preprocessor_step_6_normalizer_processor.safetensors")
	require.ErrorContains(t, err, "policy.norm_stats: dataset")
}

// Parity with LeRobot's pi0: reel's training loss (the same noise and flow times) and its sampled
// actions (the same starting noise, 10 Euler steps, unnormalised by the postprocessor's
// statistics) on the tiny LeRobot directory equal the PyTorch twin's within 1e-4
// (testdata/lerobot_pi0/parity.safetensors, README.md there).
func TestLeRobotPi0ParityWithPyTorchTwin(t *testing.T) {
	_, net, _ := openLeRobotTinyNet(t)
	l, err := openLeRobotPi0(leRobotTiny)
	require.NoError(t, err)
	want, _, err := checkpoints.ReadSafetensors("testdata/lerobot_pi0/parity.safetensors")
	require.NoError(t, err)
	// The variables are created by a first graph and loaded before the graphs under test are
	// built: the Go backend embeds the values of an inference graph's variables as constants.
	store := buildTinyStore(t, net)
	n, err := l.loadWeights(store)
	require.NoError(t, err)
	require.Greater(t, n, 40)
	requireFlowParity(t, net, store, want, true)
}

// A directory whose tensors do not fit names each problem on its own line.
func TestLeRobotPi0NamesMissingUnexpectedMisshaped(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"config.json", "policy_preprocessor.json", "policy_preprocessor_step_6_normalizer_processor.safetensors"} {
		b, err := os.ReadFile(filepath.Join(leRobotTiny, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	w, _, err := checkpoints.ReadSafetensors(filepath.Join(leRobotTiny, "model.safetensors"))
	require.NoError(t, err)
	delete(w, "model.state_proj.bias")
	w["model.paligemma_with_expert.extra.weight"] = tensors.FromFlatDataAndDimensions([]float32{1}, 1)
	w["model.action_out_proj.bias"] = tensors.FromFlatDataAndDimensions(make([]float32, 31), 31)
	require.NoError(t, checkpoints.WriteSafetensors(filepath.Join(dir, "model.safetensors"), w, nil))
	_, net, _ := openLeRobotTinyNet(t)
	l, err := openLeRobotPi0(dir)
	require.NoError(t, err)
	_ = net
	store := buildTinyStore(t, net)
	_, err = l.loadWeights(store)
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 4, err.Error())
	require.Contains(t, err.Error(), "missing: model.state_proj.bias")
	require.Contains(t, err.Error(), "unexpected: model.paligemma_with_expert.extra.weight")
	require.Contains(t, err.Error(), "mis-shaped: model.action_out_proj.bias")
}

// buildTinyStore creates net's variables (a sampling graph run once on zeros).
func buildTinyStore(t *testing.T, net models.Policy) *model.Store {
	store := model.NewStore()
	require.NoError(t, store.SetRNGStateFromSeed(1))
	e, err := model.NewExecCanonical(goBackend(t), store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		return []*Node{net.Sample(scope, models.PolicyBatch{Images: in[0], Tokens: in[1], State: in[2], Noise: map[string]*Node{"noise": in[3]}})}
	}, -1, -1, false, true, true)
	require.NoError(t, err)
	defer e.Finalize()
	_, err = e.Exec(tensors.FromShape(shapesF32(1, 1, 32, 32, 3)), tensors.FromFlatDataAndDimensions(make([]int32, 6), 1, 6),
		tensors.FromShape(shapesF32(1, 6)), tensors.FromShape(shapesF32(1, 5, 32)))
	require.NoError(t, err)
	return store
}

func shapesF32(dims ...int) shapes.Shape { return shapes.Make(dtypes.Float32, dims...) }

// OpenPolicy opens the LeRobot directory as it is (no conversion): its spec is the directory's,
// and its action chunks are the twin's model's (finite, in the spec's shape).
func TestLeRobotPi0OpenPolicyAsIs(t *testing.T) {
	p, err := OpenPolicy(goBackend(t), leRobotTiny, nil, 1)
	require.NoError(t, err)
	defer p.Close()
	spec := p.Spec()
	require.Equal(t, "lerobot:tiny", spec.Name)
	require.Equal(t, 5, spec.Horizon)
	obs := policy.Observation{Images: map[string]policy.Image{"cam": policy.NewImage(32, 32)}, State: make([]float32, 6), Instruction: "pick the red square"}
	acts, err := p.Act([]policy.Observation{obs})
	require.NoError(t, err)
	require.Len(t, acts, 1)
	require.Len(t, acts[0], 5)
	require.Len(t, acts[0][0], 6)
	for _, v := range acts[0][0] {
		require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0))
	}
}

// Settings reel's pi0 does not implement, and a state file outside the directory, are refused
// with one line naming the file and the key.
func TestLeRobotPi0RefusesWhatItCannotRun(t *testing.T) {
	copyDir := func(t *testing.T) string {
		dir := t.TempDir()
		ents, err := os.ReadDir(leRobotTiny)
		require.NoError(t, err)
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(leRobotTiny, e.Name()))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644))
		}
		return dir
	}
	edit := func(t *testing.T, dir, file, from, to string) {
		b, err := os.ReadFile(filepath.Join(dir, file))
		require.NoError(t, err)
		require.Contains(t, string(b), from)
		require.NoError(t, os.WriteFile(filepath.Join(dir, file), []byte(strings.Replace(string(b), from, to, 1)), 0o644))
	}
	for _, c := range []struct{ file, from, to, want string }{
		{"config.json", `"max_state_dim": 32`, `"max_state_dim": 64`, "config.json: max_state_dim"},
		{"config.json", `"empty_cameras": 0`, `"empty_cameras": 1`, "config.json: empty_cameras"},
		{"config.json", `"time_sampling_beta_alpha": 1.5`, `"time_sampling_beta_alpha": 2`, "config.json: time_sampling_"},
		{"config.json", `"image_resolution": [
        32,
        32
    ]`, `"image_resolution": [64, 64]`, "do not tile config.json's image_resolution"},
	} {
		dir := copyDir(t)
		edit(t, dir, c.file, c.from, c.to)
		_, err := OpenPolicy(goBackend(t), dir, nil, 1)
		require.ErrorContains(t, err, c.want)
		require.NotContains(t, err.Error(), "\n")
	}
	dir := copyDir(t)
	edit(t, dir, "policy_preprocessor.json", `"policy_preprocessor_step_6_normalizer_processor.safetensors"`, `"../x.safetensors"`)
	_, err := OpenPolicy(goBackend(t), dir, nil, 1)
	require.ErrorContains(t, err, "state_file")
}

// A directory saved in bfloat16 (LeRobot's "dtype": "bfloat16") loads, widened to float32.
func TestLeRobotPi0LoadsBFloat16(t *testing.T) {
	dir := t.TempDir()
	ents, err := os.ReadDir(leRobotTiny)
	require.NoError(t, err)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(leRobotTiny, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644))
	}
	w, _, err := checkpoints.ReadSafetensors(filepath.Join(leRobotTiny, "model.safetensors"))
	require.NoError(t, err)
	bf := map[string]*tensors.Tensor{}
	for k, v := range w {
		f := tensors.MustCopyFlatData[float32](v)
		b := make([]bfloat16.BFloat16, len(f))
		for i, x := range f {
			b[i] = bfloat16.FromFloat32(x)
		}
		bf[k] = tensors.FromFlatDataAndDimensions(b, v.Shape().Dimensions...)
	}
	require.NoError(t, checkpoints.WriteSafetensors(filepath.Join(dir, "model.safetensors"), bf, nil))
	_, net, _ := openLeRobotTinyNet(t)
	l, err := openLeRobotPi0(dir)
	require.NoError(t, err)
	store := buildTinyStore(t, net)
	_, err = l.loadWeights(store)
	require.NoError(t, err)
	v, err := store.GetVariable("/state_proj/biases").Value()
	require.NoError(t, err)
	want := tensors.MustCopyFlatData[float32](w["model.state_proj.bias"])
	for i, x := range tensors.MustCopyFlatData[float32](v) {
		require.InDelta(t, want[i], x, 1e-2*math.Abs(float64(want[i]))+1e-6)
	}
}
