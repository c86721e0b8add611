package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/internal/version"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/serve"
	"github.com/reelml/reel/tasks"
)

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
Stop with Ctrl-C.`

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
	fs.Usage = usageFunc(fs, serveUsage)
	if err := parseArgs(fs, args, 1, "expected one run or checkpoint directory"); err != nil {
		return err
	}
	ens := policy.Chunking{Mode: *chunking, EMAWeight: *emaWeight, Delay: *delay, RTCHorizon: *rtcHorizon,
		MaxGuidance: *maxGuidance, Schedule: *schedule}
	if err := serve.CheckChunkingFlags(ens, fs.Changed); err != nil {
		return &exitError{2, fmt.Errorf("serve: %w", err)}
	}
	adapt, err := serve.ParseAdaptOptions(*cameras, *resize, *stateDims, *actionDim)
	if err != nil {
		return &exitError{2, fmt.Errorf("serve: %w", err)}
	}
	dir, err := checkpoints.Resolve(fs.Arg(0), warn)
	if err != nil {
		return err
	}
	if err := serve.CheckAdapter(dir, adapt); err != nil {
		return &exitError{2, fmt.Errorf("serve: %w", err)}
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
		return fmt.Errorf("serve: %w", err)
	}
	ad := srv.Adapter()
	fmt.Fprintf(os.Stderr, "reel: serving %s (step %d) on ws://%s (health: http://%s/health, config: http://%s/config) with %s; reads cameras %s, returns %d-D actions\n",
		dir, p.TrainingStep(), srv.Addr(), srv.Addr(), srv.Addr(), info, strings.Join(ad.BenchmarkCameras(), ", "), ad.ActionDim())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return srv.Serve(ctx)
}
