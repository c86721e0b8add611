package main

// The hostile-input corpus of the CLI: damaged, oversized, special and careless inputs given to
// the commands as a user (or an attacker) would. Each case asserts one error line naming the
// file or field, a non-zero exit status, no crash trace, bounded time and memory (the binary
// runs under an address-space limit and a timeout), and that nothing already saved is lost (the
// old run or dataset is compared byte for byte after the failed command).

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hostileMemKiB bounds the address space of a hostile run: far above what the tiny inputs
// need, far below what an allocation from a hostile declared size would take.
const hostileMemKiB = 4 << 20

// hostile runs reel under a 2-minute timeout and the address-space limit, and checks that it
// failed with no crash trace. It returns the result.
func hostile(t *testing.T, dir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	script := "ulimit -v " + strconv.Itoa(hostileMemKiB) + ` && exec "$0" "$@"`
	cmd := exec.CommandContext(ctx, "sh", append([]string{"-c", script, reelBin}, args...)...)
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
	require.NotEqualf(t, context.DeadlineExceeded, ctx.Err(), "reel %s did not finish in time", strings.Join(args, " "))
	requireNoCrash(t, r)
	require.NotContainsf(t, r.stderr, "out of memory", "reel %s", strings.Join(args, " "))
	return r
}

// hostileError runs a hostile case expected to fail with exactly one stderr line; it checks the
// line holds every want and returns it.
func hostileError(t *testing.T, dir string, args []string, want ...string) string {
	t.Helper()
	msg := requireUserError(t, hostile(t, dir, args...), -1)
	for _, w := range want {
		require.Containsf(t, msg, w, "reel %s", strings.Join(args, " "))
	}
	return msg
}

// snapshot reads every regular file under dir.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = string(b)
		return err
	}))
	require.NotEmpty(t, out)
	return out
}

// requireIntact checks that dir holds exactly the files of before, byte for byte.
func requireIntact(t *testing.T, before map[string]string, dir string) {
	t.Helper()
	after := snapshot(t, dir)
	for rel, b := range before {
		a, ok := after[rel]
		require.Truef(t, ok, "%s was deleted", rel)
		require.Truef(t, a == b, "%s changed", rel)
	}
	for rel := range after {
		_, ok := before[rel]
		require.Truef(t, ok, "%s appeared", rel)
	}
}

// TestHostileTrainOverwrite: `reel train --overwrite` with input that fails (a missing dataset,
// a missing init_from found only once the run has started, a bad recipe value) leaves the run
// already in --out byte for byte as it was; a successful --overwrite replaces it.
func TestHostileTrainOverwrite(t *testing.T) {
	dir := t.TempDir()
	small := append([]string{"--set", "train.steps=2", "--set", "train.batch_size=8"}, tiny...)
	run := filepath.Join(dir, "run")
	requireOK(t, reel(t, dir, append([]string{"train", "counting-pretrain-tiny", "--out", run}, small...)...))
	before := snapshot(t, run)
	require.Contains(t, before, "metrics.jsonl")
	require.Contains(t, before, "recipe.yaml")

	// Fails inside the run, after the old outputs were moved aside.
	r := hostile(t, dir, append([]string{"train", "counting-pretrain-tiny", "--out", run, "--overwrite",
		"--set", "train.init_from=" + filepath.Join(dir, "nope")}, small...)...)
	msg := requireLastLineError(t, r, 1)
	require.Contains(t, msg, "train.init_from")
	requireIntact(t, before, run)

	// Fails before the run: a LeRobot dataset that is not there.
	hostileError(t, dir, []string{"train", "pi0-tiny", "--out", run, "--overwrite",
		"--set", "data.source=lerobot", "--set", "data.dir=" + filepath.Join(dir, "no-dataset")}, "no-dataset")
	requireIntact(t, before, run)

	// Without --overwrite: refused, and the run's recipe.yaml is not rewritten.
	r = hostile(t, dir, append([]string{"train", "counting-pretrain-tiny", "--out", run, "--set", "train.lr=0.5"}, small...)...)
	require.Contains(t, requireLastLineError(t, r, 1), "--resume")
	requireIntact(t, before, run)

	// A successful --overwrite replaces the run and leaves nothing hidden behind.
	requireOK(t, reel(t, dir, append([]string{"train", "counting-pretrain-tiny", "--out", run, "--overwrite", "--set", "train.lr=0.5"}, small...)...))
	after := snapshot(t, run)
	require.Contains(t, after["recipe.yaml"], "0.5")
	for rel := range after {
		require.Falsef(t, strings.HasPrefix(rel, ".overwritten"), "%s left behind", rel)
	}
}

// TestHostileMergeOverwrite: `reel data merge BAD... --out EXISTING --overwrite` with a damaged
// source leaves EXISTING byte for byte as it was.
func TestHostileMergeOverwrite(t *testing.T) {
	if testing.Short() {
		t.Skip("generates datasets")
	}
	dir := t.TempDir()
	sets := []string{"--set", "data.max_steps=6"}
	requireOK(t, reel(t, dir, append([]string{"data", "gen-sim", "--episodes", "2", "--out", "s0", "--shard", "0/2"}, sets...)...))
	requireOK(t, reel(t, dir, append([]string{"data", "gen-sim", "--episodes", "2", "--out", "s1", "--shard", "1/2"}, sets...)...))
	requireOK(t, reel(t, dir, "data", "merge", "s0", "s1", "--out", "merged"))
	before := snapshot(t, filepath.Join(dir, "merged"))

	// A copy of s1 whose data parquet file is damaged in the middle.
	bad := filepath.Join(dir, "bad")
	require.NoError(t, os.CopyFS(bad, os.DirFS(filepath.Join(dir, "s1"))))
	parquets, err := filepath.Glob(filepath.Join(bad, "data", "*", "*.parquet"))
	require.NoError(t, err)
	require.NotEmpty(t, parquets)
	raw, err := os.ReadFile(parquets[0])
	require.NoError(t, err)
	for i := len(raw) / 3; i < 2*len(raw)/3; i++ {
		raw[i] = 0xff
	}
	require.NoError(t, os.WriteFile(parquets[0], raw, 0o644))

	r := hostile(t, dir, "data", "merge", "s0", "bad", "--out", "merged", "--overwrite")
	require.NotZero(t, r.code)
	requireIntact(t, before, filepath.Join(dir, "merged"))
	// A source that is not a dataset at all.
	hostileError(t, dir, []string{"data", "merge", "s0", "nothing", "--out", "merged", "--overwrite"}, "nothing")
	requireIntact(t, before, filepath.Join(dir, "merged"))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		require.Falsef(t, strings.HasPrefix(e.Name(), ".merged."), "%s left behind", e.Name())
	}
	// A good merge over it succeeds.
	requireOK(t, reel(t, dir, "data", "merge", "s0", "s1", "--out", "merged", "--overwrite"))
	requireIntact(t, before, filepath.Join(dir, "merged"))
}
