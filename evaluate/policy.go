package evaluate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/gomlx/compute"
	"gonum.org/v1/plot/plotter"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/data"
	"github.com/reelml/reel/internal/errline"
	"github.com/reelml/reel/internal/usage"
	"github.com/reelml/reel/internal/version"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/serve"
	"github.com/reelml/reel/sim"
	"github.com/reelml/reel/tasks"
	"github.com/reelml/reel/train"
)

// PolicyTask is a task whose checkpoints are policies that act in the recipe's simulator (task
// vla): they are evaluated offline and closed-loop.
type PolicyTask interface {
	train.Task
	Sim() sim.Config                  // the simulator the policy is rolled out in
	EvalConfig() sim.EvalConfig       // the held-out episodes
	TrainConfig() recipes.TrainConfig // the graph options of the checkpoint
	Depths() []int                    // fixed depths a recurrent-depth policy is swept over (eval.depths)
	// ClosedLoop is the policy and settings a local closed-loop evaluation runs with (eval.chunking).
	ClosedLoop(p policy.Policy, spec policy.Spec) (policy.Policy, sim.EvalConfig)
	Chunking() policy.Chunking // eval.chunking and its settings
}

// ClosedLoop is the closed-loop part of a policy's evaluation: the checkpoint (or a remote
// policy server) drives the simulator in held-out scenes.
type ClosedLoop struct {
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
	// Remote: episodes that failed (timeouts, errors; counted as failures above), whether some
	// never ran, this evaluation's shard, and its result files (per-episode JSONL, aggregate
	// JSON in the vla-eval harness's layout).
	Failed  int              `json:"failed,omitempty"`
	Partial bool             `json:"partial,omitempty"`
	Shard   *serve.ShardInfo `json:"shard,omitempty"`
	Results []string         `json:"results,omitempty"`
	// Recurrent-depth policies: the adaptive run above, then a sweep of fixed depths.
	AdaptiveIterations map[string]float64 `json:"adaptive_iterations,omitempty"`
	Depths             []DepthResult      `json:"depths,omitempty"`
}

// DepthResult is the closed-loop result of a recurrent-depth policy at one fixed depth.
type DepthResult struct {
	Depth     int                         `json:"depth"`
	Success   float64                     `json:"success"`
	Low       float64                     `json:"success_low"`
	High      float64                     `json:"success_high"`
	Families  map[string]sim.FamilyResult `json:"families"`
	LatencyMS float64                     `json:"latency_ms_per_call"`
}

// ModeScenes × ModeSamples first actions probe how a policy handles two valid solutions.
const ModeScenes, ModeSamples = 50, 16

// evalPolicy evaluates a policy checkpoint: the offline action error on held-out demonstrations
// and, when the policy's spec fits the recipe's simulator, closed-loop success in held-out
// scenes, with the local checkpoint or the policy served behind o.Remote.
func evalPolicy(b compute.Backend, task PolicyTask, dir string, o Options) (Result, error) {
	st, err := checkpoints.Verify(dir)
	if err != nil {
		return Result{}, err
	}
	res := Result{Checkpoint: dir, Step: st.Step, Recipe: st.Recipe}
	spec, err := policy.ReadSpec(filepath.Join(dir, policy.SpecFile))
	if err != nil {
		return res, err
	}
	if o.Remote != nil {
		if err := sim.Fits(task.Sim(), spec); err != nil {
			return res, fmt.Errorf("eval --remote: %s cannot be rolled out in the simulator: %w", dir, err)
		}
		return res, evalRemote(&res, task, dir, *o.Remote, o)
	}
	rep, _, err := train.EvaluateCheckpoint(b, task, dir, task.TrainConfig(), false)
	if err != nil {
		return res, err
	}
	res.Metrics = rep.Metrics
	o.log("%s (step %d): %s", dir, st.Step, train.FormatMetrics(rep.Metrics))
	if err := sim.Fits(task.Sim(), spec); err != nil {
		o.log("no closed-loop evaluation: %v", err)
		return res, nil
	}
	p, err := tasks.OpenPolicy(b, dir, o.Sets, uint64(task.EvalConfig().Seed))
	if err != nil {
		return res, err
	}
	defer p.Close()
	return res, closedLoop(&res, task, dir, spec, p, o)
}

// closedLoop rolls policy p out (rollOut), sweeps a recurrent-depth policy's fixed depths and,
// where the simulator has two-solution scenes, probes them; each adds to res.
func closedLoop(res *Result, task PolicyTask, dir string, spec policy.Spec, p policy.Policy, o Options) error {
	if err := rollOut(res, task, dir, spec, p, o); err != nil {
		return err
	}
	if dp, ok := p.(sim.DepthPolicy); ok {
		if err := depthSweep(res, task, dp, o); err != nil {
			return err
		}
	}
	if slices.Contains(task.Sim().Families, "pick_any") || len(task.Sim().Families) == 0 {
		hit, both, err := sim.Modes(task.Sim(), task.EvalConfig(), p, ModeScenes, ModeSamples)
		if err != nil {
			return err
		}
		res.Metrics["pick_any/mode_hit"], res.Metrics["pick_any/both_modes"] = hit, both
		o.log("two-solution scenes: %.2f of first moves head for a valid twin; %.2f of scenes see both twins chosen (%d scenes × %d samples)",
			hit, both, ModeScenes, ModeSamples)
	}
	return nil
}

// rollOut rolls policy p out closed-loop, adds its success rates to res and writes the rollout
// videos (eval.videos) under RUN/rollouts/.
func rollOut(res *Result, task PolicyTask, dir string, spec policy.Spec, p policy.Policy, o Options) error {
	start := time.Now()
	p, ec := task.ClosedLoop(p, spec) // eval.chunking
	sr, err := sim.Evaluate(task.Sim(), ec, p)
	if err != nil {
		return err
	}
	ev := &ClosedLoop{Success: sr.Success, Low: sr.Low, High: sr.High, Episodes: sr.N, MeanSteps: sr.MeanSteps,
		Families: sr.Families, Seconds: time.Since(start).Seconds()}
	addSuccess(res, sr.Success, sr.Families)
	ev.BoundaryJump, ev.Boundaries, ev.LatencyMSPerStep = sr.BoundaryJump, sr.Boundaries, sr.LatencyMSPerStep
	res.Metrics["closed_loop/boundary_jump"] = sr.BoundaryJump
	res.Metrics["closed_loop/latency_ms_per_step"] = sr.LatencyMSPerStep
	runDir := checkpoints.RunDir(dir)
	for i, v := range sr.Videos {
		outcome := "fail"
		if v.Success {
			outcome = "success"
		}
		path := filepath.Join(runDir, "rollouts", filepath.Base(dir), fmt.Sprintf("episode_%03d_%s_%s.mp4", i, v.Family, outcome))
		vid := data.Video{T: v.Len(), Size: v.Size, Frames: v.Frames[0], Caption: v.Task}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := data.EncodeVideo(path, vid, sim.ControlFPS); err != nil {
			o.log("warning: rollout video: %v", err)
			break
		}
		ev.Videos = append(ev.Videos, path)
	}
	res.ClosedLoop = ev
	o.log("closed loop: success %.3f [%.3f, %.3f] over %d held-out episodes (%s) in %.1fs",
		sr.Success, sr.Low, sr.High, sr.N, familyLine(sr.Families), ev.Seconds)
	c := task.Chunking()
	o.log("chunking %s, inference delay %d: mean action jump at chunk boundaries %.4f (%d boundaries), policy %.1f ms per control step",
		c.Mode, c.Delay, sr.BoundaryJump, sr.Boundaries, sr.LatencyMSPerStep)
	return nil
}

// addSuccess adds the closed-loop success rates to res's metrics.
func addSuccess(res *Result, success float64, families map[string]sim.FamilyResult) {
	if res.Metrics == nil {
		res.Metrics = map[string]float64{}
	}
	res.Metrics["closed_loop/success"] = success
	for f, r := range families {
		res.Metrics["closed_loop/success_"+f] = r.Success
	}
}

func familyLine(f map[string]sim.FamilyResult) string {
	return keyedLine(f, func(k string, r sim.FamilyResult) string { return fmt.Sprintf("%s %.2f (n=%d)", k, r.Success, r.N) })
}

// familyIntervals is each family's success with its 95% Wilson interval.
func familyIntervals(f map[string]sim.FamilyResult) string {
	return keyedLine(f, func(k string, r sim.FamilyResult) string {
		return fmt.Sprintf("%s %.2f [%.2f, %.2f] n=%d", k, r.Success, r.Low, r.High, r.N)
	})
}

// depthSweep evaluates a recurrent-depth policy at every eval.depths fixed depth, records the
// iterations its adaptive run (just done) used, and plots success against iterations.
func depthSweep(res *Result, task PolicyTask, p sim.DepthPolicy, o Options) error {
	ev := res.ClosedLoop
	ev.AdaptiveIterations = p.Iterations(sim.FamilyOf)
	rows, err := sim.SweepDepths(task.Sim(), task.EvalConfig(), p, task.Depths())
	if err != nil {
		return err
	}
	var fixed []plotter.XY
	for _, r := range rows {
		ev.Depths = append(ev.Depths, DepthResult{Depth: r.Depth, Success: r.Success, Low: r.Low, High: r.High, Families: r.Families, LatencyMS: r.LatencyMS})
		res.Metrics[fmt.Sprintf("closed_loop/success_depth_%d", r.Depth)] = r.Success
		fixed = append(fixed, plotter.XY{X: float64(r.Depth), Y: r.Success})
		o.log("depth %2d: success %.3f [%.3f, %.3f] (%s), %.1f ms per batched call", r.Depth, r.Success, r.Low, r.High, familyIntervals(r.Families), r.LatencyMS)
	}
	iters := keyedLine(ev.AdaptiveIterations, func(k string, v float64) string {
		if k == "all" {
			return ""
		}
		return fmt.Sprintf("%s %.2f", k, v)
	})
	o.log("adaptive: success %.3f with %.2f iterations on average (%s)", ev.Success, ev.AdaptiveIterations["all"], iters)
	path := filepath.Join(checkpoints.RunDir(res.Checkpoint), "plots", "depth.png")
	adaptive := []plotter.XY{{X: ev.AdaptiveIterations["all"], Y: ev.Success}}
	if err := train.PlotLines(path, "closed-loop success vs iterations", "core iterations", "success",
		map[string][]plotter.XY{"fixed depth": fixed, "adaptive stopping (mean iterations)": adaptive}); err != nil {
		o.log("warning: plot: %v", err)
	} else {
		o.log("wrote %s", path)
	}
	return nil
}

// Remote is how a remote evaluation reaches the policy server and which part of the evaluation
// it runs.
type Remote struct {
	URL        string
	MaxConns   int              // most episodes played at once, each through its own connection
	ActTimeout time.Duration    // longest wait for one reply
	Shard      *serve.ShardInfo // nil: the whole evaluation
	ResultsDir string           // "": RUN/results
}

// Check validates the settings of a remote evaluation as 'reel eval' takes them (usage errors
// naming its flags; changed(flag) says which were given, which without a URL is an error) and
// sets Shard when --num-shards is given: shard id of num shards.
func (r *Remote) Check(id, num int, changed func(flag string) bool) error {
	for _, f := range []string{"max-connections", "act-timeout", "shard-id", "num-shards", "results"} {
		if changed(f) && r.URL == "" {
			return usage.Errorf("eval: --%s is for --remote evaluations", f)
		}
	}
	idSet, numSet := changed("shard-id"), changed("num-shards")
	switch {
	case r.MaxConns < 1:
		return usage.Errorf("eval: --max-connections must be ≥ 1, got %d", r.MaxConns)
	case r.ActTimeout <= 0:
		return usage.Errorf("eval: --act-timeout must be positive, got %s", r.ActTimeout)
	case idSet && !numSet:
		return usage.Errorf("eval: --shard-id needs --num-shards")
	case numSet:
		if num < 1 || id < 0 || id >= num {
			return usage.Errorf("eval: --shard-id must be in [0, --num-shards) and --num-shards ≥ 1, got %d and %d", id, num)
		}
		r.Shard = &serve.ShardInfo{ID: id, Total: num}
	}
	return nil
}

// evalRemote evaluates the policy served at ro.URL closed-loop, episode by episode as the
// vla-eval harness's runners do (episode_start with the task, one observation per action,
// episode_end with the result), with at most ro.MaxConns connections, and writes the episodes
// and their aggregate in the harness's result layout.
func evalRemote(res *Result, task PolicyTask, dir string, ro Remote, o Options) error {
	start := time.Now()
	opts := serve.SessionOptions{ActTimeout: ro.ActTimeout}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	probe, err := serve.DialSession(ctx, ro.URL, serve.SessionOptions{ActTimeout: ro.ActTimeout, Retries: 1})
	cancel()
	if err != nil {
		return fmt.Errorf("eval --remote: %w", err)
	}
	info := probe.Info()
	_ = probe.Close()
	if want := sim.Features(task.Sim()).ActionDim; info.ActionDim != 0 && info.ActionDim != want {
		return fmt.Errorf("eval --remote: the server at %s returns %d-D actions; the simulator takes %d (serve it without --action-dim)", ro.URL, info.ActionDim, want)
	}
	ec := task.EvalConfig()
	ec.Horizon, ec.Execute, ec.Videos = 1, 1, 0 // the server buffers chunks and does execute-k
	shard := serve.ShardInfo{ID: 0, Total: 1}
	if ro.Shard != nil {
		shard = *ro.Shard
	}
	episodes, err := serve.ShardEpisodes(ec.Episodes, shard.ID, shard.Total)
	if err != nil {
		return usage.Errorf("eval: %w", err)
	}
	if len(episodes) == 0 {
		return fmt.Errorf("eval --remote: shard %d of %d holds none of the %d episodes", shard.ID, shard.Total, ec.Episodes)
	}
	newSession := func() (sim.Session, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		s, err := serve.DialSession(ctx, ro.URL, opts)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	sr, err := sim.EvaluateSessions(task.Sim(), ec, episodes, newSession, ro.MaxConns)
	if err != nil {
		return err
	}
	records := make([]serve.EpisodeRecord, len(sr.Episodes))
	for i, e := range sr.Episodes {
		records[i] = serve.EpisodeRecord{Task: e.Family, EpisodeID: e.Index, Metrics: map[string]any{"success": e.Success},
			Steps: e.Steps, ElapsedSec: math.Round(e.Seconds*1000) / 1000, FailureReason: e.FailureReason, FailureDetail: e.FailureDetail,
			Extra: map[string]any{"instruction": e.Instruction, "suite": e.Family, "seed": e.Seed}}
	}
	meta := serve.ResultMeta{Benchmark: "reel-sim", HarnessVersion: version.String(), ServerInfo: info.Payload, Partial: sr.Partial,
		Config: map[string]any{"recipe": res.Recipe, "checkpoint": dir, "remote": ro.URL, "episodes": ec.Episodes, "seed": ec.Seed,
			"max_steps": task.Sim().MaxSteps, "max_connections": ro.MaxConns, "act_timeout_s": ro.ActTimeout.Seconds()}}
	if ro.Shard != nil {
		meta.Shard = ro.Shard
		meta.Config["shard_id"], meta.Config["num_shards"] = ro.Shard.ID, ro.Shard.Total
	}
	resultsDir := ro.ResultsDir
	if resultsDir == "" {
		resultsDir = filepath.Join(checkpoints.RunDir(dir), "results")
	}
	jsonl, agg, err := serve.WriteResults(resultsDir, meta, records)
	if err != nil {
		return err
	}
	ev := &ClosedLoop{Success: sr.Success, Low: sr.Low, High: sr.High, Episodes: sr.N, MeanSteps: sr.MeanSteps, Families: sr.Families,
		Remote: ro.URL, Seconds: time.Since(start).Seconds(), Failed: sr.Failed, Partial: sr.Partial, Shard: ro.Shard, Results: []string{jsonl, agg}}
	addSuccess(res, sr.Success, sr.Families)
	res.ClosedLoop = ev
	part := ""
	if ro.Shard != nil {
		part = fmt.Sprintf(" (shard %d of %d)", ro.Shard.ID, ro.Shard.Total)
	}
	o.log("closed loop through %s%s: success %.3f [%.3f, %.3f] over %d held-out episodes (%s), %d failed, in %.1fs; results %s, %s",
		ro.URL, part, sr.Success, sr.Low, sr.High, sr.N, familyLine(sr.Families), sr.Failed, ev.Seconds, jsonl, agg)
	for _, e := range sr.Episodes {
		if e.FailureReason != "" {
			o.log("warning: episode %d failed (%s): %s", e.Index, e.FailureReason, errline.First(errors.New(e.FailureDetail)))
		}
	}
	if sr.Partial {
		o.log("warning: the evaluation is partial: the server could not be reached for some episodes")
	}
	return nil
}
