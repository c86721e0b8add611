package bench

import (
	"fmt"
	"github.com/reelml/reel/internal/usage"
	"io"
	"strconv"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/tasks"
	"github.com/reelml/reel/train"
)

// RDVLARow is one configuration of `reel bench rdvla`.
type RDVLARow struct {
	Depth    int     `json:"depth"`    // core iterations per training step
	BPTT     int     `json:"bptt"`     // iterations backpropagated through
	StepS    float64 `json:"step_s"`   // seconds per training step
	PeakMiB  float64 `json:"peak_mib"` // peak Go heap during the timed steps, above the idle heap
	Compiled string  `json:"unrolled"` // gradient-stopped + backpropagated unrolled slots of the graph
}

// RDVLAConfig is `reel bench rdvla`: the training step time and peak memory of the
// recurrent-depth policy at several depths, with truncated BPTT and (FullBPTT, for comparison)
// backpropagating through every iteration.
type RDVLAConfig struct {
	Recipe   string
	Depths   []int
	Steps    int // timed steps per depth
	Batch    int
	FullBPTT bool
	Backend  string
	Log      Logger
}

// RunRDVLA runs the RD-VLA benchmark.
func RunRDVLA(c RDVLAConfig) ([]RDVLARow, error) {
	if c.Steps < 1 || c.Batch < 1 {
		return nil, usage.Errorf("bench rdvla: --steps and --batch must be ≥ 1")
	}
	b, info, err := backends.Select(c.Backend)
	if err != nil {
		return nil, err
	}
	c.Log.printf("bench rdvla on %s, recipe %s, batch %d, %d timed steps each", info, c.Recipe, c.Batch, c.Steps)
	var rows []RDVLARow
	measure := func(depth, bptt int) error {
		r, err := recipes.Load(c.Recipe, []string{"train.batch_size=" + strconv.Itoa(c.Batch), "train.grad_accum=1",
			"policy.bptt=" + strconv.Itoa(bptt)})
		if err != nil {
			return err
		}
		if r.Model.Arch != "rdvla" {
			return fmt.Errorf("bench rdvla: --recipe %s has model.arch %s, want rdvla", c.Recipe, r.Model.Arch)
		}
		task, err := tasks.NewVLA(r)
		if err != nil {
			return err
		}
		net, ok := task.Network().(models.Recurrent)
		if !ok {
			return fmt.Errorf("bench rdvla: --recipe %s: %T is not a recurrent-depth policy", c.Recipe, task.Network())
		}
		var st train.StepStats
		peak, err := HeapPeak(func() (err error) {
			st, err = train.StepTime(task.WithNetwork(net.WithFixedDepth(depth)), r, b, 1, c.Steps)
			return err
		})
		if err != nil {
			return fmt.Errorf("bench rdvla (depth %d): %w", depth, err)
		}
		ng, g := net.DepthSlots(depth)
		row := RDVLARow{Depth: depth, BPTT: bptt, StepS: st.StepS, PeakMiB: float64(peak) / (1 << 20), Compiled: fmt.Sprintf("%d+%d", ng, g)}
		c.Log.printf("depth %d, bptt %d: %.3fs per step, peak heap +%.0f MiB", depth, bptt, st.StepS, row.PeakMiB)
		rows = append(rows, row)
		return nil
	}
	r0, err := recipes.Load(c.Recipe, nil)
	if err != nil {
		return nil, err
	}
	for _, d := range c.Depths {
		if err := measure(d, r0.Policy.BPTT); err != nil {
			return nil, err
		}
	}
	if c.FullBPTT {
		for _, d := range c.Depths {
			if d > r0.Policy.BPTT {
				if err := measure(d, d); err != nil {
					return nil, err
				}
			}
		}
	}
	return rows, nil
}

// WriteRDVLATable prints the rows as `reel bench rdvla` does.
func WriteRDVLATable(w io.Writer, rows []RDVLARow) {
	fmt.Fprintf(w, "%-6s %-6s %-10s %-12s %s\n", "depth", "bptt", "unrolled", "step s", "peak heap MiB")
	for _, r := range rows {
		fmt.Fprintf(w, "%-6d %-6d %-10s %-12.3f %.0f\n", r.Depth, r.BPTT, r.Compiled, r.StepS, r.PeakMiB)
	}
}
