package bench

import (
	"context"
	"fmt"
	"github.com/reelml/reel/internal/usage"
	"io"
	"os"
	"time"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/serve"
	"github.com/reelml/reel/tasks"
	"github.com/reelml/reel/train"
)

// ServeConfig is `reel bench serve`: a load test of the policy server (serve.BenchServe) on a
// checkpoint, or on a policy of Recipe trained for one step in a temporary directory.
type ServeConfig struct {
	Checkpoint   string // checkpoint directory ("": train Recipe for one step)
	Recipe       string
	Sessions     int
	Duration     time.Duration // load time per MaxBatches setting
	MaxBatches   []int         // max_batch_size settings, loaded in turn
	BatchWindow  time.Duration
	EpisodeSteps int
	ImageSize    int // side of the square images sent (0: the policy's camera sizes)
	Backend      string
	Log          Logger
}

// RunServe runs the load test; its reports are returned even when some reply was dropped,
// wrong or an error (ServeFailure says which).
func RunServe(c ServeConfig) ([]serve.LoadTestReport, error) {
	if c.Sessions < 1 || c.EpisodeSteps < 1 || c.Duration <= 0 || c.ImageSize < 0 {
		return nil, usage.Errorf("bench serve: --sessions, --episode-steps and --duration must be positive, --image-size ≥ 0")
	}
	b, info, err := backends.Select(c.Backend)
	if err != nil {
		return nil, err
	}
	dir := c.Checkpoint
	if dir == "" {
		tmp, err := os.MkdirTemp("", "reel-bench-serve-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		r, err := recipes.Load(c.Recipe, []string{"train.steps=1", "train.batch_size=2", "train.grad_accum=1", "train.eval_every=0",
			"eval.examples=2", "eval.batch_size=2"})
		if err != nil {
			return nil, err
		}
		yml, err := r.YAML()
		if err != nil {
			return nil, err
		}
		task, err := tasks.New(r)
		if err != nil {
			return nil, err
		}
		c.Log.printf("bench serve: creating a %s policy (one training step) in %s", r.Name, tmp)
		res, err := train.Run(context.Background(), task, train.Options{Recipe: r, RecipeYAML: yml, OutDir: tmp, Backend: b, Log: io.Discard})
		if err != nil {
			return nil, fmt.Errorf("bench serve: %w", err)
		}
		dir = res.Checkpoint
	}
	p, err := tasks.OpenPolicy(b, dir, nil, 1)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	spec := p.Spec()
	c.Log.printf("bench serve on %s: %s (%d camera(s) %dx%d, horizon %d, execute %d), %d sessions, %s per setting",
		info, spec.Name, len(spec.Cameras), spec.Cameras[0].Width, spec.Cameras[0].Height, spec.Horizon, spec.Execute, c.Sessions, c.Duration)
	reports, err := serve.BenchServe(p, serve.Config{Spec: spec, Name: spec.Name, BatchWindow: c.BatchWindow},
		serve.LoadTestConfig{Sessions: c.Sessions, Duration: c.Duration, EpisodeSteps: c.EpisodeSteps, ImageSize: c.ImageSize, Seed: 1}, c.MaxBatches)
	if err != nil {
		return nil, fmt.Errorf("bench serve: %w", err)
	}
	return reports, nil
}

// ServeFailure is the first report with a dropped, wrong or error reply, as an error (nil: all
// replies right).
func ServeFailure(reports []serve.LoadTestReport) error {
	for _, r := range reports {
		if !r.OK() {
			return fmt.Errorf("bench serve: max_batch %d: %d replies, %d errors, %d dropped, %d with a wrong seq, %d cross-wired",
				r.MaxBatch, r.Replies, r.Errors, r.Dropped, r.WrongSeq, r.CrossWired)
		}
	}
	return nil
}

// WriteServeTable prints the reports as `reel bench serve` does.
func WriteServeTable(w io.Writer, reports []serve.LoadTestReport) {
	fmt.Fprintf(w, "%-9s %8s %10s %8s %8s %8s %8s %10s %7s %7s %7s %7s\n", "max_batch", "replies", "replies/s", "p50 ms", "p90 ms", "p99 ms",
		"max ms", "mean batch", "errors", "dropped", "bad seq", "crossed")
	for _, r := range reports {
		fmt.Fprintf(w, "%-9d %8d %10.1f %8.1f %8.1f %8.1f %8.1f %10.2f %7d %7d %7d %7d\n", r.MaxBatch, r.Replies, r.Throughput, r.P50MS, r.P90MS,
			r.P99MS, r.MaxMS, r.MeanBatch, r.Errors, r.Dropped, r.WrongSeq, r.CrossWired)
	}
}
