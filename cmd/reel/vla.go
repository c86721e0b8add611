package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gomlx/compute"

	"gonum.org/v1/plot/plotter"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/data"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/serve"
	"github.com/reelml/reel/sim"
	"github.com/reelml/reel/tasks"
	"github.com/reelml/reel/train"
)

// vlaEval is the closed-loop part of `reel eval` for a policy: the checkpoint (or a remote
// policy server) drives the simulator in held-out scenes.
type vlaEval struct {
	Success   float64                     `json:"success"`
	Low       float64                     `json:"success_low"`
	High      float64                     `json:"success_high"`
	Episodes  int                         `json:"episodes"`
	MeanSteps float64                     `json:"mean_steps"`
	Families  map[string]sim.FamilyResult `json:"families"`
	Remote    string                      `json:"remote,omitempty"`
	Videos    []string                    `json:"videos,omitempty"`
	Seconds   float64                     `json:"seconds"`
	// Recurrent-depth policies: the adaptive run above, then a sweep of fixed depths.
	AdaptiveIterations map[string]float64 `json:"adaptive_iterations,omitempty"`
	Depths             []depthResult      `json:"depths,omitempty"`
}

// depthResult is the closed-loop result of a recurrent-depth policy at one fixed depth.
type depthResult struct {
	Depth     int                         `json:"depth"`
	Success   float64                     `json:"success"`
	Low       float64                     `json:"success_low"`
	High      float64                     `json:"success_high"`
	Families  map[string]sim.FamilyResult `json:"families"`
	LatencyMS float64                     `json:"latency_ms_per_call"`
}

// evalPolicy rolls a VLA policy out closed-loop and adds its success rates to res.
func evalPolicy(res *evalResult, task *tasks.VLA, dir string, spec policy.Spec, p policy.Policy, remote string, serverChunks bool) error {
	start := time.Now()
	ec := task.EvalConfig()
	ec.Horizon, ec.Execute = spec.Horizon, spec.Execute
	if serverChunks { // the server buffers chunks and does execute-k: one action per call
		ec.Horizon, ec.Execute = 1, 1
	}
	sr, err := sim.Evaluate(task.Sim(), ec, p)
	if err != nil {
		return err
	}
	ev := &vlaEval{Success: sr.Success, Low: sr.Low, High: sr.High, Episodes: sr.N, MeanSteps: sr.MeanSteps,
		Families: sr.Families, Remote: remote, Seconds: time.Since(start).Seconds()}
	if res.Metrics == nil {
		res.Metrics = map[string]float64{}
	}
	res.Metrics["closed_loop/success"] = sr.Success
	for f, r := range sr.Families {
		res.Metrics["closed_loop/success_"+f] = r.Success
	}
	runDir := runOf(dir)
	for i, v := range sr.Videos {
		outcome := "fail"
		if v.Success {
			outcome = "success"
		}
		path := filepath.Join(runDir, "rollouts", filepath.Base(dir), fmt.Sprintf("episode_%03d_%s_%s.mp4", i, v.Family, outcome))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		vid := data.Video{T: v.Len(), Size: v.Size, Frames: v.Frames[0], Caption: v.Task}
		if err := data.EncodeVideo(path, vid, sim.ControlFPS); err != nil {
			fmt.Fprintf(os.Stderr, "reel: warning: rollout video: %v\n", err)
			break
		}
		ev.Videos = append(ev.Videos, path)
	}
	res.ClosedLoop = ev
	fmt.Fprintf(os.Stderr, "reel: closed loop: success %.3f [%.3f, %.3f] over %d held-out episodes (%s) in %.1fs\n",
		sr.Success, sr.Low, sr.High, sr.N, familyLine(sr.Families), ev.Seconds)
	return nil
}

// keyedLine formats a map as "k1 …, k2 …" in key order (keys for which item returns "" are
// left out).
func keyedLine[V any](m map[string]V, item func(k string, v V) string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if s := item(k, m[k]); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ", ")
}

func familyLine(f map[string]sim.FamilyResult) string {
	return keyedLine(f, func(k string, r sim.FamilyResult) string { return fmt.Sprintf("%s %.2f (n=%d)", k, r.Success, r.N) })
}

// modeScenes × modeSamples first actions probe how a policy handles two valid solutions.
const modeScenes, modeSamples = 50, 16

// evalVLA evaluates a policy checkpoint: the offline action error on held-out demonstrations
// and, when the policy's spec fits the recipe's simulator, closed-loop success in held-out
// scenes, with the local checkpoint or the policy served behind --remote.
func evalVLA(b compute.Backend, task *tasks.VLA, dir string, sets []string, remote string) (evalResult, error) {
	st, err := checkpoints.Verify(dir)
	if err != nil {
		return evalResult{}, err
	}
	res := evalResult{Checkpoint: dir, Step: st.Step, Recipe: st.Recipe}
	spec, err := policy.ReadSpec(filepath.Join(dir, policy.SpecFile))
	if err != nil {
		return res, err
	}
	if remote != "" {
		if err := sim.Fits(task.Sim(), spec); err != nil {
			return res, fmt.Errorf("eval --remote: %s cannot be rolled out in the simulator: %v", dir, err)
		}
		rp, err := dialRemote(remote)
		if err != nil {
			return res, err
		}
		defer rp.Close()
		return res, evalPolicy(&res, task, dir, spec, rp, remote, true)
	}
	rep, _, err := train.EvaluateCheckpoint(b, task, dir, task.TrainConfig(), false)
	if err != nil {
		return res, err
	}
	res.Metrics = rep.Metrics
	fmt.Fprintf(os.Stderr, "reel: %s (step %d): %s\n", dir, st.Step, train.FormatMetrics(rep.Metrics))
	if err := sim.Fits(task.Sim(), spec); err != nil {
		fmt.Fprintf(os.Stderr, "reel: no closed-loop evaluation: %v\n", err)
		return res, nil
	}
	p, err := tasks.OpenPolicy(b, dir, sets, uint64(task.EvalConfig().Seed))
	if err != nil {
		return res, err
	}
	defer p.Close()
	if err := evalPolicy(&res, task, dir, spec, p, "", false); err != nil {
		return res, err
	}
	if p.Recurrent() {
		if err := depthSweep(&res, task, p); err != nil {
			return res, err
		}
	}
	if slices.Contains(task.Sim().Families, "pick_any") || len(task.Sim().Families) == 0 {
		hit, both, err := sim.Modes(task.Sim(), task.EvalConfig(), p, modeScenes, modeSamples)
		if err != nil {
			return res, err
		}
		res.Metrics["pick_any/mode_hit"], res.Metrics["pick_any/both_modes"] = hit, both
		fmt.Fprintf(os.Stderr, "reel: two-solution scenes: %.2f of first moves head for a valid twin; %.2f of scenes see both twins chosen (%d scenes × %d samples)\n",
			hit, both, modeScenes, modeSamples)
	}
	return res, nil
}

// dialRemote connects to a policy server for `reel eval --remote`: one connection per episode,
// the server doing execute-k with its own per-connection action buffer.
func dialRemote(url string) (*serve.RemotePolicy, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rp, err := serve.NewRemotePolicy(ctx, url, 1)
	if err != nil {
		return nil, fmt.Errorf("eval --remote: %v", err)
	}
	return rp, nil
}

const serveUsage = `Usage: reel serve RUN_DIR|CHECKPOINT_DIR [--addr 127.0.0.1:8000] [flags]

Serves a trained policy (task vla) over the vla-eval protocol: a WebSocket endpoint (msgpack
messages hello / observation / action / episode_start / episode_end / error, protocol version 1,
images as PNG, arrays as ndarrays) and GET /health. The policy is known by the spec in its
checkpoint (policy.json: cameras and image sizes, state and action dimensions, chunking), which
the hello reply reports; images of other sizes are fitted to it. Each connection gets its own
action-chunk buffer (the policy is queried every policy.execute steps; episode_start clears it),
and observations arriving together from several connections are batched into one policy call.
Stop with Ctrl-C.
`

func cmdServe(args []string) error {
	fs := newFlags("serve")
	addr := fs.String("addr", "127.0.0.1:8000", "listen address (host:port; port 0 picks a free one)")
	backend := fs.String("backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`)
	maxBatch := fs.Int("max-batch", 16, "most observations per policy call")
	window := fs.Duration("batch-window", 5*time.Millisecond, "how long an observation waits for others to batch with")
	maxBytes := fs.Int64("max-message-bytes", 16<<20, "largest accepted message")
	quiet := fs.Bool("quiet", false, "do not log connections")
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, serveUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{2, fmt.Errorf("serve: expected one run or checkpoint directory, got %d arguments", fs.NArg())}
	}
	dir, err := checkpoints.Resolve(fs.Arg(0), func(w string) { fmt.Fprintln(os.Stderr, "reel: warning: "+w) })
	if err != nil {
		return err
	}
	b, info, err := backends.Select(*backend)
	if err != nil {
		return err
	}
	p, err := tasks.OpenPolicy(b, dir, nil, 0)
	if err != nil {
		return err
	}
	defer p.Close()
	cfg := serve.Config{Spec: p.Spec(), Name: p.Spec().Name, Addr: *addr, MaxBatch: *maxBatch, BatchWindow: *window, MaxMessageBytes: *maxBytes}
	if !*quiet {
		cfg.Logf = func(format string, a ...any) { fmt.Fprintf(os.Stderr, "reel: serve: "+format+"\n", a...) }
	}
	srv := serve.NewServer(p, cfg)
	defer srv.Close()
	if err := srv.Listen(); err != nil {
		return fmt.Errorf("serve: %v", err)
	}
	fmt.Fprintf(os.Stderr, "reel: serving %s (step %d) on ws://%s (health: http://%s/health) with %s\n", dir, p.TrainingStep(), srv.Addr(), srv.Addr(), info)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return srv.Serve(ctx)
}

const exportUsage = `Usage: reel export RUN_DIR|CHECKPOINT_DIR --format safetensors [--out FILE]

Writes the model's weights (optimizer state left out) to one safetensors file, tensor names
being the variable paths ("policy/vision/patch_embed/weights"). A policy's normalisation is
tensors too ("norm/state_offset", "norm/state_scale", "norm/action_offset", "norm/action_scale":
x_normalised = (x − offset) / scale); the metadata holds the recipe YAML, the step, the reel
format version and a policy's spec (policy.json).
`

func cmdExport(args []string) error {
	fs := newFlags("export")
	format := fs.String("format", "safetensors", "output format (safetensors)")
	out := fs.String("out", "", "output file (default: CHECKPOINT_DIR/model.safetensors)")
	ema := fs.Bool("ema", false, "export the moving average of the weights (runs trained with train.ema)")
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, exportUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{2, fmt.Errorf("export: expected one run or checkpoint directory, got %d arguments", fs.NArg())}
	}
	if *format != "safetensors" {
		return &exitError{2, fmt.Errorf("export: --format %q is not supported (want safetensors)", *format)}
	}
	dir, err := checkpoints.Resolve(fs.Arg(0), func(w string) { fmt.Fprintln(os.Stderr, "reel: warning: "+w) })
	if err != nil {
		return err
	}
	if *out == "" {
		*out = filepath.Join(dir, "model.safetensors")
	}
	n, step, err := checkpoints.ExportSafetensors(dir, *out, *ema)
	if err != nil {
		return err
	}
	fmt.Printf("wrote %d tensors of %s (step %d) to %s\n", n, dir, step, *out)
	return nil
}

// depthSweep evaluates a recurrent-depth policy at every eval.depths fixed depth, records the
// iterations its adaptive run (just done) used, and plots success against iterations.
func depthSweep(res *evalResult, task *tasks.VLA, p *tasks.Policy) error {
	ev := res.ClosedLoop
	ev.AdaptiveIterations = p.Iterations(sim.FamilyOf)
	rows, err := sim.SweepDepths(task.Sim(), task.EvalConfig(), p, task.Depths())
	if err != nil {
		return err
	}
	var fixed []plotter.XY
	for _, r := range rows {
		ev.Depths = append(ev.Depths, depthResult{Depth: r.Depth, Success: r.Success, Low: r.Low, High: r.High, Families: r.Families, LatencyMS: r.LatencyMS})
		res.Metrics[fmt.Sprintf("closed_loop/success_depth_%d", r.Depth)] = r.Success
		fixed = append(fixed, plotter.XY{X: float64(r.Depth), Y: r.Success})
		fmt.Fprintf(os.Stderr, "reel: depth %2d: success %.3f [%.3f, %.3f], %.1f ms per batched call\n", r.Depth, r.Success, r.Low, r.High, r.LatencyMS)
	}
	fmt.Fprintf(os.Stderr, "reel: adaptive: success %.3f with %.2f iterations on average (%s)\n", ev.Success, ev.AdaptiveIterations["all"], iterLine(ev.AdaptiveIterations))
	path := filepath.Join(runOf(res.Checkpoint), "plots", "depth.png")
	adaptive := []plotter.XY{{X: ev.AdaptiveIterations["all"], Y: ev.Success}}
	if err := train.PlotLines(path, "closed-loop success vs iterations", "core iterations", "success",
		map[string][]plotter.XY{"fixed depth": fixed, "adaptive stopping (mean iterations)": adaptive}); err != nil {
		fmt.Fprintf(os.Stderr, "reel: warning: plot: %v\n", err)
	} else {
		fmt.Fprintf(os.Stderr, "reel: wrote %s\n", path)
	}
	return nil
}

func iterLine(m map[string]float64) string {
	return keyedLine(m, func(k string, v float64) string {
		if k == "all" {
			return ""
		}
		return fmt.Sprintf("%s %.2f", k, v)
	})
}
