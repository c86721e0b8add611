package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/data"
	"github.com/reelml/reel/policy"
)

// quickVLA shrinks the tiny policy recipes to a few seconds of work.
var quickVLA = []string{"--set", "train.steps=3", "--set", "train.batch_size=4", "--set", "eval.examples=4",
	"--set", "eval.batch_size=4", "--set", "train.eval_every=0", "--set", "eval.episodes=6", "--set", "eval.videos=1"}

type closedLoop struct {
	Metrics    map[string]float64 `json:"metrics"`
	ClosedLoop struct {
		Success  float64 `json:"success"`
		Low      float64 `json:"success_low"`
		High     float64 `json:"success_high"`
		Episodes int     `json:"episodes"`
		Families map[string]struct {
			N int `json:"n"`
		} `json:"families"`
		Remote             string             `json:"remote"`
		Videos             []string           `json:"videos"`
		AdaptiveIterations map[string]float64 `json:"adaptive_iterations"`
		Depths             []struct {
			Depth   int     `json:"depth"`
			Success float64 `json:"success"`
		} `json:"depths"`
	} `json:"closed_loop"`
}

func parseClosedLoop(t *testing.T, r result) closedLoop {
	t.Helper()
	var out closedLoop
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
	return out
}

// TestVLAPolicyLifecycle trains a tiny flow-matching policy, evaluates it closed-loop, exports it,
// serves it over the vla-eval protocol and evaluates the served policy remotely, as a user would.
func TestVLAPolicyLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a tiny policy")
	}
	dir := t.TempDir()
	requireOK(t, reel(t, dir, append([]string{"train", "molmobot-tiny", "--out", "run"}, quickVLA...)...))
	// Every checkpoint carries the policy's spec: what serving and evaluation know of it.
	ckpt, err := checkpoints.Resolve(filepath.Join(dir, "run"), func(string) {})
	require.NoError(t, err)
	spec, err := policy.ReadSpec(filepath.Join(ckpt, policy.SpecFile))
	require.NoError(t, err)
	require.Equal(t, []policy.Camera{{Name: "scene", Width: 32, Height: 32}}, spec.Cameras)
	require.Equal(t, 4, spec.StateDim)
	require.Equal(t, 3, spec.ActionDim)
	require.Equal(t, 8, spec.Horizon)
	require.Equal(t, 4, spec.Execute)
	r := reel(t, dir, append([]string{"eval", "run"}, quickVLA[len(quickVLA)-4:]...)...)
	requireOK(t, r)
	ev := parseClosedLoop(t, r)
	require.Equal(t, 6, ev.ClosedLoop.Episodes)
	require.LessOrEqual(t, ev.ClosedLoop.Low, ev.ClosedLoop.Success)
	require.GreaterOrEqual(t, ev.ClosedLoop.High, ev.ClosedLoop.Success)
	n := 0
	for _, f := range ev.ClosedLoop.Families {
		n += f.N
	}
	require.Equal(t, 6, n)
	require.Contains(t, ev.Metrics, "actions/chunk_mse")
	require.Contains(t, ev.Metrics, "closed_loop/success")
	require.Len(t, ev.ClosedLoop.Videos, 1)
	v, err := data.DecodeVideo(filepath.Join(dir, ev.ClosedLoop.Videos[0]), 10, 32, 2)
	require.NoError(t, err, "the rollout video decodes")
	require.Equal(t, 2, v.T)

	require.Contains(t, ev.Metrics, "pick_any/both_modes")
	// A recipe that describes another model than the checkpoint's is refused, not silently
	// evaluated with freshly initialised layers.
	msg := requireLastLineError(t, reel(t, dir, "eval", "run", "--set", "model.conv_stem=false"), 1)
	require.Contains(t, msg, "different model")

	// Export: weights and normalisation statistics, no optimizer state.
	r = reel(t, dir, "export", "run", "--format", "safetensors", "--out", "policy.safetensors")
	requireOK(t, r)
	ts, meta, err := checkpoints.ReadSafetensors(filepath.Join(dir, "policy.safetensors"))
	require.NoError(t, err)
	require.Contains(t, meta["recipe"], "molmobot-tiny")
	require.Equal(t, "3", meta["step"])
	require.Contains(t, ts, "norm/action_offset")
	require.Equal(t, []int{3}, ts["norm/action_scale"].Shape().Dimensions)
	require.Contains(t, meta["policy"], `"action_dim": 3`, "the spec travels in the export")
	for name := range ts {
		require.NotContains(t, strings.ToLower(name), "adam", name)
		require.False(t, strings.HasPrefix(name, "#"), name)
	}
	requireUserError(t, reel(t, dir, "export", "run", "--format", "onnx"), 2)

	// Serve it and evaluate the served policy through the protocol.
	addr, stop := startServer(t, dir, "run")
	resp, err := http.Get("http://" + addr + "/health")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp.Body.Close()
	r = reel(t, dir, "eval", "run", "--remote", "ws://"+addr, "--set", "eval.episodes=4", "--set", "eval.videos=0")
	requireOK(t, r)
	ev = parseClosedLoop(t, r)
	require.Equal(t, 4, ev.ClosedLoop.Episodes)
	require.Equal(t, "ws://"+addr, ev.ClosedLoop.Remote)
	stop()

	msg = requireLastLineError(t, reel(t, dir, "eval", "run", "--remote", "ws://127.0.0.1:1"), 1)
	require.Contains(t, msg, "remote")
}

// startServer runs `reel serve RUN --addr 127.0.0.1:0` and returns its address and a function
// that interrupts it (it must exit cleanly).
func startServer(t *testing.T, dir, run string) (string, func()) {
	t.Helper()
	cmd := exec.Command(reelBin, "serve", run, "--addr", "127.0.0.1:0", "--quiet")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOMLX_BACKEND=go")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	addrRe := regexp.MustCompile(`on ws://(\S+) `)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := addrRe.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	var addr string
	select {
	case addr = <-found:
	case <-time.After(time.Minute):
		t.Fatal("reel serve did not report its address")
	}
	return addr, func() {
		require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			require.NoError(t, err, "reel serve exits cleanly on SIGINT")
		case <-time.After(30 * time.Second):
			t.Fatal("reel serve did not stop on SIGINT")
		}
	}
}

// TestGenSimTrainFromDataset writes a LeRobot dataset with gen-sim and trains on it.
func TestGenSimTrainFromDataset(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a dataset")
	}
	dir := t.TempDir()
	r := reel(t, dir, "data", "gen-sim", "--episodes", "6", "--out", "ds", "--workers", "2")
	requireOK(t, r)
	require.Contains(t, r.stdout, "wrote 6 episodes")
	ds, err := data.OpenLeRobot(filepath.Join(dir, "ds"))
	require.NoError(t, err)
	require.Equal(t, 6, ds.NumEpisodes())
	ep, err := ds.Episode(5)
	require.NoError(t, err)
	require.True(t, ep.Success, "the scripted expert solves its episodes")
	require.Equal(t, []string{"scene"}, ep.Cameras)

	requireUserError(t, reel(t, dir, "data", "gen-sim", "--episodes", "2", "--out", "ds"), 1) // exists
	requireUserError(t, reel(t, dir, "data", "gen-sim", "--out", "x"), 2)

	r = reel(t, dir, append([]string{"train", "molmobot-tiny", "--out", "run", "--set", "data.source=lerobot",
		"--set", "data.dir=ds"}, quickVLA...)...)
	requireOK(t, r)
	require.Contains(t, r.stderr, "actions/chunk_mse=")
	// The policy fits a handful of stored episodes: the regression loss must fall well below its
	// start (it cannot by accident: the targets are the expert's actions, normalised to unit
	// variance).
	requireOK(t, reel(t, dir, "train", "molmobot-mse-tiny", "--out", "fit", "--set", "data.source=lerobot", "--set", "data.dir=ds",
		"--set", "train.steps=120", "--set", "train.batch_size=16", "--set", "train.warmup_steps=10", "--set", "eval.examples=4",
		"--set", "eval.batch_size=4", "--set", "train.eval_every=0"))
	rows := trainRows(t, filepath.Join(dir, "fit"))
	first, last := (rows[1]+rows[2]+rows[3])/3, (rows[118]+rows[119]+rows[120])/3
	require.Less(t, last, 0.4*first, "loss %.3f → %.3f", first, last)

	msg := requireUserError(t, reel(t, dir, append([]string{"train", "molmobot-tiny", "--out", "run2", "--set", "data.source=lerobot",
		"--set", "data.dir=nope"}, quickVLA...)...), 1)
	require.Contains(t, msg, "data.dir")
	// A dataset whose info.json is broken is named in the error.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ds", "meta", "info.json"), []byte("{"), 0o644))
	msg = requireUserError(t, reel(t, dir, append([]string{"train", "molmobot-tiny", "--out", "run3", "--set", "data.source=lerobot",
		"--set", "data.dir=ds"}, quickVLA...)...), 1)
	require.Contains(t, msg, "info.json")
}

// TestRDVLA trains the recurrent-depth policy briefly and checks the depth sweep of `reel eval`.
func TestRDVLA(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a tiny policy")
	}
	dir := t.TempDir()
	requireOK(t, reel(t, dir, append([]string{"train", "rdvla-tiny", "--out", "run"}, quickVLA...)...))
	r := reel(t, dir, "eval", "run", "--set", "eval.episodes=4", "--set", "eval.videos=0", "--set", "eval.depths=[1,3]")
	requireOK(t, r)
	ev := parseClosedLoop(t, r)
	require.Len(t, ev.ClosedLoop.Depths, 2)
	require.Equal(t, 3, ev.ClosedLoop.Depths[1].Depth)
	all := ev.ClosedLoop.AdaptiveIterations["all"]
	require.GreaterOrEqual(t, all, 1.0)
	require.LessOrEqual(t, all, 32.0)
	require.FileExists(t, filepath.Join(dir, "run", "plots", "depth.png"))
	msg := requireUserError(t, reel(t, dir, "train", "rdvla-tiny", "--set", "eval.depths=[0]"), 1)
	require.Contains(t, msg, "eval.depths[0]")

	// A recurrent-depth policy serves like any other.
	addr, stop := startServer(t, dir, "run")
	r = reel(t, dir, "eval", "run", "--remote", "ws://"+addr, "--set", "eval.episodes=2", "--set", "eval.videos=0")
	requireOK(t, r)
	require.Equal(t, 2, parseClosedLoop(t, r).ClosedLoop.Episodes)
	stop()
}
