package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/checkpoints"
)

// reelBin is the reel binary built once by TestMain; the tests run it as a user would.
var reelBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "reel-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	reelBin = filepath.Join(dir, "reel")
	build := exec.Command("go", "build", "-o", reelBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building reel: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// tiny is a small, fast configuration of the tiny recipes (a few seconds per run on 2 cores).
var tiny = []string{"--set", "eval.examples=8", "--set", "eval.batch_size=8", "--set", "train.eval_every=0"}

// reel runs the binary in dir with the Go backend forced (no plugin auto-detection).
func reel(t *testing.T, dir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, reelBin, args...)
	cmd.Dir = dir
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMLX_BACKEND=") && !strings.HasPrefix(kv, "REEL_PJRT_PLUGIN=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "GOMLX_BACKEND=go")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("reel %s: %v", strings.Join(args, " "), err)
	}
	require.NotEqualf(t, context.DeadlineExceeded, ctx.Err(), "reel %s timed out", strings.Join(args, " "))
	requireNoCrash(t, r)
	return r
}

func requireNoCrash(t *testing.T, r result) {
	t.Helper()
	for _, bad := range []string{"goroutine ", "panic:"} {
		require.NotContainsf(t, r.stderr, bad, "stderr shows a crash:\n%s", r.stderr)
		require.NotContainsf(t, r.stdout, bad, "stdout shows a crash:\n%s", r.stdout)
	}
}

// requireOK checks a successful run.
func requireOK(t *testing.T, r result) {
	t.Helper()
	require.Equalf(t, 0, r.code, "exit status; stderr:\n%s", r.stderr)
}

// requireUserError checks that the command failed with exit status code (any non-zero status
// if code < 0) and printed exactly one line, "reel: ...", on stderr. It returns that line.
func requireUserError(t *testing.T, r result, code int) string {
	t.Helper()
	if code < 0 {
		require.NotZerof(t, r.code, "expected failure; stderr:\n%s", r.stderr)
	} else {
		require.Equalf(t, code, r.code, "exit status; stderr:\n%s", r.stderr)
	}
	msg := strings.TrimSuffix(r.stderr, "\n")
	require.NotContainsf(t, msg, "\n", "stderr must be one line:\n%s", r.stderr)
	require.Truef(t, strings.HasPrefix(msg, "reel: "), "stderr must start with \"reel: \": %q", msg)
	return msg
}

// requireLastLineError is requireUserError for failures after a run started logging: only the
// last stderr line is the error.
func requireLastLineError(t *testing.T, r result, code int) string {
	t.Helper()
	require.Equalf(t, code, r.code, "exit status; stderr:\n%s", r.stderr)
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	require.Truef(t, strings.HasPrefix(last, "reel: "), "last stderr line must start with \"reel: \": %q", last)
	return last
}

func TestUnknownCommand(t *testing.T) {
	msg := requireUserError(t, reel(t, t.TempDir(), "frobnicate"), 2)
	require.Contains(t, msg, `"frobnicate"`)
	for _, c := range commands {
		require.Contains(t, msg, c.name)
	}
}

// `reel --help` lists every command and every subcommand the group commands dispatch, and each
// listed line's command answers --help.
func TestHelpListsEveryCommand(t *testing.T) {
	r := reel(t, t.TempDir(), "--help")
	requireOK(t, r)
	groups := map[string]map[string]func([]string) error{"bench": benchCommands, "data": dataCommands, "hf": hfCommands}
	for _, c := range commands {
		require.Regexp(t, `(?m)^  reel `+c.name+`( |$)`, r.stdout)
		for sub := range groups[c.name] {
			require.Contains(t, r.stdout, "reel "+c.name+" "+sub+" ", "reel --help omits %s %s", c.name, sub)
			requireOK(t, reel(t, t.TempDir(), c.name, sub, "--help"))
		}
	}
}

func TestNoArgsPrintsUsage(t *testing.T) {
	r := reel(t, t.TempDir())
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stdout, "Usage:")
	requireOK(t, reel(t, t.TempDir(), "--help"))
}

func TestTrainRecipeUnknownKey(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(
		"name: bad\nbase: counting-pretrain-tiny\ntrain:\n  steps: 5\n  lrr: 1e-3\n"), 0o644))
	msg := requireUserError(t, reel(t, dir, "train", "bad.yaml"), -1)
	require.Contains(t, msg, "bad.yaml:5")
	require.Contains(t, msg, `"lrr"`)
	require.Contains(t, msg, `did you mean "lr"`)
	_, err := os.Stat(filepath.Join(dir, "runs"))
	require.True(t, os.IsNotExist(err), "a rejected recipe must not create a run directory")
}

func TestTrainBadOverrides(t *testing.T) {
	dir := t.TempDir()
	msg := requireUserError(t, reel(t, dir, "train", "counting-pretrain-tiny", "--set", "train.steps=abc"), -1)
	require.Contains(t, msg, "train.steps")
	require.Contains(t, msg, `"abc"`)

	msg = requireUserError(t, reel(t, dir, "train", "counting-pretrain-tiny", "--set", "train.lr=20"), -1)
	require.Contains(t, msg, "train.lr")
	require.Contains(t, msg, "out of range")

	msg = requireUserError(t, reel(t, dir, "train", "counting-pretrain-tiny", "--bogus"), 2)
	require.Contains(t, msg, "--bogus")

	msg = requireUserError(t, reel(t, dir, "train"), 2)
	require.Contains(t, msg, "expected one recipe")

	requireUserError(t, reel(t, dir, "train", "no-such-recipe"), -1)

	msg = requireUserError(t, reel(t, dir, "train", "counting-pretrain-tiny", "--resume", "--overwrite"), 2)
	require.Contains(t, msg, "exclude")
	_, err := os.Stat(filepath.Join(dir, "runs"))
	require.True(t, os.IsNotExist(err), "failed commands must not create a run directory")
}

func TestEvalMissing(t *testing.T) {
	msg := requireUserError(t, reel(t, t.TempDir(), "eval", "/nonexistent"), 1)
	require.Contains(t, msg, "/nonexistent")
	require.Contains(t, msg, "no such run or checkpoint directory")

	requireUserError(t, reel(t, t.TempDir(), "eval"), 2)

	empty := t.TempDir()
	msg = requireUserError(t, reel(t, empty, "eval", "."), 1)
	require.Contains(t, msg, "no checkpoints found")
	msg = requireUserError(t, reel(t, empty, "eval", ".", "--all"), 1)
	require.Contains(t, msg, "has no checkpoints")
}

func TestRecipesCommands(t *testing.T) {
	dir := t.TempDir()
	r := reel(t, dir, "recipes", "list")
	requireOK(t, r)
	require.Contains(t, r.stdout, "counting-pretrain-tiny")
	require.Contains(t, r.stdout, "counting-finetune-tiny")

	r = reel(t, dir, "recipes", "show", "counting-finetune-tiny")
	requireOK(t, r)
	require.Contains(t, r.stdout, "init_from")

	r = reel(t, dir, "recipes", "show", "counting-pretrain-tiny", "--set", "train.steps=7")
	requireOK(t, r)
	require.Regexp(t, `(?m)^\s+steps: 7$`, r.stdout)

	r = reel(t, dir, "recipes", "cp", "counting-pretrain-tiny", "X.yaml")
	requireOK(t, r)
	require.FileExists(t, filepath.Join(dir, "X.yaml"))

	r = reel(t, dir, "recipes", "validate", "X.yaml")
	requireOK(t, r)
	require.Contains(t, r.stdout, "X.yaml: ok")

	msg := requireUserError(t, reel(t, dir, "recipes", "cp", "counting-pretrain-tiny", "X.yaml"), 1)
	require.Contains(t, msg, "already exists")
	require.Contains(t, msg, "--force")
	requireOK(t, reel(t, dir, "recipes", "cp", "counting-pretrain-tiny", "X.yaml", "--force"))

	requireUserError(t, reel(t, dir, "recipes"), 2)
	requireUserError(t, reel(t, dir, "recipes", "frob"), 2)
	requireUserError(t, reel(t, dir, "recipes", "show"), 2)
	requireUserError(t, reel(t, dir, "recipes", "show", "no-such-recipe"), 1)
}

func TestDoctor(t *testing.T) {
	r := reel(t, t.TempDir(), "doctor")
	requireOK(t, r)
	require.Contains(t, r.stdout, "simd:")
	require.Contains(t, r.stdout, "selected:  backend go")
	require.NotContains(t, r.stdout, "FAILED")
}

// trainRows returns step → loss of the train rows of RUN/metrics.jsonl (failing on duplicates).
func trainRows(t *testing.T, run string) map[int]float64 {
	t.Helper()
	f, err := os.ReadFile(filepath.Join(run, "metrics.jsonl"))
	require.NoError(t, err)
	rows := map[int]float64{}
	for _, line := range strings.Split(strings.TrimSpace(string(f)), "\n") {
		var r struct {
			Split string  `json:"split"`
			Step  int     `json:"step"`
			Loss  float64 `json:"loss"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &r), line)
		if r.Split != "train" {
			continue
		}
		_, dup := rows[r.Step]
		require.Falsef(t, dup, "step %d logged twice in %s", r.Step, run)
		rows[r.Step] = r.Loss
	}
	return rows
}

func requireSteps(t *testing.T, rows map[int]float64, n int) {
	t.Helper()
	require.Len(t, rows, n)
	for s := 1; s <= n; s++ {
		l, ok := rows[s]
		require.Truef(t, ok, "missing train row for step %d", s)
		require.Falsef(t, math.IsNaN(l) || math.IsInf(l, 0), "step %d: loss %v", s, l)
	}
}

func ckptList(t *testing.T, run string) []string {
	t.Helper()
	dirs, err := checkpoints.List(filepath.Join(run, "checkpoints"))
	require.NoError(t, err)
	return dirs
}

func modelBin(t *testing.T, ckpt string) string {
	t.Helper()
	bins, err := filepath.Glob(filepath.Join(ckpt, "model", "*.bin"))
	require.NoError(t, err)
	require.Len(t, bins, 1)
	return bins[0]
}

func TestInitFromShapeMismatch(t *testing.T) {
	dir := t.TempDir()
	small := append([]string{"--set", "train.steps=2", "--set", "train.batch_size=8"}, tiny...)
	pre := filepath.Join(dir, "pre")
	requireOK(t, reel(t, dir, append([]string{"train", "counting-pretrain-tiny", "--out", pre}, small...)...))

	// Same model: fine-tuning loads the weights.
	r := reel(t, dir, append([]string{"train", "counting-finetune-tiny", "--out", filepath.Join(dir, "ft-ok"),
		"--set", "train.init_from=" + pre}, small...)...)
	requireOK(t, r)
	require.Regexp(t, `initialised \d+ variables from `+regexp.QuoteMeta(pre), r.stderr)

	// Different vision width: a one-line error naming the variable and both shapes.
	r = reel(t, dir, append([]string{"train", "counting-finetune-tiny", "--out", filepath.Join(dir, "ft-bad"),
		"--set", "train.init_from=" + pre, "--set", "model.vision_dim=32"}, small...)...)
	msg := requireLastLineError(t, r, 1)
	m := regexp.MustCompile(`variable (/\S+) has shape (.+) in the checkpoint but (.+) in the model`).FindStringSubmatch(msg)
	require.NotNilf(t, m, "error should name the variable and both shapes: %q", msg)
	require.NotEqual(t, m[2], m[3])
	require.Contains(t, m[2], "64")
	require.Contains(t, m[3], "32")
	require.Contains(t, msg, "train.init_from")
	require.Empty(t, ckptList(t, filepath.Join(dir, "ft-bad")), "a failed fine-tune must not save checkpoints")

	// A missing init_from directory is a clear error too.
	r = reel(t, dir, append([]string{"train", "counting-finetune-tiny", "--out", filepath.Join(dir, "ft-missing"),
		"--set", "train.init_from=" + filepath.Join(dir, "nope")}, small...)...)
	msg = requireLastLineError(t, r, 1)
	require.Contains(t, msg, "train.init_from")
	require.Contains(t, msg, "no such run or checkpoint directory")
}

func TestTrainRefusesExistingRun(t *testing.T) {
	dir := t.TempDir()
	args := append([]string{"train", "counting-pretrain-tiny", "--out", "run", "--set", "train.steps=1", "--set", "train.batch_size=8"}, tiny...)
	requireOK(t, reel(t, dir, args...))
	msg := requireLastLineError(t, reel(t, dir, args...), 1)
	require.Contains(t, msg, "--resume")
	requireOK(t, reel(t, dir, append(args, "--overwrite")...))
	requireSteps(t, trainRows(t, filepath.Join(dir, "run")), 1)
	events, err := filepath.Glob(filepath.Join(dir, "run", "tensorboard", "events.out.tfevents.*"))
	require.NoError(t, err)
	require.Len(t, events, 1, "--overwrite starts the TensorBoard events over too")
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for 60 steps")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	r := reel(t, dir, "train", "counting-pretrain-tiny", "--out", out, "--set", "train.steps=60",
		"--set", "train.eval_every=0", "--set", "eval.examples=64", "--set", "checkpoint.every=20")
	requireOK(t, r)
	require.Contains(t, r.stderr, "reel: done: 60 steps")

	rows := trainRows(t, out)
	requireSteps(t, rows, 60)
	mean := func(from, to int) float64 {
		var s float64
		for i := from; i <= to; i++ {
			s += rows[i]
		}
		return s / float64(to-from+1)
	}
	first, last := mean(1, 5), mean(51, 60)
	t.Logf("mean loss: first 5 steps %.4f, last 10 steps %.4f", first, last)
	require.Less(t, last, 0.7*first, "the loss should drop during training")

	require.FileExists(t, filepath.Join(out, "plots", "loss.png"))
	require.FileExists(t, filepath.Join(out, "checkpoints", "LATEST"))
	require.FileExists(t, filepath.Join(out, "recipe.yaml"))
	ckpts := ckptList(t, out)
	require.Len(t, ckpts, 3) // steps 20, 40, 60 (keep 3)
	require.Equal(t, checkpoints.DirName(60), filepath.Base(ckpts[2]))

	// reel eval RUN: one JSON object on stdout, eval.json beside the checkpoint.
	r = reel(t, dir, "eval", out)
	requireOK(t, r)
	var res struct {
		Checkpoint string             `json:"checkpoint"`
		Step       int64              `json:"step"`
		Metrics    map[string]float64 `json:"metrics"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res), r.stdout)
	require.Equal(t, int64(60), res.Step)
	require.Equal(t, ckpts[2], res.Checkpoint)
	require.Contains(t, res.Metrics, "counting/accuracy")
	acc := res.Metrics["counting/accuracy"]
	require.True(t, acc >= 0 && acc <= 1, "accuracy %v", acc)
	require.FileExists(t, filepath.Join(ckpts[2], "eval.json"))
	// eval.json is written after the checksums: the checkpoint must still verify.
	_, err := checkpoints.Verify(ckpts[2])
	require.NoError(t, err)

	// Evaluating is deterministic: the checkpoint directory gives the same numbers.
	r = reel(t, dir, "eval", ckpts[2])
	requireOK(t, r)
	var res2 struct {
		Metrics map[string]float64 `json:"metrics"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res2))
	require.Equal(t, res.Metrics, res2.Metrics)

	// reel eval RUN --all: every checkpoint, and a plot per metric.
	r = reel(t, dir, "eval", out, "--all")
	requireOK(t, r)
	var all struct {
		Run         string `json:"run"`
		Checkpoints []struct {
			Step    int64              `json:"step"`
			Metrics map[string]float64 `json:"metrics"`
		} `json:"checkpoints"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &all), r.stdout)
	require.Len(t, all.Checkpoints, 3)
	var steps []int64
	for _, c := range all.Checkpoints {
		steps = append(steps, c.Step)
		require.Contains(t, c.Metrics, "counting/accuracy")
	}
	require.True(t, sort.SliceIsSorted(steps, func(i, j int) bool { return steps[i] < steps[j] }))
	require.Equal(t, res.Metrics, all.Checkpoints[2].Metrics)
	require.FileExists(t, filepath.Join(out, "plots", "eval-counting-accuracy.png"))
}

func TestExactResume(t *testing.T) {
	if testing.Short() {
		t.Skip("trains 80 steps")
	}
	dir := t.TempDir()
	args := []string{"train", "counting-pretrain-tiny", "--set", "train.steps=40", "--set", "checkpoint.every=10",
		"--set", "eval.examples=16", "--set", "train.eval_every=0"}
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	requireOK(t, reel(t, dir, append(args, "--out", a)...))

	r := reel(t, dir, append(args, "--out", b, "--stop-after", "20")...)
	requireOK(t, r)
	requireSteps(t, trainRows(t, b), 20)
	require.Equal(t, checkpoints.DirName(20), filepath.Base(ckptList(t, b)[len(ckptList(t, b))-1]))

	r = reel(t, dir, append(args, "--out", b, "--resume")...)
	requireOK(t, r)
	require.Contains(t, r.stderr, "resuming from "+filepath.Join(b, "checkpoints", checkpoints.DirName(20)))

	ra, rb := trainRows(t, a), trainRows(t, b)
	requireSteps(t, ra, 40)
	requireSteps(t, rb, 40)
	var maxAbs, maxRel float64
	worst := 0
	for s := 1; s <= 40; s++ {
		d := math.Abs(ra[s] - rb[s])
		if rel := d / math.Max(1, math.Abs(ra[s])); rel > maxRel {
			maxAbs, maxRel, worst = d, rel, s
		}
	}
	t.Logf("resumed vs straight run: max |Δloss| %.3g (relative %.3g) at step %d", maxAbs, maxRel, worst)
	for s := 1; s <= 40; s++ {
		// Bit-exact: data, RNG, optimizer state and the order of every reduction are reproduced.
		require.Equalf(t, ra[s], rb[s], "step %d: loss %v (straight) vs %v (stopped + resumed)", s, ra[s], rb[s])
	}
}

func TestGradAccum(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	r := reel(t, dir, append([]string{"train", "counting-pretrain-tiny", "--out", out, "--set", "train.grad_accum=2",
		"--set", "train.steps=4", "--set", "train.batch_size=16", "--set", "checkpoint.every=2"}, tiny...)...)
	requireOK(t, r)
	requireSteps(t, trainRows(t, out), 4)
	st, err := checkpoints.Verify(ckptList(t, out)[len(ckptList(t, out))-1])
	require.NoError(t, err)
	require.Equal(t, int64(4), st.Step)
	require.Equal(t, int64(8), st.DataIndex, "two micro-batches per step")

	// grad_accum that does not divide batch_size is rejected up front.
	requireUserError(t, reel(t, dir, "train", "counting-pretrain-tiny", "--set", "train.grad_accum=3",
		"--set", "train.batch_size=16"), -1)
}

func TestNonFinite(t *testing.T) {
	if testing.Short() {
		t.Skip("trains")
	}
	t.Run("lr=10", func(t *testing.T) {
		// The setting the docs warn about; AdamW's normalised steps usually keep it finite.
		dir := t.TempDir()
		out := filepath.Join(dir, "out")
		r := reel(t, dir, append([]string{"train", "counting-pretrain-tiny", "--out", out, "--set", "train.lr=10",
			"--set", "train.grad_clip=0", "--set", "train.steps=30", "--set", "checkpoint.every=5"}, tiny...)...)
		if r.code != 3 {
			requireOK(t, r)
			t.Logf("lr=10 grad_clip=0 did not diverge in 30 steps (exit 0); non-finite path checked below")
			return
		}
		checkNonFinite(t, r, out)
	})
	t.Run("weight_decay=1", func(t *testing.T) {
		// Decoupled weight decay with lr·wd = 10 multiplies the weights by -9 per step: this
		// overflows float32 within a handful of steps, deterministically.
		dir := t.TempDir()
		out := filepath.Join(dir, "out")
		r := reel(t, dir, append([]string{"train", "counting-pretrain-tiny", "--out", out, "--set", "train.lr=10",
			"--set", "train.grad_clip=0", "--set", "train.weight_decay=1", "--set", "train.warmup_steps=0",
			"--set", "train.steps=60", "--set", "checkpoint.every=2"}, tiny...)...)
		require.Equalf(t, 3, r.code, "expected divergence; stderr:\n%s", r.stderr)
		checkNonFinite(t, r, out)
	})
}

func checkNonFinite(t *testing.T, r result, out string) {
	t.Helper()
	msg := requireLastLineError(t, r, 3)
	require.Contains(t, msg, "non-finite")
	require.Contains(t, msg, "last good checkpoint")
	dirs := ckptList(t, out)
	require.NotEmpty(t, dirs, "checkpoints saved before the divergence must be kept")
	require.Contains(t, msg, dirs[len(dirs)-1])
	for _, d := range dirs {
		_, err := checkpoints.Verify(d)
		require.NoError(t, err)
	}
	// The last good checkpoint can be resumed from (it reads back fine).
	latest, err := os.ReadFile(filepath.Join(out, "checkpoints", checkpoints.LatestFile))
	require.NoError(t, err)
	require.Equal(t, filepath.Base(dirs[len(dirs)-1]), strings.TrimSpace(string(latest)))
}

func TestResumeFallsBackFromCorruptCheckpoint(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	base := append([]string{"train", "counting-pretrain-tiny", "--out", out, "--set", "checkpoint.every=10"}, tiny...)
	requireOK(t, reel(t, dir, append(base, "--set", "train.steps=20")...))
	dirs := ckptList(t, out)
	require.Len(t, dirs, 2)
	bin := modelBin(t, dirs[1])
	fi, err := os.Stat(bin)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(bin, fi.Size()/2))

	// eval of the corrupt checkpoint itself fails with a one-line error (after the backend line).
	msg := requireLastLineError(t, reel(t, dir, "eval", dirs[1]), 1)
	require.Contains(t, msg, "corrupt or truncated")
	// eval of the run falls back to the previous checkpoint with a warning.
	r := reel(t, dir, "eval", out)
	requireOK(t, r)
	require.Contains(t, r.stderr, "reel: warning: ")
	require.Contains(t, r.stderr, "falling back")
	require.Contains(t, r.stdout, dirs[0])

	r = reel(t, dir, append(base, "--set", "train.steps=30", "--resume")...)
	requireOK(t, r)
	require.Contains(t, r.stderr, "falling back")
	require.Contains(t, r.stderr, "corrupt or truncated")
	require.Contains(t, r.stderr, "resuming from "+dirs[0])
	require.Contains(t, r.stderr, "reel: done: 30 steps")
	requireSteps(t, trainRows(t, out), 30)
	dirs = ckptList(t, out)
	require.Equal(t, checkpoints.DirName(30), filepath.Base(dirs[len(dirs)-1]))
	for _, d := range dirs {
		_, err := checkpoints.Verify(d)
		require.NoError(t, err, "the corrupt step must have been rewritten")
	}
}
