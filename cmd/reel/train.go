package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"golang.org/x/term"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/tasks"
	"github.com/reelml/reel/train"
)

func cmdTrain(args []string) error {
	fs := newFlags("train")
	out := fs.String("out", "", "run directory (default runs/RECIPE_NAME)")
	sets := fs.StringArray("set", nil, "override a recipe field, e.g. --set train.lr=3e-4 (repeatable)")
	resume := fs.Bool("resume", false, "continue the run in --out from its newest valid checkpoint")
	overwrite := fs.Bool("overwrite", false, "replace the checkpoints, metrics, plots and TensorBoard events already in --out (kept until the new run succeeds)")
	stopAfter := fs.Int("stop-after", 0, "stop with a checkpoint after this many steps in total (simulates preemption; continue with --resume)")
	backend := fs.String("backend", "", `compute backend: "go", "xla:/path/to/pjrt_plugin.so" (default: $GOMLX_BACKEND, else auto)`)
	fs.Usage = usageFunc(fs, "Usage: reel train NAME|FILE [flags]\n\nTrains a recipe (embedded name or YAML file).")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{2, fmt.Errorf("train: expected one recipe name or file, got %d arguments (see 'reel recipes list')", fs.NArg())}
	}
	r, err := recipes.Load(fs.Arg(0), *sets)
	if err != nil {
		return err
	}
	if *out == "" {
		*out = filepath.Join("runs", r.Name)
	}
	if *resume && *overwrite {
		return &exitError{2, errors.New("train: --resume and --overwrite exclude each other")}
	}
	yml, err := r.YAML()
	if err != nil {
		return err
	}
	task, err := tasks.New(r)
	if err != nil {
		return err
	}
	if c, ok := task.(interface{ Close() }); ok {
		defer c.Close() // background data decoding
	}
	b, info, err := backends.Select(*backend)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "reel: training %s → %s on %s\n", r.Name, *out, info)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := train.Run(ctx, task, train.Options{
		Recipe: r, RecipeYAML: yml, OutDir: *out, Resume: *resume, Overwrite: *overwrite, StopAfter: *stopAfter,
		Backend: b, Log: os.Stderr, Progress: term.IsTerminal(int(os.Stdout.Fd())),
	})
	switch {
	case errors.Is(err, train.ErrInterrupted):
		return &exitError{130, err}
	case errors.Is(err, train.ErrNonFinite):
		return &exitError{3, err}
	case err != nil:
		return err
	}
	fmt.Fprintf(os.Stderr, "reel: done: %d steps, final loss %.4f, checkpoint %s\n", res.Steps, res.FinalLoss, res.Checkpoint)
	if res.Eval != nil {
		fmt.Fprintf(os.Stderr, "reel: eval: %s\n", train.FormatMetrics(res.Eval))
	}
	return nil
}
