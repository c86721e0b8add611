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
	seedFlag := func(p *uint64) { fs.Uint64Var(p, "seed", 7, "scene seed (disjoint from training streams)") }
	var config interface{ CheckFlags() error } // *analysis.PatchingConfig or *analysis.HeadsConfig
	switch tool {
	case "patching":
		c := &analysis.PatchingConfig{}
		seedFlag(&c.Seed)
		fs.IntVar(&c.Pairs, "pairs", 128, "clean/corrupted image pairs")
		config = c
	case "heads":
		c := &analysis.HeadsConfig{}
		seedFlag(&c.Seed)
		fs.IntVar(&c.Examples, "examples", 512, "in-distribution counting questions")
		fs.IntVar(&c.TopK, "top-k", 0, "heads ablated (0 = a quarter of the heads)")
		fs.IntVar(&c.RandomDraws, "random-draws", 10, "random k-head ablations to average")
		config = c
	default:
		return &exitError{2, fmt.Errorf("analyze: unknown tool %q (want patching or heads)", tool)}
	}
	fs.Usage = usageFunc(fs, analyzeUsage)
	if err := parseArgs(fs, args[1:], 1, "expected one run or checkpoint directory"); err != nil {
		return err
	}
	if err := config.CheckFlags(); err != nil {
		return &exitError{2, fmt.Errorf("analyze %s: %w", tool, err)}
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
	result, err := subj.Run(config)
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
