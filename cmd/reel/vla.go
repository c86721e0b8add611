package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
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
	"github.com/reelml/reel/internal/errline"
	"github.com/reelml/reel/internal/version"
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
	// A local policy: the mean action jump at chunk boundaries and the policy's wall time per
	// control step (sim.EvalResult), under eval.chunking.
	BoundaryJump     float64 `json:"boundary_jump,omitempty"`
	Boundaries       int     `json:"boundaries,omitempty"`
	LatencyMSPerStep float64 `json:"latency_ms_per_step,omitempty"`
	// --remote: episodes that failed (timeouts, errors; counted as failures above), whether some
	// never ran, this evaluation's shard, and its result files (per-episode JSONL, aggregate
	// JSON in the vla-eval harness's layout).
	Failed  int              `json:"failed,omitempty"`
	Partial bool             `json:"partial,omitempty"`
	Shard   *serve.ShardInfo `json:"shard,omitempty"`
	Results []string         `json:"results,omitempty"`
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
	ec.Horizon, ec.Execute = 1, 1 // the server buffers chunks (ensembled per its --chunking): one action per call
	if !serverChunks {
		p, ec = task.ClosedLoop(p, spec) // eval.chunking
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
	if !serverChunks {
		ev.BoundaryJump, ev.Boundaries, ev.LatencyMSPerStep = sr.BoundaryJump, sr.Boundaries, sr.LatencyMSPerStep
		res.Metrics["closed_loop/boundary_jump"] = sr.BoundaryJump
		res.Metrics["closed_loop/latency_ms_per_step"] = sr.LatencyMSPerStep
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
	if !serverChunks {
		c := task.Chunking()
		fmt.Fprintf(os.Stderr, "reel: chunking %s, inference delay %d: mean action jump at chunk boundaries %.4f (%d boundaries), policy %.1f ms per control step\n",
			c.Mode, c.Delay, sr.BoundaryJump, sr.Boundaries, sr.LatencyMSPerStep)
	}
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
func evalVLA(b compute.Backend, task *tasks.VLA, dir string, sets []string, ro remoteEval) (evalResult, error) {
	st, err := checkpoints.Verify(dir)
	if err != nil {
		return evalResult{}, err
	}
	res := evalResult{Checkpoint: dir, Step: st.Step, Recipe: st.Recipe}
	spec, err := policy.ReadSpec(filepath.Join(dir, policy.SpecFile))
	if err != nil {
		return res, err
	}
	if ro.url != "" {
		if err := sim.Fits(task.Sim(), spec); err != nil {
			return res, fmt.Errorf("eval --remote: %s cannot be rolled out in the simulator: %v", dir, err)
		}
		return res, evalRemote(&res, task, dir, ro)
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
	if dp, ok := p.(sim.DepthPolicy); ok {
		if err := depthSweep(&res, task, dp); err != nil {
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

// remoteEval is how `reel eval --remote` reaches the policy server and which part of the
// evaluation it runs.
type remoteEval struct {
	url        string
	maxConns   int
	actTimeout time.Duration
	shard      *serve.ShardInfo // nil: the whole evaluation
	resultsDir string           // "" : RUN/results
}

// evalRemote evaluates the policy served at ro.url closed-loop, episode by episode as the
// vla-eval harness's runners do (episode_start with the task, one observation per action,
// episode_end with the result), with at most ro.maxConns connections, and writes the episodes
// and their aggregate in the harness's result layout.
func evalRemote(res *evalResult, task *tasks.VLA, dir string, ro remoteEval) error {
	start := time.Now()
	opts := serve.SessionOptions{ActTimeout: ro.actTimeout}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	probe, err := serve.DialSession(ctx, ro.url, serve.SessionOptions{ActTimeout: ro.actTimeout, Retries: 1})
	cancel()
	if err != nil {
		return fmt.Errorf("eval --remote: %v", err)
	}
	info := probe.Info()
	_ = probe.Close()
	if want := sim.Features(task.Sim()).ActionDim; info.ActionDim != 0 && info.ActionDim != want {
		return fmt.Errorf("eval --remote: the server at %s returns %d-D actions; the simulator takes %d (serve it without --action-dim)", ro.url, info.ActionDim, want)
	}
	ec := task.EvalConfig()
	ec.Horizon, ec.Execute, ec.Videos = 1, 1, 0 // the server buffers chunks and does execute-k
	shard := serve.ShardInfo{ID: 0, Total: 1}
	if ro.shard != nil {
		shard = *ro.shard
	}
	episodes, err := serve.ShardEpisodes(ec.Episodes, shard.ID, shard.Total)
	if err != nil {
		return &exitError{2, fmt.Errorf("eval: %v", err)}
	}
	if len(episodes) == 0 {
		return fmt.Errorf("eval --remote: shard %d of %d holds none of the %d episodes", shard.ID, shard.Total, ec.Episodes)
	}
	newSession := func() (sim.Session, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		s, err := serve.DialSession(ctx, ro.url, opts)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	sr, err := sim.EvaluateSessions(task.Sim(), ec, episodes, newSession, ro.maxConns)
	if err != nil {
		return err
	}
	records := make([]serve.EpisodeRecord, len(sr.Episodes))
	for i, o := range sr.Episodes {
		records[i] = serve.EpisodeRecord{Task: o.Family, EpisodeID: o.Index, Metrics: map[string]any{"success": o.Success},
			Steps: o.Steps, ElapsedSec: math.Round(o.Seconds*1000) / 1000, FailureReason: o.FailureReason, FailureDetail: o.FailureDetail,
			Extra: map[string]any{"instruction": o.Instruction, "suite": o.Family, "seed": o.Seed}}
	}
	meta := serve.ResultMeta{Benchmark: "reel-sim", HarnessVersion: version.String(), ServerInfo: info.Payload, Partial: sr.Partial,
		Config: map[string]any{"recipe": res.Recipe, "checkpoint": dir, "remote": ro.url, "episodes": ec.Episodes, "seed": ec.Seed,
			"max_steps": task.Sim().MaxSteps, "max_connections": ro.maxConns, "act_timeout_s": ro.actTimeout.Seconds()}}
	if ro.shard != nil {
		meta.Shard = ro.shard
		meta.Config["shard_id"], meta.Config["num_shards"] = ro.shard.ID, ro.shard.Total
	}
	resultsDir := ro.resultsDir
	if resultsDir == "" {
		resultsDir = filepath.Join(runOf(dir), "results")
	}
	jsonl, agg, err := serve.WriteResults(resultsDir, meta, records)
	if err != nil {
		return err
	}
	ev := &vlaEval{Success: sr.Success, Low: sr.Low, High: sr.High, Episodes: sr.N, MeanSteps: sr.MeanSteps, Families: sr.Families,
		Remote: ro.url, Seconds: time.Since(start).Seconds(), Failed: sr.Failed, Partial: sr.Partial, Shard: ro.shard, Results: []string{jsonl, agg}}
	if res.Metrics == nil {
		res.Metrics = map[string]float64{}
	}
	res.Metrics["closed_loop/success"] = sr.Success
	for f, r := range sr.Families {
		res.Metrics["closed_loop/success_"+f] = r.Success
	}
	res.ClosedLoop = ev
	part := ""
	if ro.shard != nil {
		part = fmt.Sprintf(" (shard %d of %d)", ro.shard.ID, ro.shard.Total)
	}
	fmt.Fprintf(os.Stderr, "reel: closed loop through %s%s: success %.3f [%.3f, %.3f] over %d held-out episodes (%s), %d failed, in %.1fs; results %s, %s\n",
		ro.url, part, sr.Success, sr.Low, sr.High, sr.N, familyLine(sr.Families), sr.Failed, ev.Seconds, jsonl, agg)
	for _, o := range sr.Episodes {
		if o.FailureReason != "" {
			fmt.Fprintf(os.Stderr, "reel: warning: episode %d failed (%s): %s\n", o.Index, o.FailureReason, errline.First(errors.New(o.FailureDetail)))
		}
	}
	if sr.Partial {
		fmt.Fprintf(os.Stderr, "reel: warning: the evaluation is partial: the server could not be reached for some episodes\n")
	}
	return nil
}

const serveUsage = `Usage: reel serve RUN_DIR|CHECKPOINT_DIR [--addr 127.0.0.1:8000] [flags]

Serves a trained policy (task vla) over the vla-eval protocol of the vla-evaluation-harness: a
WebSocket endpoint (msgpack messages hello / observation / action / episode_start / episode_end /
error, protocol version 1, images as PNG/JPEG/raw, arrays as ndarrays of any numeric dtype
including float16), GET /health and GET|POST /config (max_batch_size, max_wait_time). The policy is
known by the spec in its checkpoint (policy.json: cameras and image sizes, state and action
dimensions, chunking); the hello reply describes it in the harness's terms (observation_spec,
action_spec, observation_params). Each connection gets its own action-chunk buffer (the policy is
queried every policy.execute steps; episode_start clears it; --chunking average|ema blends the
actions left of a chunk with the next chunk's, as the harness's PredictModelServer action_ensemble
does), and observations arriving together
from several connections are batched into one policy call; each observation is checked on its own
first, so a bad one fails alone.

A benchmark of another robot is adapted with --camera (benchmark camera → policy camera), --resize,
--state-dims and --action-dim, e.g. a LIBERO-shaped benchmark (one 256×256 agentview camera, no
state, 7-D actions) for a simulator-trained policy:
  reel serve runs/molmobot-tiny --camera agentview=scene --action-dim 7
Stop with Ctrl-C.
`

func cmdServe(args []string) error {
	fs := newFlags("serve")
	addr := fs.String("addr", "127.0.0.1:8000", "listen address (host:port; port 0 picks a free one)")
	backend := fs.String("backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`)
	maxBatch := fs.Int("max-batch", 16, "most observations per policy call (/config max_batch_size)")
	window := fs.Duration("batch-window", 5*time.Millisecond, "how long an observation waits for others to batch with (/config max_wait_time)")
	maxBytes := fs.Int64("max-message-bytes", serve.DefaultMaxMessageBytes, "largest accepted message")
	cameras := fs.StringArray("camera", nil, "BENCHMARK=POLICY: the benchmark camera that feeds a policy camera, e.g. agentview=scene (repeatable)")
	resize := fs.String("resize", "", "how images of another size are fitted: pad, crop or stretch (default: the policy's)")
	stateDims := fs.String("state-dims", "", `state values the policy reads: indices into the benchmark's state, zero-padded to the policy's (e.g. 0,1,2,6), or "none" for zeros (default: exactly the policy's state; absent → zeros)`)
	actionDim := fs.Int("action-dim", 0, "values of each returned action: the policy's zero-padded or truncated (default: the policy's)")
	quiet := fs.Bool("quiet", false, "do not log connections")
	chunking := fs.String("chunking", serve.ChunkNewest, "how each connection turns overlapping chunks into actions: newest (execute-k), average or ema of the actions left and the next chunk's, rtc (real-time chunking: a flow policy's next chunk guided to continue the actions left)")
	emaWeight := fs.Float64("ema-weight", serve.DefaultEMAWeight, "--chunking ema: weight of the new chunk's action, in (0, 1]")
	delay := fs.Int("inference-delay", 0, "actions each connection executes from its buffer while its next chunk is computed (at most the policy's execute); with newest: naive asynchronous execution")
	rtcHorizon := fs.Int("rtc-horizon", 0, "--chunking rtc: actions left of the last chunk the next one is guided toward (LeRobot's execution_horizon; 0: all)")
	maxGuidance := fs.Float64("max-guidance", policy.DefaultMaxGuidance, "--chunking rtc: clip beta of the guidance weight")
	schedule := fs.String("rtc-schedule", policy.DefaultSchedule, "--chunking rtc: weights over the overlap after the frozen actions: exp, linear, ones or zeros")
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
	ens := policy.Chunking{Mode: *chunking, EMAWeight: *emaWeight, Delay: *delay, RTCHorizon: *rtcHorizon,
		MaxGuidance: *maxGuidance, Schedule: *schedule}
	if err := ens.Check(); err != nil {
		return &exitError{2, fmt.Errorf("serve: --chunking: %v", err)}
	}
	if fs.Changed("ema-weight") && *chunking != serve.ChunkEMA {
		return &exitError{2, fmt.Errorf("serve: --ema-weight applies to --chunking ema, not %s", *chunking)}
	}
	for _, f := range []string{"rtc-horizon", "max-guidance", "rtc-schedule"} {
		if fs.Changed(f) && *chunking != serve.ChunkRTC {
			return &exitError{2, fmt.Errorf("serve: --%s applies to --chunking rtc, not %s", f, *chunking)}
		}
	}
	adapt := serve.AdaptOptions{Resize: *resize, ActionDim: *actionDim}
	var err error
	if adapt.Cameras, err = serve.ParseCameraMap(*cameras); err != nil {
		return &exitError{2, fmt.Errorf("serve: --camera: %v", err)}
	}
	if *stateDims != "" {
		if adapt.StateDims, adapt.NoState, err = serve.ParseStateDims(*stateDims); err != nil {
			return &exitError{2, fmt.Errorf("serve: --state-dims: %v", err)}
		}
	}
	dir, err := checkpoints.Resolve(fs.Arg(0), func(w string) { fmt.Fprintln(os.Stderr, "reel: warning: "+w) })
	if err != nil {
		return err
	}
	if spec, err := policy.ReadSpec(filepath.Join(dir, policy.SpecFile)); err == nil {
		if _, err := serve.NewAdapter(spec, adapt); err != nil {
			return &exitError{2, fmt.Errorf("serve: %v", err)}
		}
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
	cfg := serve.Config{Spec: p.Spec(), Adapt: adapt, Name: p.Spec().Name, Version: version.String(), Addr: *addr,
		MaxBatch: *maxBatch, BatchWindow: *window, MaxMessageBytes: *maxBytes, Chunking: ens}
	if !*quiet {
		cfg.Logf = func(format string, a ...any) { fmt.Fprintf(os.Stderr, "reel: serve: "+format+"\n", a...) }
	}
	srv := serve.NewServer(p, cfg)
	defer srv.Close()
	if err := srv.Listen(); err != nil {
		return fmt.Errorf("serve: %v", err)
	}
	ad := srv.Adapter()
	fmt.Fprintf(os.Stderr, "reel: serving %s (step %d) on ws://%s (health: http://%s/health, config: http://%s/config) with %s; reads cameras %s, returns %d-D actions\n",
		dir, p.TrainingStep(), srv.Addr(), srv.Addr(), srv.Addr(), info, strings.Join(ad.BenchmarkCameras(), ", "), ad.ActionDim())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return srv.Serve(ctx)
}

const exportUsage = `Usage: reel export RUN_DIR|CHECKPOINT_DIR --format safetensors [--out FILE]
       reel export RUN_DIR|CHECKPOINT_DIR --format hf|peft [--out DIR]

Writes the model's weights (optimizer state left out) to one safetensors file, tensor names
being the variable paths ("policy/vision/patch_embed/weights"). A policy's normalisation is
tensors too ("norm/state_offset", "norm/state_scale", "norm/action_offset", "norm/action_scale":
x_normalised = (x − offset) / scale); the metadata holds the recipe YAML, the step, the reel
format version and a policy's spec (policy.json).

A fine-tune of a Hugging Face model (model.pretrained) exports back to its formats: --format hf
writes a transformers model directory (config.json, model.safetensors under the pretrained
checkpoint's tensor names, shapes and dtypes with the LoRA adapters merged, W + (alpha/r)·B·A,
and the tokenizer and preprocessor files copied); --format peft writes the LoRA adapters as a
PEFT adapter (adapter_config.json, adapter_model.safetensors). Variables without a transformers
name are written as "reel." + their path with "/" → ".".
`

func cmdExport(args []string) error {
	fs := newFlags("export")
	format := fs.String("format", "safetensors", "output format: safetensors, hf (a Hugging Face model directory, LoRA merged) or peft (a PEFT LoRA adapter directory)")
	out := fs.String("out", "", "output file (default: CHECKPOINT_DIR/model.safetensors; for hf and peft a directory, default CHECKPOINT_DIR/hf or CHECKPOINT_DIR/peft)")
	backend := fs.String("backend", "", "backend that builds the architecture's graph for hf and peft (default: automatic)")
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
	if *format != "safetensors" && *format != "hf" && *format != "peft" {
		return &exitError{2, fmt.Errorf("export: --format %q is not supported (want safetensors, hf or peft)", *format)}
	}
	dir, err := checkpoints.Resolve(fs.Arg(0), func(w string) { fmt.Fprintln(os.Stderr, "reel: warning: "+w) })
	if err != nil {
		return err
	}
	if *format != "safetensors" {
		return exportHF(dir, *format, *out, *ema, *backend)
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
func depthSweep(res *evalResult, task *tasks.VLA, p sim.DepthPolicy) error {
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
