package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/tasks"
	"github.com/reelml/reel/train"
)

// rdRow is one configuration of `reel bench rdvla`.
type rdRow struct {
	Depth    int     `json:"depth"`    // core iterations per training step
	BPTT     int     `json:"bptt"`     // iterations backpropagated through
	StepS    float64 `json:"step_s"`   // seconds per training step
	PeakMiB  float64 `json:"peak_mib"` // peak Go heap during the timed steps, above the idle heap
	Compiled string  `json:"unrolled"` // gradient-stopped + backpropagated unrolled slots of the graph
}

// benchRDVLA measures the training step time and peak memory of the recurrent-depth policy at
// several depths, with truncated BPTT and (for comparison) backpropagating through every
// iteration, and the inference latency per depth.
func benchRDVLA(args []string) error {
	fs := newFlags("bench rdvla")
	recipe := fs.String("recipe", "rdvla-tiny", "rdvla recipe whose model is measured")
	depthsFlag := fs.String("depths", "4,32,64", "comma-separated training depths")
	steps := fs.Int("steps", 3, "timed training steps per depth (after 1 warm-up step)")
	batch := fs.Int("batch", 16, "batch size")
	full := fs.Bool("full-bptt", true, "also measure backpropagation through every iteration (bptt = depth)")
	backend := fs.String("backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: reel bench rdvla [flags]\n\nTraining-step time and peak heap memory of the RD-VLA policy per recurrent depth, with truncated\nBPTT (the recipe's bptt) and with backpropagation through all iterations; memory is the Go\nheap (the CPU backend's buffers), measured above the idle heap.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	var depths []int
	for _, f := range strings.Split(*depthsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 64 {
			return &exitError{2, fmt.Errorf("bench rdvla: --depths: %q is not a depth in [1, 64]", f)}
		}
		depths = append(depths, n)
	}
	if *steps < 1 || *batch < 1 {
		return &exitError{2, fmt.Errorf("bench rdvla: --steps and --batch must be ≥ 1")}
	}
	b, info, err := backends.Select(*backend)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "reel: bench rdvla on %s, recipe %s, batch %d, %d timed steps each\n", info, *recipe, *batch, *steps)
	var rows []rdRow
	measure := func(depth, bptt int) error {
		r, err := recipes.Load(*recipe, []string{"train.batch_size=" + strconv.Itoa(*batch), "train.grad_accum=1",
			"policy.bptt=" + strconv.Itoa(bptt)})
		if err != nil {
			return err
		}
		if r.Model.Arch != "rdvla" {
			return fmt.Errorf("bench rdvla: --recipe %s has model.arch %s, want rdvla", *recipe, r.Model.Arch)
		}
		task, err := tasks.NewVLA(r)
		if err != nil {
			return err
		}
		net, ok := task.Network().(models.Recurrent)
		if !ok {
			return fmt.Errorf("bench rdvla: --recipe %s: %T is not a recurrent-depth policy", *recipe, task.Network())
		}
		var st train.StepStats
		peak, err := train.HeapPeak(func() (err error) {
			st, err = train.StepTime(task.WithNetwork(net.WithFixedDepth(depth)), r, b, 1, *steps)
			return err
		})
		if err != nil {
			return fmt.Errorf("bench rdvla (depth %d): %v", depth, err)
		}
		sec := st.StepS
		ng, g := net.DepthSlots(depth)
		row := rdRow{Depth: depth, BPTT: bptt, StepS: sec, PeakMiB: float64(peak) / (1 << 20),
			Compiled: fmt.Sprintf("%d+%d", ng, g)}
		fmt.Fprintf(os.Stderr, "reel: depth %d, bptt %d: %.3fs per step, peak heap +%.0f MiB\n", depth, bptt, sec, row.PeakMiB)
		rows = append(rows, row)
		return nil
	}
	r0, err := recipes.Load(*recipe, nil)
	if err != nil {
		return err
	}
	for _, d := range depths {
		if err := measure(d, r0.Policy.BPTT); err != nil {
			return err
		}
	}
	if *full {
		for _, d := range depths {
			if d > r0.Policy.BPTT {
				if err := measure(d, d); err != nil {
					return err
				}
			}
		}
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	fmt.Printf("%-6s %-6s %-10s %-12s %s\n", "depth", "bptt", "unrolled", "step s", "peak heap MiB")
	for _, r := range rows {
		fmt.Printf("%-6d %-6d %-10s %-12.3f %.0f\n", r.Depth, r.BPTT, r.Compiled, r.StepS, r.PeakMiB)
	}
	return nil
}
