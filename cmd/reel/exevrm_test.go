package main

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/evaluate"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/lerobot"
	"github.com/reelml/reel/mediaio"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/reward"
	"github.com/reelml/reel/sim"
	"github.com/reelml/reel/tasks"
)

// TestDataGenReward writes reward episodes from the CLI and reads their labels back: kinds in
// the i%3 pattern, adversarial episodes negative, every decision step inside its episode.
func TestDataGenReward(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a dataset")
	}
	if _, err := mediaio.FFmpeg(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	r := reel(t, dir, "data", "gen-reward", "--episodes", "6", "--out", "rw", "--seed", "4", "--set", "data.max_steps=20")
	requireOK(t, r)
	require.Contains(t, r.stdout, "wrote 6 reward episodes")
	ds, err := lerobot.Open(filepath.Join(dir, "rw"))
	require.NoError(t, err)
	require.Equal(t, 6, ds.NumEpisodes())
	for i := range 6 {
		info := ds.EpisodeMeta(i)
		require.Equal(t, sim.RewardKindOf(i), sim.KindGroup(info.Kind), "episode %d", i)
		require.NotNil(t, info.DecisionStep)
		require.NotNil(t, info.Success)
		require.GreaterOrEqual(t, *info.DecisionStep, 0)
		require.Less(t, *info.DecisionStep, info.Length)
		if strings.HasPrefix(info.Kind, sim.KindAdversarial) {
			require.False(t, *info.Success)
			require.Equal(t, ds.EpisodeMeta(i-2).Length, info.Length)
		}
	}
	msg := requireUserError(t, reel(t, dir, "data", "gen-reward", "--episodes", "0", "--out", "x"), 2)
	require.Contains(t, msg, "data gen-reward: --episodes must be a positive number")

	// The dataset trains and evaluates the reward model as the simulator's episodes do.
	r = reel(t, dir, "train", "exevrm-tiny", "--out", "run", "--set", "data.source=lerobot", "--set", "data.dir=rw", "--set", "eval.dir=rw",
		"--set", "train.steps=2", "--set", "train.batch_size=4", "--set", "model.frames=4", "--set", "eval.batch_size=8")
	requireOK(t, r)
	require.Contains(t, r.stderr, "reward/accuracy=")
	require.Contains(t, r.stderr, "reward/accuracy_kind_adversarial=")
	msg = requireUserError(t, reel(t, dir, "train", "exevrm-tiny", "--set", "data.source=lerobot"), 1)
	require.Contains(t, msg, "data.dir")
	msg = requireUserError(t, reel(t, dir, "train", "exevrm-tiny", "--out", "run2", "--set", "data.source=lerobot", "--set", "data.dir=nope",
		"--set", "train.steps=1"), 1)
	require.Contains(t, msg, "nope")
}

// TestExeVRMTrainEval trains exevrm-tiny a few steps from the CLI, evaluates it (the metrics
// and the baseline side by side), opens it as a reward model whose batched scores equal the
// one-by-one ones, and refuses bad recipes with one line.
func TestExeVRMTrainEval(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a tiny reward model")
	}
	dir := t.TempDir()
	quick := []string{"--set", "train.steps=3", "--set", "train.batch_size=4", "--set", "data.episodes=9",
		"--set", "eval.episodes=6", "--set", "eval.batch_size=16", "--set", "model.frames=4"}
	r := reel(t, dir, append([]string{"train", "exevrm-tiny", "--out", "run"}, quick...)...)
	requireOK(t, r)
	require.Contains(t, r.stderr, "reward/accuracy=")
	r = reel(t, dir, "eval", "run")
	requireOK(t, r)
	var res evaluate.Result
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	for _, k := range []string{"accuracy", "precision", "recall", "accuracy_kind_adversarial", "accuracy_kind_expert", "attribution_error"} {
		require.Contains(t, res.Metrics, "reward/"+k)
		require.Contains(t, res.Metrics, "reward/baseline_"+k)
	}
	require.Regexp(t, `(?m)^ +metric +ExeVRM +frame-diff baseline$`, r.stderr)
	require.Regexp(t, `(?m)^ +accuracy +[0-9.]+ +[0-9.]+$`, r.stderr)

	b, _, err := backends.Select("")
	require.NoError(t, err)
	m, err := tasks.OpenExeVRMReward(b, filepath.Join(dir, "run"))
	require.NoError(t, err)
	defer m.Close()
	var clips []reward.Clip
	for i := range 17 { // more than one graph batch of 16
		fr := []policy.Image{policy.NewImage(32, 32), policy.NewImage(32, 32)}
		for p := range fr[1].Pix {
			fr[1].Pix[p] = float32((p*7+i*13)%100) / 100
		}
		clips = append(clips, reward.Clip{Instruction: []string{"pick up the red square", "push the blue circle to the left edge"}[i%2], Frames: fr})
	}
	all, err := m.LogPTrue(clips)
	require.NoError(t, err)
	require.Len(t, all, 17)
	for i, c := range clips {
		one, err := m.LogPTrue([]reward.Clip{c})
		require.NoError(t, err)
		require.InDelta(t, one[0], all[i], 1e-5, "clip %d", i)
		require.LessOrEqual(t, all[i], 0.0)
		require.False(t, math.IsNaN(all[i]))
	}
	_, err = m.LogPTrue([]reward.Clip{{Instruction: "pick up the red square"}})
	require.ErrorContains(t, err, "no frames")

	msg := requireUserError(t, reel(t, dir, "train", "exevrm-tiny", "--set", "data.source=folder"), 1)
	require.Contains(t, msg, "data.source")
	msg = requireUserError(t, reel(t, dir, "train", "exevrm-tiny", "--set", "eval.sets=[videoqa]"), 1)
	require.Contains(t, msg, "eval.sets")
	msg = requireUserError(t, reel(t, dir, "train", "exevrm-tiny", "--set", "model.max_text_len=8"), 1)
	require.Contains(t, msg, "model.max_text_len")
}

// TestExeVRMQwen3VLTrainEval trains exevrm-qwen3vl-tiny (a random Qwen3-VL with the paper's
// spatiotemporal pruning, pruned tokens hidden in its tower and decoder) a few steps from the CLI
// and evaluates it: accuracy, precision and recall beside the frame-difference baseline, as task
// exevrm reports them; the run opens as a reward model.
func TestExeVRMQwen3VLTrainEval(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a tiny reward model")
	}
	dir := t.TempDir()
	r := reel(t, dir, "train", "exevrm-qwen3vl-tiny", "--out", "run", "--set", "train.steps=3", "--set", "train.batch_size=4",
		"--set", "data.episodes=9", "--set", "eval.episodes=6", "--set", "eval.batch_size=16", "--set", "model.frames=4")
	requireOK(t, r)
	require.Contains(t, r.stderr, "reward/accuracy=")
	r = reel(t, dir, "eval", "run")
	requireOK(t, r)
	var res evaluate.Result
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	for _, k := range []string{"accuracy", "precision", "recall", "f1", "attribution_error"} {
		require.Contains(t, res.Metrics, "reward/"+k)
		require.Contains(t, res.Metrics, "reward/baseline_"+k)
	}
	require.Regexp(t, `(?m)^ +accuracy +[0-9.]+ +[0-9.]+$`, r.stderr)

	b, _, err := backends.Select("")
	require.NoError(t, err)
	m, err := tasks.OpenExeVRMReward(b, filepath.Join(dir, "run"))
	require.NoError(t, err)
	defer m.Close()
	lp, err := m.LogPTrue([]reward.Clip{{Instruction: "pick up the red square", Frames: []policy.Image{policy.NewImage(32, 32), policy.NewImage(32, 32)}}})
	require.NoError(t, err)
	require.Less(t, lp[0], 0.0)
}
