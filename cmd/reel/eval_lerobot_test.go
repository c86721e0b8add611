package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// `reel eval DIR` on a LeRobot pi0 policy directory, as it is: the tiny directory on the G1
// fixture gives one JSON of offline action errors (the G1 robot does not fit the simulator, so no
// closed loop) and writes nothing into the directory; and a directory exported from a run whose
// robot is the simulator's evaluates to the run's own offline errors and, closed-loop, to the
// run's own actions (the same boundary jumps and success), through LeRobot's layout and not
// reel's checkpoint.
func TestEvalLeRobotDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes video and trains")
	}
	dir := t.TempDir()
	tinyDir, err := filepath.Abs("../../tasks/testdata/lerobot_pi0/tiny")
	require.NoError(t, err)
	ds, err := filepath.Abs("../../lerobot/testdata/g1_v21")
	require.NoError(t, err)
	before, err := os.ReadDir(tinyDir)
	require.NoError(t, err)

	g1 := []string{"eval", tinyDir, "--set", "data.source=lerobot", "--set", "data.dir=" + ds, "--set", "eval.examples=8", "--set", "eval.batch_size=8"}
	// Its statistics are for 6-D states and actions, G1's are 26-D: one line naming the fix.
	r := reel(t, dir, g1...)
	require.NotZero(t, r.code)
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	require.Contains(t, lines[len(lines)-1], "policy.norm_stats: dataset recomputes them")
	r = reel(t, dir, append(g1, "--set", "policy.norm_stats=dataset")...)
	requireOK(t, r)
	var res struct {
		Metrics    map[string]float64 `json:"metrics"`
		ClosedLoop *json.RawMessage   `json:"closed_loop"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res), r.stdout)
	for _, k := range []string{"actions/chunk_mse", "actions/first_mse"} {
		require.Greater(t, res.Metrics[k], 0.0, k)
	}
	require.Nil(t, res.ClosedLoop)
	require.Contains(t, r.stderr, "no closed-loop evaluation")
	after, err := os.ReadDir(tinyDir)
	require.NoError(t, err)
	require.Equal(t, len(before), len(after), "nothing written into the directory")

	// A run on the simulator from the tiny directory, exported as a LeRobot directory.
	simSets := []string{"--set", "data.source=synthetic", "--set", "data.min_objects=2", "--set", "data.max_objects=3",
		"--set", "data.shapes=[circle,square,triangle]", "--set", "data.colors=[red,green,blue,yellow]",
		"--set", "data.families=[pick,place,push,pick_any]", "--set", "data.bowls=1",
		"--set", "eval.episodes=4", "--set", "eval.videos=0", "--set", "eval.examples=8", "--set", "eval.batch_size=8"}
	r = reel(t, dir, append([]string{"train", "pi0-tiny", "--out", "run", "--set", "model.pretrained=" + tinyDir, "--set", "model.hf_config=",
		"--set", "train.steps=2", "--set", "train.eval_every=0", "--set", "train.batch_size=4"}, simSets...)...)
	requireOK(t, r)
	requireOK(t, reel(t, dir, "export", "run", "--format", "lerobot", "--out", "exp"))
	r = reel(t, dir, "eval", "run")
	requireOK(t, r)
	var own, foreign struct {
		Metrics map[string]float64 `json:"metrics"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &own))
	r = reel(t, dir, append([]string{"eval", "exp"}, simSets...)...)
	requireOK(t, r)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &foreign))
	for _, k := range []string{"actions/chunk_mse", "actions/first_mse", "closed_loop/boundary_jump", "closed_loop/success", "pick_any/mode_hit"} {
		require.Contains(t, foreign.Metrics, k)
		require.InDelta(t, own.Metrics[k], foreign.Metrics[k], 1e-5*(1+own.Metrics[k]), k)
	}
	require.Greater(t, foreign.Metrics["closed_loop/boundary_jump"], 0.0)
	_, err = os.Stat(filepath.Join(dir, "exp", "eval.json"))
	require.True(t, os.IsNotExist(err), "nothing written into the directory")
}
