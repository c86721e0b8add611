package tasks

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/recipes"
)

const leRobotPi05Tiny = "testdata/lerobot_pi05/tiny"

// openLeRobotPi05TinyTask is the pi05 task of the tiny LeRobot pi05 directory as OpenPolicy sizes
// it (the directory's statistics kept).
func openLeRobotPi05TinyTask(t *testing.T, dir string) (*leRobotPi0, *VLA) {
	l, err := openLeRobotPi05(dir)
	require.NoError(t, err)
	r, err := recipes.Load("pi05", []string{"model.pretrained=" + dir, "model.image_size=32",
		"model.max_text_len=24", "policy.horizon=5", "policy.execute=3", "policy.norm_stats=checkpoint",
		"data.normalization=quantiles", "train.precision=f32"})
	require.NoError(t, err)
	spec, err := l.spec("lerobot:tiny", 24)
	require.NoError(t, err)
	vt, err := newVLAFromSpec(r, spec, "")
	require.NoError(t, err)
	norm, err := l.normalization(spec)
	require.NoError(t, err)
	vt.family.(normalized).setNormalization(norm)
	return l, vt
}

// The tiny LeRobot-layout pi05 (gen_pi05_twin.py) is a pi05 directory, not a pi0 one, and opens
// with its tensors' sizes, its features' spec and PI05Config's QUANTILES mode.
func TestLeRobotPi05DirectoryIsRecognised(t *testing.T) {
	require.True(t, isLeRobotPi05(leRobotPi05Tiny))
	require.False(t, isLeRobotPi0(leRobotPi05Tiny))
	require.False(t, isLeRobotPi05(leRobotTiny), "a pi0 directory is not a pi05 one")
	l, err := openLeRobotPi05(leRobotPi05Tiny)
	require.NoError(t, err)
	require.Equal(t, 16, l.expertDim)
	require.Equal(t, 32, l.expertMLP)
	mode, err := l.normMode()
	require.NoError(t, err)
	require.Equal(t, policy.NormQuantiles, mode)
	spec, err := l.spec("x", 24)
	require.NoError(t, err)
	require.Equal(t, 6, spec.StateDim)
	require.Equal(t, 5, spec.Horizon)
}

// Parity with the PyTorch twin of LeRobot's modeling_pi05.py: the training loss for given noise
// and flow times, the sampled and unnormalised chunk for given noise (both within 1e-4), and the
// prompt the processor builds from the task and the QUANTILES-normalised, discretised state.
func TestLeRobotPi05ParityWithPyTorchTwin(t *testing.T) {
	l, vt := openLeRobotPi05TinyTask(t, leRobotPi05Tiny)
	net := vt.net
	want, meta, err := checkpoints.ReadSafetensors("testdata/lerobot_pi05/parity.safetensors")
	require.NoError(t, err)
	st := tensors.MustCopyFlatData[float32](want["state"])
	for i := range 2 {
		got := vt.prompt(policy.Observation{Instruction: meta["task_"+string(rune('0'+i))], State: st[i*6 : (i+1)*6]})
		require.Equal(t, meta["prompt_"+string(rune('0'+i))], got)
	}
	store := buildPi05Store(t, net)
	n, err := l.loadWeights(store)
	require.NoError(t, err)
	require.Greater(t, n, 40)
	requireFlowParity(t, net, store, want, false)
}

// buildPi05Store creates a pi05 network's variables (a sampling graph run once on zeros).
func buildPi05Store(t *testing.T, net models.Policy) *model.Store {
	store := model.NewStore()
	require.NoError(t, store.SetRNGStateFromSeed(1))
	e, err := model.NewExecCanonical(goBackend(t), store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		return []*Node{net.Sample(scope, models.PolicyBatch{Images: in[0], Tokens: in[1], Noise: map[string]*Node{"noise": in[2]}})}
	}, -1, -1, false, true, true)
	require.NoError(t, err)
	defer e.Finalize()
	_, err = e.Exec(tensors.FromShape(shapesF32(1, 1, 32, 32, 3)), tensors.FromFlatDataAndDimensions(make([]int32, 24), 1, 24),
		tensors.FromShape(shapesF32(1, 5, 32)))
	require.NoError(t, err)
	return store
}

// A pi05 directory whose tensors do not fit names each problem on its own line: a missing
// time_mlp_in bias, an unexpected tensor, a mis-shaped adaptive-norm dense layer.
func TestLeRobotPi05NamesMissingUnexpectedMisshaped(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"config.json", "policy_preprocessor.json", "policy_preprocessor_step_3_normalizer_processor.safetensors"} {
		b, err := os.ReadFile(filepath.Join(leRobotPi05Tiny, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	w, _, err := checkpoints.ReadSafetensors(filepath.Join(leRobotPi05Tiny, "model.safetensors"))
	require.NoError(t, err)
	delete(w, "model.time_mlp_in.bias")
	w["model.state_proj.weight"] = tensors.FromFlatDataAndDimensions(make([]float32, 16*32), 16, 32) // pi0's, not pi05's
	dense := "model.paligemma_with_expert.gemma_expert.model.norm.dense.bias"
	w[dense] = tensors.FromFlatDataAndDimensions(make([]float32, 47), 47)
	require.NoError(t, checkpoints.WriteSafetensors(filepath.Join(dir, "model.safetensors"), w, nil))
	l, vt := openLeRobotPi05TinyTask(t, dir)
	store := buildPi05Store(t, vt.net)
	_, err = l.loadWeights(store)
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 4, err.Error())
	require.Contains(t, err.Error(), "missing: model.time_mlp_in.bias")
	require.Contains(t, err.Error(), "unexpected: model.state_proj.weight")
	require.Contains(t, err.Error(), "mis-shaped: "+dense)
}

// OpenPolicy opens the pi05 directory as it is: its spec, and chunks in the spec's shape from the
// prompt reel builds with the directory's statistics.
func TestLeRobotPi05OpenPolicyAsIs(t *testing.T) {
	p, err := OpenPolicy(goBackend(t), leRobotPi05Tiny, nil, 1)
	require.NoError(t, err)
	defer p.Close()
	spec := p.Spec()
	require.Equal(t, "lerobot:tiny", spec.Name)
	require.Equal(t, policy.NormQuantiles, spec.Normalization)
	obs := policy.Observation{Images: map[string]policy.Image{"cam": policy.NewImage(32, 32)}, State: []float32{0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, Instruction: "pick up the red square"}
	acts, err := p.Act([]policy.Observation{obs})
	require.NoError(t, err)
	require.Len(t, acts, 1)
	require.Len(t, acts[0], 5)
	require.Len(t, acts[0][0], 6)
	for _, v := range acts[0][0] {
		require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0))
	}
}

// policy.knowledge_insulation trains the expert only: after two steps the VLM's weights are
// exactly the initial ones (a run of the same seed at lr 0), the expert's and the time MLP's are
// not; without it the VLM's move too.
func TestPi05KnowledgeInsulationFreezesVLMInTraining(t *testing.T) {
	if testing.Short() {
		t.Skip("trains tiny policies")
	}
	load := func(sets ...string) map[string]*tensors.Tensor {
		ckpt := trainTinyPolicy(t, "pi05-tiny", append([]string{"train.steps=2", "train.warmup_steps=0", "train.lr=1e-2"}, sets...)...)
		v, _, err := checkpoints.LoadVariables(ckpt)
		require.NoError(t, err)
		return v
	}
	init, ki, plain := load("train.lr=0"), load("policy.knowledge_insulation=true"), load()
	same := func(a, b map[string]*tensors.Tensor, name string) bool {
		require.Contains(t, a, name)
		return slices.Equal(tensors.MustCopyFlatData[float32](a[name]), tensors.MustCopyFlatData[float32](b[name]))
	}
	for _, n := range []string{"/model/language_model/layers/0/mlp/up_proj/weights", "/model/language_model/embed_tokens/weight",
		"/model/vision_tower/vision_model/encoder/layers/0/mlp/fc1/weights", "/model/multi_modal_projector/linear/weights"} {
		require.True(t, same(init, ki, n), "knowledge insulation leaves %s as it was", n)
		require.False(t, same(init, plain, n), "without it %s trains", n)
	}
	for _, n := range []string{"/gemma_expert/model/layers/0/self_attn/q_proj/weights", "/time_mlp_in/weights",
		"/gemma_expert/model/norm/dense/weights"} {
		require.False(t, same(init, ki, n), "%s trains", n)
	}
}

// A pi05 directory with MEM observation memory (a different network and prompt) is refused with
// one line naming the file and the key.
func TestLeRobotPi05RefusesMemory(t *testing.T) {
	for _, key := range []string{"use_visual_memory", "use_proprioceptive_memory"} {
		dir := t.TempDir()
		for _, f := range []string{"config.json", "model.safetensors"} {
			b, err := os.ReadFile(filepath.Join(leRobotPi05Tiny, f))
			require.NoError(t, err)
			if f == "config.json" {
				b = []byte(strings.Replace(string(b), `"`+key+`": false`, `"`+key+`": true`, 1))
			}
			require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
		}
		_, err := openLeRobotPi05(dir)
		require.Error(t, err)
		require.Equal(t, dir+"/config.json: "+key+": true", strings.SplitN(err.Error(), " (", 2)[0])
		require.NotContains(t, err.Error(), "\n")
	}
}

// Data without a state is refused in one line: pi0.5's prompt carries the state.
func TestPi05RefusesStatelessData(t *testing.T) {
	r, err := recipes.Load("pi05-tiny", nil)
	require.NoError(t, err)
	spec := policy.Spec{Name: "x", Features: policy.Features{Cameras: []policy.Camera{{Name: "cam", Width: 32, Height: 32}}, ActionDim: 3},
		Horizon: 10, Execute: 5, Normalization: policy.NormQuantiles, Resize: policy.ResizePad, MaxTextLen: 64}
	_, err = newVLAFromSpec(r, spec, "")
	require.EqualError(t, err, "data: pi05 writes the robot's state into its prompt, and the data has no observation.state")
}

// With a model tokenizer the prompt is encoded with its special tokens, as LeRobot's
// TokenizerProcessorStep does (the PaliGemma tokenizer's <bos> first): for the Gemma tokenizer
// fixture the ids are huggingface/tokenizers' ids_special (text/testdata/gemma.golden.json).
func TestPi05PromptEncodedWithSpecialTokens(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile("../text/testdata/gemma.json")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), b, 0o644))
	r, err := recipes.Load("pi05-tiny", []string{"model.tokenizer=" + dir})
	require.NoError(t, err)
	f, err := openPi05(r, "")
	require.NoError(t, err)
	require.Equal(t, []int{1, 330, 3076, 369, 2595, 2383}, f.text().encode("Hello world"))
}
