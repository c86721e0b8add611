package main

import (
	"fmt"
	"os"

	"github.com/reelml/reel/analysis"
	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/checkpoints"
)

const analyzeUsage = `Usage: reel analyze patching|heads RUN_DIR|CHECKPOINT_DIR [flags]

  patching  Visual Activation Patching: for image pairs differing by one object, patch clean
            activations into the corrupted run per layer and image token; writes
            RUN/analysis/patching.json and patching.png (layer × position heat map).
  heads     HeadLens-style attribution: score each decoder head's direct effect on the correct
            count, then ablate the top-k and k random heads; writes RUN/analysis/heads.json
            and heads.png.
`

func cmdAnalyze(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(os.Stderr, analyzeUsage)
		if len(args) == 0 {
			return &exitError{2, fmt.Errorf("analyze: expected a tool: patching or heads")}
		}
		return nil
	}
	tool := args[0]
	fs := newFlags("analyze " + tool)
	backend := fs.String("backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`)
	out := fs.String("out", "", "output directory (default RUN/analysis)")
	seed := fs.Uint64("seed", 7, "scene seed (disjoint from training streams)")
	var pairs, examples, topK, draws *int
	switch tool {
	case "patching":
		pairs = fs.Int("pairs", 128, "clean/corrupted image pairs")
	case "heads":
		examples = fs.Int("examples", 512, "in-distribution counting questions")
		topK = fs.Int("top-k", 0, "heads ablated (0 = a quarter of the heads)")
		draws = fs.Int("random-draws", 10, "random k-head ablations to average")
	default:
		return &exitError{2, fmt.Errorf("analyze: unknown tool %q (want patching or heads)", tool)}
	}
	fs.Usage = usageFunc(fs, analyzeUsage)
	if err := parseArgs(fs, args[1:], 1, "expected one run or checkpoint directory"); err != nil {
		return err
	}
	if pairs != nil && *pairs < 1 {
		return &exitError{2, fmt.Errorf("analyze patching: --pairs must be ≥ 1, got %d", *pairs)}
	}
	if examples != nil && (*examples < 1 || *draws < 1 || *topK < 0) {
		return &exitError{2, fmt.Errorf("analyze heads: --examples and --random-draws must be ≥ 1 and --top-k ≥ 0")}
	}
	ckpt, err := checkpoints.Resolve(fs.Arg(0), warn)
	if err != nil {
		return err
	}
	b, info, err := backends.Select(*backend)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "reel: analyzing %s on %s\n", ckpt, info)
	subj, err := analysis.Open(b, ckpt, warn)
	if err != nil {
		return err
	}
	dir := subj.OutDir(*out)
	var result interface{ Summary() string }
	switch tool {
	case "patching":
		result, err = subj.Patching(analysis.PatchingConfig{Pairs: *pairs, Seed: *seed})
	case "heads":
		result, err = subj.Heads(analysis.HeadsConfig{Examples: *examples, Seed: *seed, TopK: *topK, RandomDraws: *draws})
	}
	if err != nil {
		return err
	}
	logf("%s", result.Summary())
	plotErr, err := analysis.Save(dir, result)
	if plotErr != nil {
		warn("plot: " + plotErr.Error())
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "reel: wrote %s/%s.json and %s.png\n", dir, tool, tool)
	return printJSON(result)
}
