package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/reelml/reel/bench"
	"github.com/reelml/reel/lerobot"
)

const benchDataUsage = `Usage: reel bench data [--dir DIR] [flags]

Measures loading a LeRobot video dataset for training. Generates (in --dir, or a temporary
directory) a v3.0 dataset of --episodes episodes of --frames frames from --cameras cameras of
--width×--height, AV1-encoded as LeRobot encodes; a --dir that already holds a dataset is used
as it is. Then loads --batches micro-batches of --batch examples fitted to --size×--size with
the windowed sampler and the prefetching loader: back to back (examples/s, decoded frames/s),
and with a --step of busy computation after each batch standing in for a training step, with
and without prefetching (the share of time spent waiting for data). Also measures ffmpeg's own
decoding of the same files on the same cores (plain, and fitted to --size as the loader fits
them) and prints the loader's rate as a share of it, and the peak resident memory of the
loading.
`

func benchData(args []string) error {
	fs := newFlags("bench data")
	dir := fs.String("dir", "", "dataset directory (default: a temporary one, removed afterwards)")
	episodes := fs.Int("episodes", 100, "episodes of the generated dataset")
	frames := fs.Int("frames", 50, "frames per episode")
	cameras := fs.Int("cameras", 1, "cameras")
	width := fs.Int("width", 640, "camera width")
	height := fs.Int("height", 480, "camera height")
	fps := fs.Int("fps", 10, "frames per second")
	batch := fs.Int("batch", 32, "examples per micro-batch")
	size := fs.Int("size", 224, "side of the policy's square input images")
	mode := fs.String("resize", "pad", "resize mode: pad, crop or stretch")
	batches := fs.Int("batches", 200, "micro-batches per run")
	step := fs.Duration("step", 100*time.Millisecond, "busy computation after each micro-batch (a training step)")
	window := fs.Int("window", 8, "episodes a micro-batch draws from")
	workers := fs.Int("workers", 2, "background decoders")
	cacheMB := fs.Int64("cache-mb", lerobot.DefaultFrameCacheBytes>>20, "decoded-frame cache bound (MiB)")
	asJSON := fs.Bool("json", false, "print JSON instead of a summary")
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, benchDataUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return &exitError{2, fmt.Errorf("bench data: unexpected argument %q", fs.Arg(0))}
	}
	for _, v := range []struct {
		name string
		n    int
	}{{"episodes", *episodes}, {"frames", *frames}, {"cameras", *cameras}, {"width", *width}, {"height", *height},
		{"fps", *fps}, {"batch", *batch}, {"size", *size}, {"batches", *batches}, {"window", *window}, {"workers", *workers}} {
		if v.n < 1 {
			return &exitError{2, fmt.Errorf("bench data: --%s must be positive, got %d", v.name, v.n)}
		}
	}
	if *dir == "" {
		tmp, err := os.MkdirTemp("", "reel-bench-data-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*dir = filepath.Join(tmp, "ds")
	}
	cfg := bench.LeRobotLoaderConfig{Dir: *dir, Episodes: *episodes, Frames: *frames, FPS: *fps, Cameras: *cameras, Width: *width,
		Height: *height, Batch: *batch, Size: *size, Batches: *batches, Mode: *mode, StepTime: *step, Window: *window,
		Workers: *workers, CacheBytes: *cacheMB << 20, Seed: 1}
	res, err := bench.RunLeRobotLoader(cfg, func(format string, a ...any) { fmt.Fprintf(os.Stderr, "reel: bench data: "+format+"\n", a...) })
	if err != nil {
		return fmt.Errorf("bench data: %v", err)
	}
	if *asJSON {
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		fmt.Printf("%s\n", b)
		return nil
	}
	c := res.Config
	fmt.Printf("dataset: %d episodes × %d frames, %d camera(s) %d×%d, %.1f MB on disk", c.Episodes, c.Frames, c.Cameras, c.Width, c.Height, float64(res.DatasetBytes)/1e6)
	if res.Generated {
		fmt.Printf(" (generated in %.1fs)", res.GenerateSeconds)
	}
	fmt.Printf("\nloading %d micro-batches of %d at %d×%d (%s), window %d episodes, %d decoders, cache %d MiB\n",
		c.Batches, c.Batch, c.Size, c.Size, c.Mode, c.Window, c.Workers, c.CacheBytes>>20)
	fmt.Printf("throughput: %.0f examples/s; %.0f frames decoded+resized/s while decoding (%d frames decoded in %d ffmpeg runs, %.1f MB read out of ffmpeg)\n",
		res.ExamplesPerS, res.DecodedPerS, res.Decoded, res.DecodeRuns, float64(res.DecodedBytes)/1e6)
	fmt.Printf("ffmpeg alone on the same files: %.0f frames/s decoding (%.0f per CPU-second), %.0f frames/s fitted to %d×%d (%s)\n",
		res.FFmpegPerS, res.FFmpegCPUPerS, res.FFmpegFitPerS, c.Size, c.Size, res.FFmpegFit)
	fmt.Printf("loader as a share of ffmpeg: %.0f%% of its fitted rate, %.0f%% of its plain decoding rate\n", 100*res.ShareOfFFFit, 100*res.ShareOfFFmpeg)
	fmt.Printf("in CPU time: the loader %.0f frames per CPU-second (its ffmpeg runs and itself, %.0f%% of it in reel), ffmpeg fitting %.0f: %.0f%%\n",
		res.LoaderPerCPUS, 100*res.LoaderSelfCPUShare, res.FFmpegFitPerCPUS, 100*res.ShareOfFFFitCPU)
	fmt.Printf("with a %v step per batch: waiting for data %.1f%% of the time with prefetching (%.3fs per batch), %.1f%% without\n",
		c.StepTime, 100*res.WaitShare, res.StepSeconds, 100*res.WaitShareNoPrefetch)
	fmt.Printf("peak RSS: %.0f MiB (%s)\n", float64(res.PeakRSS)/(1<<20), res.PeakRSSNote)
	return nil
}
