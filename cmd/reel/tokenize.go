package main

import (
	"fmt"
	"os"

	"github.com/reelml/reel/analysis"
	"github.com/reelml/reel/backends"
)

func cmdTokenize(args []string) error {
	fs := newFlags("tokenize")
	out := fs.String("out", ".", "directory for the PNG strip")
	backend := fs.String("backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`)
	fs.Usage = usageFunc(fs, "Usage: reel tokenize RUN_DIR|CHECKPOINT_DIR VIDEO_FILE [--out DIR]\n\nRuns a trajvit2 checkpoint's TrajTok tokenizer on a video (decoded with ffmpeg at the recipe's\nfps and size). Prints JSON (frames, active tokens, each token's pixel share and frames) and writes\nDIR/VIDEO.tokens.png: the frames above their trajectory masks, one colour per token.")
	if err := parseArgs(fs, args, 2, "expected a checkpoint and a video file"); err != nil {
		return err
	}
	if _, err := os.Stat(fs.Arg(1)); err != nil {
		return fmt.Errorf("tokenize: video %s: %w", fs.Arg(1), err)
	}
	b, _, err := backends.Select(*backend)
	if err != nil {
		return err
	}
	res, err := analysis.Tokenize(b, fs.Arg(0), fs.Arg(1), *out, warn)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "reel: %s: %d of %d trajectories active; wrote %s\n", res.Video, res.Tokens, res.Latents, res.Strip)
	return printJSON(res)
}
