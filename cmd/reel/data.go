package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/reelml/reel/data"
)

const dataAuditUsage = `Usage: reel data audit FILE.jsonl [--json]

Audits caption / QA text for reporting bias: the fraction of texts that
mention counts, spatial relations, temporal order and negation. FILE is JSONL
with one object per line; its "caption", "text", "question" and "answer"
fields and its "conversations" / "messages" turns are audited as one text.
`

const dataGenVideoUsage = `Usage: reel data gen-video --n N --out DIR [flags]

Writes N synthetic videos of moving shapes (the default video config: 1-4
objects that move, turn, bounce, appear and leave over a plain, gradient or
noisy background) as DIR/videos/000000.mp4 ... and their captions as
DIR/captions.jsonl, one {"video": ..., "caption": ...} object per line.
Needs the ffmpeg program. The same flags always give the same videos.
`

// dataCommands are the subcommands of `reel data`.
var dataCommands = map[string]func(args []string) error{
	"audit": cmdDataAudit, "gen-video": cmdDataGenVideo, "gen-sim": cmdDataGenSim,
}

func cmdData(args []string) error {
	return dispatch("data", dataCommands, args)
}

func cmdDataAudit(args []string) error {
	fs := newFlags("data audit")
	asJSON := fs.Bool("json", false, "print one JSON object instead of a table")
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, dataAuditUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{2, fmt.Errorf("data audit: expected one JSONL file, got %d arguments", fs.NArg())}
	}
	path := fs.Arg(0)
	r, err := data.AuditJSONL(path)
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := json.Marshal(struct {
			File string `json:"file"`
			data.AuditReport
		}{path, r})
		if err != nil {
			return err
		}
		_, err = fmt.Printf("%s\n", b)
		return err
	}
	fmt.Printf("%s: %d texts\n", path, r.Texts)
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CATEGORY\tTEXTS\tFRACTION\tTOP WORDS")
	for _, c := range r.Categories {
		top := make([]string, len(c.Top))
		for i, wc := range c.Top {
			top[i] = fmt.Sprintf("%s (%d)", wc.Word, wc.Count)
		}
		if len(top) == 0 {
			top = []string{"-"}
		}
		fmt.Fprintf(w, "%s\t%d\t%.1f%%\t%s\n", c.Name, c.Texts, 100*c.Fraction, strings.Join(top, ", "))
	}
	return w.Flush()
}

func cmdDataGenVideo(args []string) error {
	fs := newFlags("data gen-video")
	n := fs.Int("n", 0, "number of videos (required)")
	out := fs.String("out", "", "output directory (required)")
	frames := fs.Int("frames", 8, "frames per video")
	size := fs.Int("size", 32, "frame side in pixels")
	seed := fs.Uint64("seed", 1, "random seed (video i is drawn from data.VideoSeed(seed, i))")
	fps := fs.Float64("fps", 8, "frames per second of the mp4 files")
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, dataGenVideoUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	usageErr := func(format string, a ...any) error {
		return &exitError{2, fmt.Errorf("data gen-video: "+format, a...)}
	}
	switch {
	case fs.NArg() != 0:
		return usageErr("unexpected argument %q", fs.Arg(0))
	case *n < 1:
		return usageErr("--n must be a positive number of videos, got %d", *n)
	case *out == "":
		return usageErr("--out DIR is required")
	case !(*fps > 0) || math.IsInf(*fps, 0):
		return usageErr("--fps must be positive, got %g", *fps)
	}
	cfg := data.DefaultVideoConfig()
	cfg.Frames, cfg.Size = *frames, *size
	g, err := data.NewVideoGenerator(cfg)
	if err != nil {
		return usageErr("%v", err)
	}
	start := time.Now()
	if err := data.WriteSyntheticDataset(*out, g, *n, *seed, *fps); err != nil {
		return fmt.Errorf("data gen-video: %v", err)
	}
	fmt.Printf("wrote %d videos (%d frames of %dx%d at %g fps) to %s and their captions to %s in %.1fs\n",
		*n, *frames, *size, *size, *fps, filepath.Join(*out, "videos"), filepath.Join(*out, "captions.jsonl"),
		time.Since(start).Seconds())
	return nil
}
