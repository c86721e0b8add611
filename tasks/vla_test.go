package tasks

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/sim"
	"github.com/reelml/reel/text"
	"github.com/reelml/reel/train"
)

func goBackend(t testing.TB) compute.Backend {
	t.Helper()
	b, _, err := backends.Select("go")
	require.NoError(t, err)
	return b
}

// trainTinyPolicy trains recipe name with overrides for one step and returns its checkpoint.
func trainTinyPolicy(t testing.TB, name string, sets ...string) string {
	t.Helper()
	r, err := recipes.Load(name, append([]string{"train.steps=1", "train.batch_size=2", "eval.examples=2",
		"eval.batch_size=2", "train.eval_every=0", "model.vision_layers=1", "model.text_layers=1"}, sets...))
	require.NoError(t, err)
	task, err := New(r)
	require.NoError(t, err)
	y, err := yaml.Marshal(r)
	require.NoError(t, err)
	dir := t.TempDir()
	res, err := train.Run(context.Background(), task, train.Options{Recipe: r, RecipeYAML: y, OutDir: dir,
		Backend: goBackend(t), Log: io.Discard})
	require.NoError(t, err)
	return res.Checkpoint
}

// A policy trained under train.precision bf16 runs its products in bf16 wherever it is used:
// closed-loop evaluation and `reel serve` both go through OpenPolicy, offline evaluation through
// the task's evaluation graph; an f32 policy runs none in bf16.
func TestPolicyInferenceHonoursPrecision(t *testing.T) {
	if testing.Short() {
		t.Skip("trains tiny policies")
	}
	b := goBackend(t)
	for _, c := range []struct {
		recipe, precision string
	}{{"molmobot-tiny", "bf16"}, {"rdvla-tiny", "bf16"}, {"molmobot-tiny", "f32"}} {
		run := trainTinyPolicy(t, c.recipe, "train.precision="+c.precision)
		p, err := OpenPolicy(b, run, nil, 1)
		require.NoError(t, err)
		w, err := sim.NewWorld(sim.DefaultConfig(), sim.EvalSeed(0, 0))
		require.NoError(t, err)
		chunks, err := p.Act([]policy.Observation{w.Observe(), w.Observe(), w.Observe()})
		require.NoError(t, err)
		require.Len(t, chunks, 3)
		require.Len(t, chunks[0], p.Spec().Horizon)
		total, half := p.FLOPs()
		require.Greater(t, total, 0.0)
		if c.precision == "bf16" {
			require.Greater(t, half/total, 0.95, "%s: %.0f of %.0f FLOPs in bf16", c.recipe, half, total)
		} else {
			require.Zero(t, half, c.recipe)
		}
		p.Close()
	}
}

// A policy is sized by its data source's features, not by the simulator's: here the synthetic
// source with a wrist camera, and a spec without state and with 7-D actions rebuilt from a
// checkpoint's spec (as serving does).
func TestPolicySizedBySpec(t *testing.T) {
	r, err := recipes.Load("molmobot-tiny", []string{"data.wrist=true"})
	require.NoError(t, err)
	task, err := NewVLA(r)
	require.NoError(t, err)
	require.Equal(t, []string{"scene", "wrist"}, task.Spec().CameraNames())
	require.NoError(t, sim.Fits(task.Sim(), task.Spec()))

	spec := task.Spec()
	spec.Cameras = []policy.Camera{{Name: "agentview", Width: 32, Height: 32}}
	spec.StateDim, spec.StateNames, spec.ActionDim, spec.ActionNames = 0, nil, 7, nil
	other, err := newVLAFromSpec(r, spec, "")
	require.NoError(t, err)
	require.Error(t, sim.Fits(task.Sim(), spec), "the simulator cannot roll out a 7-D, stateless policy")
	// A 640×480 camera image is fitted to the 32-pixel network input.
	obs := policy.Observation{Images: map[string]policy.Image{"agentview": policy.NewImage(640, 480)}, Instruction: "pick up the red square"}
	in, err := other.ObservationTensors([]policy.Observation{obs})
	require.NoError(t, err)
	require.Len(t, in, 2, "no state input")
	require.Equal(t, []int{1, 1, 32, 32, 3}, in[0].Shape().Dimensions)
	_, err = other.ObservationTensors([]policy.Observation{{Images: map[string]policy.Image{"scene": policy.NewImage(32, 32)}}})
	require.ErrorContains(t, err, `no image from camera "agentview"`)
}

// Check vets one observation before it joins a batch: an instruction longer than
// model.max_text_len is read up to that length, with a warning (it never fails the Act call of
// the observations batched with it); a missing camera or a state of another size is refused.
func TestPolicyCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a tiny policy")
	}
	p, err := OpenPolicy(goBackend(t), trainTinyPolicy(t, "molmobot-tiny"), nil, 1)
	require.NoError(t, err)
	defer p.Close()
	var _ policy.Checker = p
	w, err := sim.NewWorld(sim.DefaultConfig(), sim.EvalSeed(0, 0))
	require.NoError(t, err)
	good := w.Observe()
	long := good
	long.Instruction = "pick up the red square and then put it in the blue bowl near the left edge now" // 18 words
	cut := long
	cut.Instruction = "pick up the red square and then put it in the blue" // its first 12 words
	_, err = p.Act([]policy.Observation{good, long})
	require.NoError(t, err, "a long instruction does not fail the batch")
	in, err := p.(*chunkPolicy).task.ObservationTensors([]policy.Observation{long, cut})
	require.NoError(t, err)
	tok := tensors.MustCopyFlatData[int32](in[1])
	require.Equal(t, tok[:12], tok[12:], "the policy reads the first model.max_text_len tokens")

	checked, warnings, err := p.Check(long)
	require.NoError(t, err)
	require.Equal(t, long.Instruction, checked.Instruction)
	require.Len(t, warnings, 1)
	require.Contains(t, warnings[0], "instruction has 18 tokens, more than model.max_text_len (12)")
	chunks, err := p.Act([]policy.Observation{good, checked})
	require.NoError(t, err)
	require.Len(t, chunks, 2)

	same, warnings, err := p.Check(good)
	require.NoError(t, err)
	require.Empty(t, warnings)
	require.Equal(t, good.Instruction, same.Instruction)
	noCam := good
	noCam.Images = map[string]policy.Image{"wrist": policy.NewImage(32, 32)}
	_, _, err = p.Check(noCam)
	require.ErrorContains(t, err, `no image from camera "scene"`)
	shortState := good
	shortState.State = good.State[:2]
	_, _, err = p.Check(shortState)
	require.ErrorContains(t, err, "expected 4 state values, got 2")
}

// model.tokenizer: instructions are encoded with a real tokenizer (here a byte-level BPE
// tokenizer.json, whose ids are shifted by one so that 0 stays padding), its files travel in the
// checkpoint, and a policy opened from a copy of the checkpoint alone encodes as in training.
func TestPolicyWithTokenizer(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a tiny policy")
	}
	tokPath, err := filepath.Abs("../text/testdata/gpt2.json")
	require.NoError(t, err)
	ckpt := trainTinyPolicy(t, "molmobot-tiny", "model.tokenizer="+tokPath, "model.max_text_len=24")
	require.FileExists(t, filepath.Join(ckpt, "tokenizer.json"))
	moved := filepath.Join(t.TempDir(), "moved")
	require.NoError(t, os.CopyFS(moved, os.DirFS(ckpt)))
	p, err := OpenPolicy(goBackend(t), moved, []string{"model.tokenizer=/nonexistent/tokenizer.json"}, 1)
	require.NoError(t, err, "the checkpoint's own tokenizer is used")
	defer p.Close()
	tok, err := text.Load(tokPath)
	require.NoError(t, err)
	instr := "Pick up the yellow bottle on the table."
	in, err := p.(*chunkPolicy).task.ObservationTensors([]policy.Observation{{Images: map[string]policy.Image{"scene": policy.NewImage(32, 32)},
		State: make([]float32, 4), Instruction: instr}})
	require.NoError(t, err)
	ids := tensors.MustCopyFlatData[int32](in[1])
	want := tok.Encode(instr)
	require.Greater(t, len(want), 3)
	for i, id := range want {
		require.Equal(t, int32(id+1), ids[i])
	}
	require.Zero(t, ids[len(want)], "padding")
}
