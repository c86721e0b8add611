package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/serve"
	"github.com/reelml/reel/tasks"
	"github.com/reelml/reel/train"
)

const benchServeUsage = `Usage: reel bench serve [RUN_DIR|CHECKPOINT_DIR] [flags]

Load test of 'reel serve': serves the policy on 127.0.0.1 (a free port) and drives it with
--sessions concurrent vla-eval sessions for --duration per --max-batch setting (set through
/config between runs), each session playing episodes of --episode-steps observations. Every reply
is checked: it must echo its observation's seq, and its action must have been computed for that
session's observation of that step (the served actions carry two tag values for this), so dropped
or cross-wired replies are counted, not assumed away. Prints p50/p90/p99 latency, throughput and
the policy's mean batch per setting; fails if any reply was dropped, wrong or an error. Without
RUN_DIR it serves a molmobot-tiny policy trained for one step (random weights) in a temporary
directory.
`

// benchServe is `reel bench serve`.
func benchServe(args []string) error {
	fs := newFlags("bench serve")
	sessions := fs.Int("sessions", 32, "concurrent sessions")
	duration := fs.Duration("duration", time.Minute, "load time per --max-batch setting")
	maxBatchFlag := fs.String("max-batch", "16,1", "comma-separated max_batch_size settings to load (1 = unbatched)")
	window := fs.Duration("batch-window", 5*time.Millisecond, "batch window (max_wait_time)")
	steps := fs.Int("episode-steps", 50, "observations per episode")
	imageSize := fs.Int("image-size", 0, "side of the square images sent (0: the policy's camera sizes)")
	recipe := fs.String("recipe", "molmobot-tiny", "recipe of the policy created when no RUN_DIR is given")
	backend := fs.String("backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, benchServeUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	var maxBatches []int
	for _, f := range strings.Split(*maxBatchFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return &exitError{2, fmt.Errorf("bench serve: --max-batch: %q is not a batch size ≥ 1", f)}
		}
		maxBatches = append(maxBatches, n)
	}
	switch {
	case fs.NArg() > 1:
		return &exitError{2, fmt.Errorf("bench serve: expected at most one run or checkpoint directory, got %d arguments", fs.NArg())}
	case *sessions < 1 || *steps < 1 || *duration <= 0 || *imageSize < 0:
		return &exitError{2, fmt.Errorf("bench serve: --sessions, --episode-steps and --duration must be positive, --image-size ≥ 0")}
	}
	b, info, err := backends.Select(*backend)
	if err != nil {
		return err
	}
	var dir string
	if fs.NArg() == 1 {
		if dir, err = checkpoints.Resolve(fs.Arg(0), func(w string) { fmt.Fprintln(os.Stderr, "reel: warning: "+w) }); err != nil {
			return err
		}
	} else {
		tmp, err := os.MkdirTemp("", "reel-bench-serve-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		r, err := recipes.Load(*recipe, []string{"train.steps=1", "train.batch_size=2", "train.grad_accum=1", "train.eval_every=0",
			"eval.examples=2", "eval.batch_size=2"})
		if err != nil {
			return err
		}
		yml, err := r.YAML()
		if err != nil {
			return err
		}
		task, err := tasks.New(r)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "reel: bench serve: creating a %s policy (one training step) in %s\n", r.Name, tmp)
		res, err := train.Run(context.Background(), task, train.Options{Recipe: r, RecipeYAML: yml, OutDir: tmp, Backend: b, Log: io.Discard})
		if err != nil {
			return fmt.Errorf("bench serve: %v", err)
		}
		dir = res.Checkpoint
	}
	p, err := tasks.OpenPolicy(b, dir, nil, 1)
	if err != nil {
		return err
	}
	defer p.Close()
	spec := p.Spec()
	fmt.Fprintf(os.Stderr, "reel: bench serve on %s: %s (%d camera(s) %dx%d, horizon %d, execute %d), %d sessions, %s per setting\n",
		info, spec.Name, len(spec.Cameras), spec.Cameras[0].Width, spec.Cameras[0].Height, spec.Horizon, spec.Execute, *sessions, *duration)
	reports, err := serve.BenchServe(p, serve.Config{Spec: spec, Name: spec.Name, BatchWindow: *window},
		serve.LoadTestConfig{Sessions: *sessions, Duration: *duration, EpisodeSteps: *steps, ImageSize: *imageSize, Seed: 1}, maxBatches)
	if err != nil {
		return fmt.Errorf("bench serve: %v", err)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(reports); err != nil {
			return err
		}
	} else {
		fmt.Printf("%-9s %8s %10s %8s %8s %8s %8s %10s %7s %7s %7s %7s\n", "max_batch", "replies", "replies/s", "p50 ms", "p90 ms", "p99 ms",
			"max ms", "mean batch", "errors", "dropped", "bad seq", "crossed")
		for _, r := range reports {
			fmt.Printf("%-9d %8d %10.1f %8.1f %8.1f %8.1f %8.1f %10.2f %7d %7d %7d %7d\n", r.MaxBatch, r.Replies, r.Throughput, r.P50MS, r.P90MS,
				r.P99MS, r.MaxMS, r.MeanBatch, r.Errors, r.Dropped, r.WrongSeq, r.CrossWired)
		}
	}
	for _, r := range reports {
		if !r.OK() {
			return fmt.Errorf("bench serve: max_batch %d: %d replies, %d errors, %d dropped, %d with a wrong seq, %d cross-wired",
				r.MaxBatch, r.Replies, r.Errors, r.Dropped, r.WrongSeq, r.CrossWired)
		}
	}
	return nil
}
