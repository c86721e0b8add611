package main

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/serve"
)

// SmolVLA from the CLI: the tiny LeRobot-layout smolvla directory (tasks/testdata/lerobot_smolvla,
// written by a PyTorch twin of LeRobot's modeling_smolvla.py) is served as it is; smolvla-tiny
// (random weights, the VLM frozen) fine-tunes on the real G1 dataset fixture, exports with
// --format lerobot (checked by an independent standard-library reader written from LeRobot's
// code, check_smolvla_export.py), and the export serves (the G1 spec) and loads again as model.pretrained: at
// lr 0 with the export's own statistics its evaluation is the run's.
func TestSmolVLAFineTunesServesExports(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes video and trains")
	}
	dir := t.TempDir()
	tiny, err := filepath.Abs("../../tasks/testdata/lerobot_smolvla/tiny")
	require.NoError(t, err)
	ds, err := filepath.Abs("../../lerobot/testdata/g1_v21")
	require.NoError(t, err)

	addr, stop := startServer(t, dir, tiny)
	c, err := serve.Dial(context.Background(), "ws://"+addr)
	require.NoError(t, err)
	info := c.Info()
	require.Equal(t, []string{"cam"}, info.Cameras)
	require.Equal(t, 6, info.ActionDim)
	require.Equal(t, 5, info.ChunkSize)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	acts, err := c.StepChunk(ctx, policy.Observation{Images: map[string]policy.Image{"cam": policy.NewImage(16, 16)},
		State: make([]float32, 6), Instruction: "pick the red square"})
	require.NoError(t, err)
	require.NotEmpty(t, acts)
	require.Len(t, acts[0], 6)
	c.Close()
	stop()

	args := func(out string, extra ...string) []string {
		return append([]string{"train", "smolvla-tiny", "--out", out, "--set", "data.source=lerobot", "--set", "data.dir=" + ds,
			"--set", "train.batch_size=8", "--set", "eval.examples=8", "--set", "eval.batch_size=8"}, extra...)
	}
	r := reel(t, dir, args("g1", "--set", "train.steps=30", "--set", "train.lr=3e-3", "--set", "train.warmup_steps=5",
		"--set", "train.eval_every=0")...)
	requireOK(t, r)
	rows := trainRows(t, filepath.Join(dir, "g1"))
	var first, last float64
	for s := 1; s <= 5; s++ {
		first += rows[s] / 5
		last += rows[25+s] / 5
	}
	require.Less(t, last, first, "the flow loss falls: first 5 steps %.3f, last 5 %.3f", first, last)
	run := lastEval(t, filepath.Join(dir, "g1"))

	r = reel(t, dir, "export", "g1", "--format", "lerobot", "--out", "g1-lerobot")
	requireOK(t, r)
	exported := filepath.Join(dir, "g1-lerobot")
	if py, err := exec.LookPath("python3"); err == nil {
		out, err := exec.Command(py, "../../tasks/testdata/lerobot_smolvla/check_smolvla_export.py", exported).CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Equal(t, "ok\n", string(out))
	} else {
		t.Log("no python3: the independent reader did not run")
	}
	_, err = os.Stat(exported + ".partial")
	require.True(t, os.IsNotExist(err), "built aside and swapped in")

	addr, stop = startServer(t, dir, exported)
	c, err = serve.Dial(context.Background(), "ws://"+addr)
	require.NoError(t, err)
	require.Equal(t, 26, c.Info().ActionDim, "the export's spec is the G1 run's")
	c.Close()
	stop()

	r = reel(t, dir, args("again", "--set", "model.pretrained="+exported, "--set", "model.hf_config=", "--set", "policy.norm_stats=checkpoint",
		"--set", "train.steps=1", "--set", "train.lr=0", "--set", "train.warmup_steps=0")...)
	requireOK(t, r)
	require.Contains(t, r.stderr, "(LeRobot smolvla)", "initialised from the exported directory")
	again := lastEval(t, filepath.Join(dir, "again"))
	for _, k := range []string{"actions/chunk_mse", "actions/first_mse"} {
		require.InDelta(t, run[k], again[k], 1e-4*run[k], k)
	}

	// The twin's directory fine-tuned 3 steps exports under exactly the names and shapes of its
	// model.safetensors (written from LeRobot's module tree by gen_smolvla_twin.py); the SmolVLM2
	// is frozen (train_expert_only: train.freeze model.*), so its tensors come back unchanged,
	// while the expert and the projections moved.
	r = reel(t, dir, args("twin", "--set", "model.pretrained="+tiny, "--set", "model.hf_config=", "--set", "model.image_size=16",
		"--set", "train.steps=3", "--set", "train.lr=1e-2", "--set", "train.warmup_steps=0", "--set", "train.eval_every=0")...)
	requireOK(t, r)
	require.Contains(t, r.stderr, "(LeRobot smolvla)")
	requireOK(t, reel(t, dir, "export", "twin", "--format", "lerobot", "--out", "twin-lerobot"))
	want, _, err := checkpoints.ReadSafetensors(filepath.Join(tiny, "model.safetensors"))
	require.NoError(t, err)
	got, _, err := checkpoints.ReadSafetensors(filepath.Join(dir, "twin-lerobot", "model.safetensors"))
	require.NoError(t, err)
	require.ElementsMatch(t, slices.Collect(maps.Keys(want)), slices.Collect(maps.Keys(got)))
	moved := 0
	for name, w := range want {
		require.Equal(t, w.Shape().Dimensions, got[name].Shape().Dimensions, name)
		if name == "model.vlm_with_expert.vlm.lm_head.weight" { // never run; written as the embeddings
			continue
		}
		wv, gv := tensors.MustCopyFlatData[float32](w), tensors.MustCopyFlatData[float32](got[name])
		if strings.HasPrefix(name, "model.vlm_with_expert.vlm.") {
			require.Equal(t, wv, gv, "frozen: %s", name)
		} else if !slices.Equal(wv, gv) {
			moved++
		}
	}
	require.Greater(t, moved, 30, "the expert and the projections trained")
}
