package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/serve"
)

// The tiny LeRobot-layout pi05 directory (tasks/testdata/lerobot_pi05/tiny, written by a PyTorch
// twin of LeRobot's modeling_pi05.py) is served as it is; pi05-tiny fine-tunes from it on the real
// G1 dataset fixture (26-D state written into the prompt); the run exports with --format lerobot
// as a pi05 directory (checked by an independent standard-library reader written from LeRobot's
// code), which serves and loads again as model.pretrained: at lr 0 with the export's own
// statistics its evaluation is the run's.
func TestPi05LeRobotDirectoryFineTunesServesExports(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes video and trains")
	}
	dir := t.TempDir()
	tiny, err := filepath.Abs("../../tasks/testdata/lerobot_pi05/tiny")
	require.NoError(t, err)
	ds, err := filepath.Abs("../../lerobot/testdata/g1_v21")
	require.NoError(t, err)

	addr, stop := startServer(t, dir, tiny)
	c, err := serve.Dial(context.Background(), "ws://"+addr)
	require.NoError(t, err)
	require.Equal(t, 6, c.Info().ActionDim)
	require.Equal(t, 5, c.Info().ChunkSize)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	acts, err := c.StepChunk(ctx, policy.Observation{Images: map[string]policy.Image{"cam": policy.NewImage(32, 32)},
		State: []float32{0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, Instruction: "pick the red square"})
	require.NoError(t, err)
	require.NotEmpty(t, acts)
	require.Len(t, acts[0], 6)
	c.Close()
	stop()

	args := func(out, pretrained string, extra ...string) []string {
		return append([]string{"train", "pi05-tiny", "--out", out, "--set", "model.pretrained=" + pretrained, "--set", "model.hf_config=",
			"--set", "data.source=lerobot", "--set", "data.dir=" + ds, "--set", "train.batch_size=8", "--set", "eval.examples=8",
			"--set", "eval.batch_size=8"}, extra...)
	}
	r := reel(t, dir, args("g1", tiny, "--set", "train.steps=30", "--set", "train.lr=3e-3", "--set", "train.warmup_steps=5",
		"--set", "train.eval_every=0")...)
	requireOK(t, r)
	require.Contains(t, r.stderr, "(LeRobot pi05)", "initialised from the LeRobot directory")
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
		out, err := exec.Command(py, "../../tasks/testdata/lerobot_pi05/check_pi05_export.py", exported).CombinedOutput()
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

	r = reel(t, dir, args("again", exported, "--set", "policy.norm_stats=checkpoint", "--set", "train.steps=1",
		"--set", "train.lr=0", "--set", "train.warmup_steps=0")...)
	requireOK(t, r)
	require.Contains(t, r.stderr, "(LeRobot pi05)")
	again := lastEval(t, filepath.Join(dir, "again"))
	for _, k := range []string{"actions/chunk_mse", "actions/first_mse"} {
		require.InDelta(t, run[k], again[k], 1e-4*run[k], k)
	}
}
