package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gomlx/compute"

	"github.com/gomlx/gomlx/core/tensors"
	"gonum.org/v1/plot/plotter"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/data"
	"github.com/reelml/reel/recipes"
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
func evalPolicy(res *evalResult, task *tasks.VLA, dir string, policy sim.Policy, remote string, serverChunks bool) error {
	start := time.Now()
	ec := task.EvalConfig()
	if serverChunks { // the server buffers chunks and does execute-k: one action per call
		ec.Horizon, ec.Execute = 1, 1
	}
	sr, err := sim.Evaluate(task.Sim(), ec, policy)
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
		p := filepath.Join(runDir, "rollouts", filepath.Base(dir), fmt.Sprintf("episode_%03d_%s_%s.mp4", i, v.Family, outcome))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		vid := data.Video{T: v.Len(), Size: v.Size, Frames: v.Frames[0], Caption: v.Task}
		if err := data.EncodeVideo(p, vid, 10); err != nil {
			fmt.Fprintf(os.Stderr, "reel: warning: rollout video: %v\n", err)
			break
		}
		ev.Videos = append(ev.Videos, p)
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

// evalVLA evaluates a policy checkpoint: the offline action error on held-out expert chunks and
// closed-loop success in held-out scenes, with a local policy or the one behind --remote.
func evalVLA(b compute.Backend, task *tasks.VLA, dir, remote, precision string) (evalResult, error) {
	st, err := checkpoints.Verify(dir)
	if err != nil {
		return evalResult{}, err
	}
	res := evalResult{Checkpoint: dir, Step: st.Step, Recipe: st.Recipe}
	if remote != "" {
		rp, err := dialRemote(remote, task)
		if err != nil {
			return res, err
		}
		defer rp.Close()
		return res, evalPolicy(&res, task, dir, rp, remote, true)
	}
	rep, _, err := train.EvaluateCheckpoint(b, task, dir, precision)
	if err != nil {
		return res, err
	}
	res.Metrics = rep.Metrics
	p, err := task.LoadPolicy(b, dir, uint64(task.EvalConfig().Seed))
	if err != nil {
		return res, err
	}
	defer p.Close()
	if err := evalPolicy(&res, task, dir, p, "", false); err != nil {
		return res, err
	}
	if rp, ok := p.(*tasks.RDPolicy); ok {
		if err := depthSweep(&res, task, rp); err != nil {
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
func dialRemote(url string, task *tasks.VLA) (*serve.RemotePolicy, error) {
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
images as PNG, arrays as ndarrays) and GET /health. Each connection gets its own action-chunk
buffer (the policy is queried every policy.execute steps; episode_start clears it), and
observations arriving together from several connections are batched into one policy call.
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
	task, dir, err := loadVLA(fs.Arg(0))
	if err != nil {
		return err
	}
	b, info, err := backends.Select(*backend)
	if err != nil {
		return err
	}
	p, err := task.LoadPolicy(b, dir, uint64(task.EvalConfig().Seed))
	if err != nil {
		return err
	}
	defer p.Close()
	cfg := task.ServeConfig()
	cfg.Addr, cfg.MaxBatch, cfg.BatchWindow, cfg.MaxMessageBytes = *addr, *maxBatch, *window, *maxBytes
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

// loadVLA resolves a run or checkpoint directory of a policy and builds its task from the
// checkpoint's recipe.
func loadVLA(path string) (*tasks.VLA, string, error) {
	dir, err := checkpoints.Resolve(path, func(w string) { fmt.Fprintln(os.Stderr, "reel: warning: "+w) })
	if err != nil {
		return nil, "", err
	}
	if _, err := checkpoints.Verify(dir); err != nil {
		return nil, "", err
	}
	r, err := recipes.Load(filepath.Join(dir, "recipe.yaml"), nil)
	if err != nil {
		return nil, "", err
	}
	if r.Task != "vla" {
		return nil, "", fmt.Errorf("%s is a %s checkpoint; only policies (task vla) can be served", dir, r.Task)
	}
	task, err := tasks.NewVLA(r)
	if err != nil {
		return nil, "", err
	}
	return task, dir, nil
}

const exportUsage = `Usage: reel export RUN_DIR|CHECKPOINT_DIR --format safetensors [--out FILE]

Writes the model's weights (optimizer state left out) to one safetensors file, tensor names
being the variable paths ("policy/vision/patch_embed/weights"). A policy's normalisation
statistics are tensors too ("norm/state_mean", "norm/state_std", "norm/action_mean",
"norm/action_std"); the metadata holds the recipe YAML, the step and the reel format version.
`

func cmdExport(args []string) error {
	fs := newFlags("export")
	format := fs.String("format", "safetensors", "output format (safetensors)")
	out := fs.String("out", "", "output file (default: CHECKPOINT_DIR/model.safetensors)")
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
	vars, st, err := checkpoints.LoadVariables(dir)
	if err != nil {
		return err
	}
	recipe, err := checkpoints.ReadRecipe(dir)
	if err != nil {
		return err
	}
	weights := map[string]*tensors.Tensor{}
	for path, t := range vars {
		if name, ok := exportName(path); ok {
			weights[name] = t
		}
	}
	if *out == "" {
		*out = filepath.Join(dir, "model.safetensors")
	}
	meta := map[string]string{"format": "reel-safetensors-1", "recipe": string(recipe), "step": strconv.FormatInt(st.Step, 10)}
	if err := checkpoints.WriteSafetensors(*out, weights, meta); err != nil {
		return fmt.Errorf("export: %v", err)
	}
	fmt.Printf("wrote %d tensors of %s (step %d) to %s\n", len(weights), dir, st.Step, *out)
	return nil
}

// exportName maps a variable path to its exported name, or false for training state (the
// optimizer's moments and step counters, gradient accumulators, the RNG state).
func exportName(path string) (string, bool) {
	name := strings.TrimPrefix(path, "/")
	first, _, _ := strings.Cut(name, "/")
	if strings.HasPrefix(first, "#") || strings.HasPrefix(first, "_") || strings.Contains(strings.ToLower(first), "optimizer") || strings.Contains(name, "rngstate") {
		return "", false
	}
	return name, true
}

// timedPolicy measures the mean latency of Act calls.
type timedPolicy struct {
	sim.Policy
	calls int
	total time.Duration
}

func (p *timedPolicy) Act(obs []sim.Observation) ([][][]float32, error) {
	start := time.Now()
	c, err := p.Policy.Act(obs)
	p.total += time.Since(start)
	p.calls++
	return c, err
}

// depthSweep evaluates a recurrent-depth policy at every eval.depths fixed depth, records the
// iterations its adaptive run (just done) used, and plots success against iterations.
func depthSweep(res *evalResult, task *tasks.VLA, p *tasks.RDPolicy) error {
	ev := res.ClosedLoop
	ev.AdaptiveIterations = p.Iterations()
	ec := task.EvalConfig()
	ec.Videos = 0
	var fixed []plotter.XY
	for _, d := range task.Depths() {
		p.SetDepth(d)
		tp := &timedPolicy{Policy: p}
		sr, err := sim.Evaluate(task.Sim(), ec, tp)
		if err != nil {
			return err
		}
		p.Iterations()
		lat := tp.total.Seconds() * 1000 / float64(max(1, tp.calls))
		ev.Depths = append(ev.Depths, depthResult{Depth: d, Success: sr.Success, Low: sr.Low, High: sr.High, Families: sr.Families, LatencyMS: lat})
		res.Metrics[fmt.Sprintf("closed_loop/success_depth_%d", d)] = sr.Success
		fixed = append(fixed, plotter.XY{X: float64(d), Y: sr.Success})
		fmt.Fprintf(os.Stderr, "reel: depth %2d: success %.3f [%.3f, %.3f], %.1f ms per batched call\n", d, sr.Success, sr.Low, sr.High, lat)
	}
	p.SetDepth(0)
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
