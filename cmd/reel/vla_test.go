package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/data"
	"github.com/reelml/reel/lerobot"
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
		Failed             int                `json:"failed"`
		Results            []string           `json:"results"`
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
	require.Zero(t, ev.ClosedLoop.Failed)
	require.Len(t, ev.ClosedLoop.Results, 2)
	require.FileExists(t, filepath.Join(dir, "run", "results", "reel-sim_aggregate.json"))

	// The same evaluation in two concurrent shards, merged: every episode exactly once.
	var wg sync.WaitGroup
	shards := make([]result, 2)
	for i := range shards {
		wg.Go(func() {
			shards[i] = reel(t, dir, "eval", "run", "--remote", "ws://"+addr, "--set", "eval.episodes=5", "--set", "eval.videos=0",
				"--shard-id", strconv.Itoa(i), "--num-shards", "2", "--max-connections", "2")
		})
	}
	wg.Wait()
	for i, r := range shards {
		requireOK(t, r)
		require.Equal(t, 3-i, parseClosedLoop(t, r).ClosedLoop.Episodes, "shard %d of 5 episodes round-robin", i)
	}
	res := filepath.Join(dir, "run", "results")
	r = reel(t, dir, "eval", "merge", filepath.Join(res, "reel-sim_shard0of2.jsonl"), filepath.Join(res, "reel-sim_shard1of2_aggregate.json"), "--out", "merged.json")
	requireOK(t, r)
	require.NotContains(t, r.stderr, "warning")
	agg := readAggregate(t, filepath.Join(dir, "merged.json"))
	require.Equal(t, 5.0, agg["num_episodes_total"])
	ids := map[float64]bool{}
	for _, task := range agg["tasks"].([]any) {
		for _, e := range task.(map[string]any)["episodes"].([]any) {
			ids[e.(map[string]any)["episode_id"].(float64)] = true
		}
	}
	require.Len(t, ids, 5)
	checkAggregate(t, filepath.Join(dir, "merged.json"))
	stop()

	// Served for a LIBERO-shaped benchmark (one 256×256 agentview camera, no state, 7-D actions),
	// the simulator-trained policy runs the harness-style client's episodes in two concurrent
	// shards without an exception; the shards merge.
	addr, stop = startServer(t, dir, "run", "--camera", "agentview=scene", "--action-dim", "7")
	if py := harnessPython(t); py != "" {
		var wg sync.WaitGroup
		outs := make([][]byte, 2)
		errs := make([]error, 2)
		for i := range outs {
			wg.Go(func() {
				cmd := exec.Command(py, harnessClient, "libero", "ws://"+addr, "--tasks", "2", "--episodes-per-task", "2", "--steps", "6",
					"--shard-id", strconv.Itoa(i), "--num-shards", "2", "--out", filepath.Join(dir, fmt.Sprintf("libero_shard%dof2.jsonl", i)))
				outs[i], errs[i] = cmd.CombinedOutput()
			})
		}
		wg.Wait()
		for i := range outs {
			require.NoError(t, errs[i], "shard %d: %s", i, outs[i])
			var out map[string]any
			require.NoError(t, json.Unmarshal(outs[i], &out), "%s", outs[i])
			require.Equal(t, 2.0, out["episodes"])
			require.Equal(t, 0.0, out["failures"], "%v", out["failure_details"])
			require.Equal(t, map[string]any{"actions": map[string]any{"name": "actions", "dims": 7.0, "format": "raw", "description": "dx, dy, grip, then 4 zeros"}},
				out["server_info"].(map[string]any)["action_spec"])
		}
		r = reel(t, dir, "eval", "merge", "libero_shard0of2.jsonl", "libero_shard1of2.jsonl", "--out", "libero.json")
		requireOK(t, r)
		require.Equal(t, 4.0, readAggregate(t, filepath.Join(dir, "libero.json"))["num_episodes_total"])
		checkAggregate(t, filepath.Join(dir, "libero.json"))
	}
	msg = requireLastLineError(t, reel(t, dir, "eval", "run", "--remote", "ws://"+addr), 1)
	require.Contains(t, msg, "returns 7-D actions; the simulator takes 3")
	stop()

	msg = requireLastLineError(t, reel(t, dir, "eval", "run", "--remote", "ws://127.0.0.1:1"), 1)
	require.Contains(t, msg, "remote")
	requireUserError(t, reel(t, dir, "serve", "run", "--camera", "agentview=top"), 2)
	requireUserError(t, reel(t, dir, "eval", "run", "--shard-id", "1"), 2)
	requireUserError(t, reel(t, dir, "eval", "merge", "x.jsonl"), 2)
}

// harnessClient is the harness-style Python benchmark client of the serve tests.
var harnessClient, _ = filepath.Abs(filepath.Join("..", "..", "serve", "testdata", "harness_client.py"))

// harnessPython is a Python 3 with the client's modules, or "" (the client's checks are then
// skipped, with a note).
func harnessPython(t *testing.T) string {
	for _, c := range []string{"/usr/bin/python3", "python3"} {
		if p, err := exec.LookPath(c); err == nil && exec.Command(p, "-c", "import msgpack, websockets, numpy, PIL").Run() == nil {
			return p
		}
	}
	t.Log("no python3 with msgpack, websockets, numpy and PIL (make deps installs them): the harness-style client checks are skipped")
	return ""
}

func readAggregate(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var agg map[string]any
	require.NoError(t, json.Unmarshal(b, &agg))
	return agg
}

// checkAggregate has the Python client recompute an aggregate's counts and success rates.
func checkAggregate(t *testing.T, path string) {
	t.Helper()
	if py := harnessPython(t); py != "" {
		out, err := exec.Command(py, harnessClient, "check-aggregate", path).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
}

// startServer runs `reel serve RUN --addr 127.0.0.1:0` and returns its address and a function
// that interrupts it (it must exit cleanly).
func startServer(t *testing.T, dir, run string, flags ...string) (string, func()) {
	t.Helper()
	cmd := exec.Command(reelBin, append([]string{"serve", run, "--addr", "127.0.0.1:0", "--quiet"}, flags...)...)
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
	ds, err := lerobot.Open(filepath.Join(dir, "ds"))
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

// A real robot's LeRobot v2.1 dataset (a Unitree G1: one 640×480 AV1 camera, 26-D state and
// action) trains a policy with no shape settings: the spec comes from the dataset, images are
// fitted to model.image_size, and evaluation reports the offline action error only.
func TestTrainOnRealRobotDataset(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes video")
	}
	dir := t.TempDir()
	ds, err := filepath.Abs("../../lerobot/testdata/g1_v21")
	require.NoError(t, err)
	r := reel(t, dir, "train", "molmobot-tiny", "--out", "g1", "--set", "data.source=lerobot", "--set", "data.dir="+ds,
		"--set", "train.steps=20", "--set", "train.batch_size=8", "--set", "eval.examples=8", "--set", "eval.batch_size=8",
		"--set", "train.eval_every=0", "--set", "data.normalization=quantiles")
	requireOK(t, r)
	ckpt, err := checkpoints.Resolve(filepath.Join(dir, "g1"), func(string) {})
	require.NoError(t, err)
	spec, err := policy.ReadSpec(filepath.Join(ckpt, policy.SpecFile))
	require.NoError(t, err)
	require.Equal(t, []policy.Camera{{Name: "cam_high", Width: 32, Height: 32}}, spec.Cameras)
	require.Equal(t, 26, spec.StateDim)
	require.Equal(t, 26, spec.ActionDim)
	require.Equal(t, "quantiles", spec.Normalization)
	require.Len(t, spec.StateNames, 26)
	rows := trainRows(t, filepath.Join(dir, "g1"))
	require.Len(t, rows, 20)
	r = reel(t, dir, "eval", "g1")
	requireOK(t, r)
	require.Contains(t, r.stdout, "actions/chunk_mse")
	require.Contains(t, r.stderr, "no closed-loop evaluation")

	// Served, the policy runs a benchmark shaped like that robot (its 640×480 camera, 26-D state
	// and actions, sent by the harness-style client) in two concurrent shards without an exception.
	addr, stop := startServer(t, dir, "g1")
	defer stop()
	py := harnessPython(t)
	if py == "" {
		return
	}
	var wg sync.WaitGroup
	outs, errs := make([][]byte, 2), make([]error, 2)
	for i := range outs {
		wg.Go(func() {
			outs[i], errs[i] = exec.Command(py, harnessClient, "libero", "ws://"+addr, "--camera", "cam_high", "--width", "640", "--height", "480",
				"--state-dim", "26", "--action-dim", "26", "--tasks", "2", "--episodes-per-task", "2", "--steps", "5",
				"--shard-id", strconv.Itoa(i), "--num-shards", "2", "--out", filepath.Join(dir, fmt.Sprintf("g1_shard%dof2.jsonl", i))).CombinedOutput()
		})
	}
	wg.Wait()
	for i := range outs {
		require.NoError(t, errs[i], "shard %d: %s", i, outs[i])
		var out map[string]any
		require.NoError(t, json.Unmarshal(outs[i], &out), "%s", outs[i])
		require.Equal(t, 2.0, out["episodes"])
		require.Equal(t, 0.0, out["failures"], "%v", out["failure_details"])
	}
	requireOK(t, reel(t, dir, "eval", "merge", "g1_shard0of2.jsonl", "g1_shard1of2.jsonl", "--out", "g1.json"))
	require.Equal(t, 4.0, readAggregate(t, filepath.Join(dir, "g1.json"))["num_episodes_total"])

	// The same robot's data converted to LeRobot v3.0 (reel data merge, LeRobot's aggregate
	// semantics; the mp4 is carried over unchanged) trains the same way.
	requireOK(t, reel(t, dir, "data", "merge", ds, "--out", "g1_v30"))
	info, err := os.ReadFile(filepath.Join(dir, "g1_v30", "meta", "info.json"))
	require.NoError(t, err)
	require.Contains(t, string(info), `"codebase_version": "v3.0"`)
	requireOK(t, reel(t, dir, "train", "molmobot-tiny", "--out", "g1v3", "--set", "data.source=lerobot", "--set", "data.dir=g1_v30",
		"--set", "train.steps=5", "--set", "train.batch_size=8", "--set", "eval.examples=8", "--set", "eval.batch_size=8", "--set", "train.eval_every=0"))
}
