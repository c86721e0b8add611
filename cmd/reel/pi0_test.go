package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/policy"
)

// pi0 fine-tuned with LoRA on a real robot's LeRobot data (the Unitree G1 fixture: one 640×480
// camera, 26-D state and actions): the loss falls, the first metrics row counts fewer trainable
// than total parameters, TensorBoard events are written, the spec keeps the robot's unpadded
// dimensions, and `reel eval` reports the offline action error on held-out episodes.
func TestPi0TinyLoRAOnRealRobot(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes video and trains")
	}
	dir := t.TempDir()
	ds, err := filepath.Abs("../../lerobot/testdata/g1_v21")
	require.NoError(t, err)
	r := reel(t, dir, "train", "pi0-tiny", "--out", "g1", "--set", "data.source=lerobot", "--set", "data.dir="+ds,
		"--set", "train.lora.rank=4", "--set", "train.steps=40", "--set", "train.batch_size=8", "--set", "train.lr=3e-3",
		"--set", "train.warmup_steps=5", "--set", "eval.examples=8", "--set", "eval.batch_size=8", "--set", "train.eval_every=0")
	requireOK(t, r)
	rows := trainRows(t, filepath.Join(dir, "g1"))
	require.Len(t, rows, 40)
	var first, last float64
	for s := 1; s <= 5; s++ {
		first += rows[s] / 5
		last += rows[35+s] / 5
	}
	require.Less(t, last, 0.8*first, "the flow loss falls: first 5 steps %.3f, last 5 %.3f", first, last)

	var row struct {
		Trainable int `json:"params_trainable"`
		Total     int `json:"params_total"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "g1", "metrics.jsonl"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal([]byte(strings.SplitN(string(b), "\n", 2)[0]), &row))
	require.Greater(t, row.Trainable, 0)
	require.Less(t, row.Trainable, row.Total)
	events, _ := filepath.Glob(filepath.Join(dir, "g1", "tensorboard", "events.out.tfevents.*"))
	require.NotEmpty(t, events)

	ckpt, err := checkpoints.Resolve(filepath.Join(dir, "g1"), func(string) {})
	require.NoError(t, err)
	spec, err := policy.ReadSpec(filepath.Join(ckpt, policy.SpecFile))
	require.NoError(t, err)
	require.Equal(t, 26, spec.StateDim, "the spec is the robot's, unpadded")
	require.Equal(t, 26, spec.ActionDim)
	require.Equal(t, "quantiles", spec.Normalization)
	vars, _, err := checkpoints.LoadVariables(ckpt)
	require.NoError(t, err)
	adapter := vars["/gemma_expert/model/layers/0/self_attn/q_proj/lora/b"]
	require.NotNil(t, adapter, "the expert's attention has an adapter")
	require.NotEqual(t, make([]float32, adapter.Shape().Size()), tensors.MustCopyFlatData[float32](adapter), "the adapter trains")
	require.Contains(t, vars, "/model/vision_tower/vision_model/encoder/layers/0/self_attn/q_proj/lora/b", "and the backbone's")

	require.FileExists(t, filepath.Join(ckpt, "base.json"), "an adapter-only checkpoint")

	r = reel(t, dir, "eval", "g1")
	requireOK(t, r)
	require.Contains(t, r.stdout, "actions/chunk_mse")
	require.Contains(t, r.stderr, "no closed-loop evaluation")
	var ev struct{ Metrics map[string]float64 }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &ev))

	// Exported as a Hugging Face directory (LoRA merged, the expert as reel.* tensors), the
	// policy loads again as model.pretrained: at lr 0 its evaluation is the run's own.
	requireOK(t, reel(t, dir, "export", "g1", "--format", "hf", "--out", "g1-hf"))
	r = reel(t, dir, "train", "pi0-tiny", "--out", "again", "--set", "data.source=lerobot", "--set", "data.dir="+ds,
		"--set", "model.pretrained="+filepath.Join(dir, "g1-hf"), "--set", "model.hf_config=", "--set", "train.steps=1",
		"--set", "train.lr=0", "--set", "train.warmup_steps=0", "--set", "train.batch_size=8",
		"--set", "eval.examples=8", "--set", "eval.batch_size=8")
	requireOK(t, r)
	require.Contains(t, r.stderr, "initialised")
	again := lastEval(t, filepath.Join(dir, "again"))
	for _, k := range []string{"actions/chunk_mse", "actions/first_mse"} {
		require.InDelta(t, ev.Metrics[k], again[k], 1e-5*ev.Metrics[k], k)
	}
}

// pi0-tiny trains on the simulator with no data directory, evaluates closed-loop, and is served
// to a remote closed-loop evaluation; a setting of another architecture's head is one error line.
func TestPi0TinySimulatorServeEval(t *testing.T) {
	if testing.Short() {
		t.Skip("trains")
	}
	dir := t.TempDir()
	requireOK(t, reel(t, dir, append([]string{"train", "pi0-tiny", "--out", "run"}, quickVLA...)...))
	r := reel(t, dir, "eval", "run", "--set", "eval.episodes=4", "--set", "eval.videos=0")
	requireOK(t, r)
	out := parseClosedLoop(t, r)
	require.Equal(t, 4, out.ClosedLoop.Episodes)
	require.Contains(t, out.Metrics, "actions/chunk_mse")

	addr, stop := startServer(t, dir, "run")
	defer stop()
	r = reel(t, dir, "eval", "run", "--remote", "ws://"+addr, "--set", "eval.episodes=2", "--set", "eval.videos=0")
	requireOK(t, r)
	require.Equal(t, 2, parseClosedLoop(t, r).ClosedLoop.Episodes)

	msg := requireUserError(t, reel(t, dir, "train", "pi0-tiny", "--out", "bad", "--set", "policy.head=mse"), -1)
	require.Contains(t, msg, "policy.head")
	require.Contains(t, msg, "pi0")
	msg = requireUserError(t, reel(t, dir, "train", "pi0-tiny", "--out", "bad", "--set", "model.image_size=64"), -1)
	require.Contains(t, msg, "model.image_size")
}

// model.pretrained: a PaliGemma directory initialises the backbone with its weights and the
// expert at random; a directory that also holds the expert as reel.* tensors (the export
// convention) loads them too, so an exported pi0 loads again.
func TestPi0PretrainedPaliGemmaAndExpertRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("trains")
	}
	dir := t.TempDir()
	pg, err := filepath.Abs("../../hf/testdata/paligemma")
	require.NoError(t, err)
	ds, err := filepath.Abs("../../lerobot/testdata/g1_v21")
	require.NoError(t, err)
	args := func(out, pretrained string) []string {
		return []string{"train", "pi0", "--out", out, "--set", "model.pretrained=" + pretrained, "--set", "model.image_size=16",
			"--set", "model.max_text_len=8", "--set", "data.dir=" + ds, "--set", "policy.horizon=4", "--set", "policy.execute=2",
			"--set", "policy.expert_dim=16", "--set", "policy.expert_mlp=24", "--set", "train.precision=f32",
			"--set", "train.steps=1", "--set", "train.batch_size=2", "--set", "train.lr=0", "--set", "train.warmup_steps=0",
			"--set", "train.eval_every=0", "--set", "eval.examples=2", "--set", "eval.batch_size=2"}
	}
	r := reel(t, dir, args("a", pg)...)
	requireOK(t, r)
	require.Contains(t, r.stderr, "initialised")
	load := func(run string) map[string]*tensors.Tensor {
		ck, err := checkpoints.Resolve(filepath.Join(dir, run), func(string) {})
		require.NoError(t, err)
		vars, _, err := checkpoints.LoadVariables(ck)
		require.NoError(t, err)
		return vars
	}
	a := load("a")
	hfw, _, err := checkpoints.ReadSafetensors(filepath.Join(pg, "model.safetensors"))
	require.NoError(t, err)
	// An independent read of the checkpoint: embed_tokens is stored as reel holds it ([vocab, D]).
	var embed *tensors.Tensor
	for name, v := range hfw {
		if strings.HasSuffix(name, "embed_tokens.weight") {
			embed = v
		}
	}
	require.NotNil(t, embed)
	require.Equal(t, tensors.MustCopyFlatData[float32](embed), tensors.MustCopyFlatData[float32](a["/model/language_model/embed_tokens/weight"]))

	// The PaliGemma's tensors plus the expert's under reel.* names, as `reel export --format hf`
	// writes a pi0.
	exported := filepath.Join(dir, "exported")
	require.NoError(t, os.MkdirAll(exported, 0o755))
	cfg, err := os.ReadFile(filepath.Join(pg, "config.json"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(exported, "config.json"), cfg, 0o644))
	named := map[string]*tensors.Tensor{}
	for k, v := range hfw {
		named[k] = v
	}
	var expert []string
	for path, v := range a {
		if strings.HasPrefix(path, "/gemma_expert/") || strings.HasPrefix(path, "/action_") || strings.HasPrefix(path, "/state_proj/") {
			named["reel."+strings.ReplaceAll(strings.TrimPrefix(path, "/"), "/", ".")] = v
			expert = append(expert, path)
		}
	}
	require.NotEmpty(t, expert)
	require.NoError(t, checkpoints.WriteSafetensors(filepath.Join(exported, "model.safetensors"), named, nil))
	requireOK(t, reel(t, dir, append(args("b", exported), "--set", "train.seed=7")...))
	b := load("b")
	for _, path := range expert {
		require.Equal(t, tensors.MustCopyFlatData[float32](a[path]), tensors.MustCopyFlatData[float32](b[path]), path)
	}
	// Without them (another seed) the expert starts elsewhere.
	requireOK(t, reel(t, dir, append(args("c", pg), "--set", "train.seed=7")...))
	c := load("c")
	q := "/gemma_expert/model/layers/0/self_attn/q_proj/weights"
	require.NotEqual(t, tensors.MustCopyFlatData[float32](a[q]), tensors.MustCopyFlatData[float32](c[q]))
}
