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

// lerobotPolicyCase is one LeRobot policy family's CLI round trip (lerobotPolicyRoundTrip).
type lerobotPolicyCase struct {
	recipe   string    // the tiny recipe that fine-tunes
	tiny     string    // the twin's LeRobot directory, relative to cmd/reel
	checker  string    // the independent standard-library reader of the export, relative to cmd/reel
	image    int       // side of the image the served directory is sent
	state    []float32 // the state it is sent
	marker   string    // what a run initialised from a LeRobot directory of the family prints
	fromTiny bool      // the fine-tune starts from the twin's directory (else the recipe's random init)
}

// lerobotPolicyRoundTrip runs c's family through the CLI as a user would: the tiny LeRobot
// directory is served as it is (its spec is the directory's features); the recipe fine-tunes 30
// steps on the real G1 dataset fixture and its flow loss falls; the run exports with --format
// lerobot, built aside and swapped in, and the independent reader accepts the export; the export
// serves with the G1 run's spec and loads again as model.pretrained, where at lr 0 with the
// export's own statistics its evaluation is the run's. It returns the test's directory, the
// twin's absolute path and the recipe's training arguments, for a family's own checks after.
func lerobotPolicyRoundTrip(t *testing.T, c lerobotPolicyCase) (dir, tiny string, args func(out string, extra ...string) []string) {
	t.Helper()
	dir = t.TempDir()
	tiny, err := filepath.Abs(c.tiny)
	require.NoError(t, err)
	ds, err := filepath.Abs("../../lerobot/testdata/g1_v21")
	require.NoError(t, err)

	addr, stop := startServer(t, dir, tiny)
	cl, err := serve.Dial(context.Background(), "ws://"+addr)
	require.NoError(t, err)
	info := cl.Info()
	require.Equal(t, []string{"cam"}, info.Cameras)
	require.Equal(t, 6, info.ActionDim)
	require.Equal(t, 5, info.ChunkSize)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	acts, err := cl.StepChunk(ctx, policy.Observation{Images: map[string]policy.Image{"cam": policy.NewImage(c.image, c.image)},
		State: c.state, Instruction: "pick the red square"})
	require.NoError(t, err)
	require.NotEmpty(t, acts)
	require.Len(t, acts[0], 6)
	cl.Close()
	stop()

	args = func(out string, extra ...string) []string {
		return append([]string{"train", c.recipe, "--out", out, "--set", "data.source=lerobot", "--set", "data.dir=" + ds,
			"--set", "train.batch_size=8", "--set", "eval.examples=8", "--set", "eval.batch_size=8"}, extra...)
	}
	from := func(pretrained string) []string {
		return []string{"--set", "model.pretrained=" + pretrained, "--set", "model.hf_config="}
	}
	first := []string{"--set", "train.steps=30", "--set", "train.lr=3e-3", "--set", "train.warmup_steps=5", "--set", "train.eval_every=0"}
	if c.fromTiny {
		first = append(from(tiny), first...)
	}
	r := reel(t, dir, args("g1", first...)...)
	requireOK(t, r)
	if c.fromTiny {
		require.Contains(t, r.stderr, c.marker, "initialised from the LeRobot directory")
	}
	rows := trainRows(t, filepath.Join(dir, "g1"))
	var head, tail float64
	for s := 1; s <= 5; s++ {
		head += rows[s] / 5
		tail += rows[25+s] / 5
	}
	require.Less(t, tail, head, "the flow loss falls: first 5 steps %.3f, last 5 %.3f", head, tail)
	run := lastEval(t, filepath.Join(dir, "g1"))

	r = reel(t, dir, "export", "g1", "--format", "lerobot", "--out", "g1-lerobot")
	requireOK(t, r)
	exported := filepath.Join(dir, "g1-lerobot")
	if py, err := exec.LookPath("python3"); err == nil {
		out, err := exec.Command(py, c.checker, exported).CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Equal(t, "ok\n", string(out))
	} else {
		t.Log("no python3: the independent reader did not run")
	}
	_, err = os.Stat(exported + ".partial")
	require.True(t, os.IsNotExist(err), "built aside and swapped in")

	addr, stop = startServer(t, dir, exported)
	cl, err = serve.Dial(context.Background(), "ws://"+addr)
	require.NoError(t, err)
	require.Equal(t, 26, cl.Info().ActionDim, "the export's spec is the G1 run's")
	cl.Close()
	stop()

	r = reel(t, dir, args("again", append(from(exported), "--set", "policy.norm_stats=checkpoint", "--set", "train.steps=1",
		"--set", "train.lr=0", "--set", "train.warmup_steps=0")...)...)
	requireOK(t, r)
	require.Contains(t, r.stderr, c.marker, "initialised from the exported directory")
	again := lastEval(t, filepath.Join(dir, "again"))
	for _, k := range []string{"actions/chunk_mse", "actions/first_mse"} {
		require.InDelta(t, run[k], again[k], 1e-4*run[k], k)
	}
	return dir, tiny, args
}

// A tiny LeRobot-layout pi0 directory (tasks/testdata/lerobot_pi0/tiny, written by a PyTorch twin
// of LeRobot's modeling_pi0.py) is served as it is, fine-tunes on the real G1 dataset fixture
// through model.pretrained, exports with --format lerobot (checked by an independent
// standard-library reader written from LeRobot's code), and the export serves and loads again
// as model.pretrained: at lr 0 with the export's own statistics its evaluation is the run's.
func TestPi0LeRobotDirectoryFineTunesServesExports(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes video and trains")
	}
	lerobotPolicyRoundTrip(t, lerobotPolicyCase{recipe: "pi0-tiny", tiny: "../../tasks/testdata/lerobot_pi0/tiny",
		checker: "../../tasks/testdata/lerobot_pi0/check_lerobot_export.py", image: 32, state: make([]float32, 6),
		marker: "(LeRobot pi0)", fromTiny: true})
}
