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

// STTSRow is one frame count of `reel bench stts`.
type STTSRow struct {
	Frames                int     `json:"frames"`
	Tokens                int     `json:"tokens"`                 // group tokens per clip
	KeptTokens            int     `json:"kept_tokens"`            // after STTS pruning
	ScoreAfter            int     `json:"score_after"`            // per-frame blocks before scoring
	UnprunedS             float64 `json:"unpruned_s"`             // seconds per training step (best round)
	STTSS                 float64 `json:"stts_s"`                 // seconds per training step (best round)
	Spread                string  `json:"spread"`                 // worst rounds: unpruned / stts / spatiotemporal
	Speedup               float64 `json:"speedup"`                // unpruned / stts
	SpatiotemporalKept    float64 `json:"spatiotemporal_kept"`    // mean tokens per clip kept by the spatiotemporal rules (packed)
	SpatiotemporalS       float64 `json:"spatiotemporal_s"`       // seconds per training step
	SpatiotemporalSpeedup float64 `json:"spatiotemporal_speedup"` // unpruned / spatiotemporal
}

// STTSConfig is `reel bench stts`: the training step of a videoqa recipe's video VLM unpruned,
// STTS-pruned and spatiotemporal-pruned (packed), per frame count.
type STTSConfig struct {
	Recipe     string
	Sets       []string // recipe overrides
	Frames     []int
	Steps      int     // timed steps per configuration and round
	Rounds     int     // rounds alternating the three methods
	ScoreAfter int     // per-frame blocks before scoring; -1: the paper's depth scaled to the model
	Batch      int     // batch size
	Keep       float64 // STTS keep ratio
	Backend    string
	Log        Logger
}

// RunSTTS runs the STTS benchmark.
func RunSTTS(c STTSConfig) ([]STTSRow, error) {
	if c.Steps < 1 || c.Batch < 1 || c.Rounds < 1 {
		return nil, usage.Errorf("bench stts: --steps, --rounds and --batch must be ≥ 1")
	}
	b, info, err := backends.Select(c.Backend)
	if err != nil {
		return nil, err
	}
	c.Log.printf("bench stts on %s, recipe %s, batch %d, %d timed steps each", info, c.Recipe, c.Batch, c.Steps)
	var rows []STTSRow
	methods := []string{"none", "stts", "spatiotemporal"}
	for _, f := range c.Frames {
		row := STTSRow{Frames: f}
		timers := make([]*train.StepTimer, len(methods))
		vqa := make([]*tasks.VideoQA, len(methods))
		for m, method := range methods {
			r, err := recipes.Load(c.Recipe, append(append([]string{}, c.Sets...),
				"model.frames="+strconv.Itoa(f), "pruning.method="+method, "pruning.keep="+strconv.FormatFloat(c.Keep, 'g', -1, 64),
				"train.batch_size="+strconv.Itoa(c.Batch), "train.grad_accum=1", "data.motion_frames="+strconv.Itoa(min(3, f-1)),
			))
			if err != nil {
				return nil, err
			}
			if r.Task != "videoqa" {
				return nil, fmt.Errorf("bench stts: --recipe %s has task %s, want videoqa", c.Recipe, r.Task)
			}
			if c.ScoreAfter >= 0 {
				r.Model.ScoreAfter = c.ScoreAfter
			} else {
				r.Model.ScoreAfter = models.STTSPaperScoreAfter(r.Model.VisionLayers)
			}
			if r.Model.ScoreAfter >= r.Model.VisionLayers {
				return nil, usage.Errorf("bench stts: --score-after %d must be less than model.vision_layers (%d)", r.Model.ScoreAfter, r.Model.VisionLayers)
			}
			row.ScoreAfter = r.Model.ScoreAfter
			if vqa[m], err = tasks.NewVideoQA(r); err != nil {
				return nil, err
			}
			if timers[m], err = train.NewStepTimer(vqa[m], r, b, 1); err != nil {
				return nil, fmt.Errorf("bench stts (%d frames, %s): %w", f, method, err)
			}
		}
		worst := make([]float64, len(methods))
		for range c.Rounds { // alternate the methods, so that all see the same machine state
			for m := range methods {
				sec, err := timers[m].Time(c.Steps)
				if err != nil {
					return nil, fmt.Errorf("bench stts (%d frames, %s): %w", f, methods[m], err)
				}
				worst[m] = max(worst[m], sec)
			}
		}
		for m, method := range methods {
			sec := timers[m].Stats().StepS
			sel := vqa[m].Selector()
			switch method {
			case "none":
				row.UnprunedS, row.Tokens = sec, sel.Kept()
			case "stts":
				row.STTSS, row.KeptTokens = sec, sel.Kept()
			case "spatiotemporal":
				batch, err := vqa[m].MicroBatch(0) // the batch the timer runs
				if err != nil {
					return nil, err
				}
				row.SpatiotemporalS, row.SpatiotemporalKept = sec, vqa[m].KeptTokens(batch)
			}
		}
		row.Spread = fmt.Sprintf("%.3f / %.3f / %.3f", worst[0], worst[1], worst[2])
		row.Speedup, row.SpatiotemporalSpeedup = row.UnprunedS/row.STTSS, row.UnprunedS/row.SpatiotemporalS
		c.Log.printf("%d frames (scoring after block %d): unpruned %.3fs, stts %.3fs (%.2f×), spatiotemporal %.3fs (%.2f×) per step (best of %d; worst %s)",
			f, row.ScoreAfter, row.UnprunedS, row.STTSS, row.Speedup, row.SpatiotemporalS, row.SpatiotemporalSpeedup, c.Rounds, row.Spread)
		rows = append(rows, row)
	}
	return rows, nil
}

// WriteSTTSTable prints the rows as `reel bench stts` does.
func WriteSTTSTable(w io.Writer, rows []STTSRow) {
	fmt.Fprintf(w, "%-7s %-14s %-11s %-9s %-8s %-13s %-10s %-8s %s\n", "frames", "tokens→kept", "unpruned s", "stts s", "speedup",
		"spatiotemporal kept", "spatiotemporal s", "speedup", "worst rounds (unpruned / stts / spatiotemporal)")
	for _, r := range rows {
		fmt.Fprintf(w, "%-7d %-14s %-11.3f %-9.3f %-8s %-13.1f %-10.3f %-8s %s\n", r.Frames, fmt.Sprintf("%d→%d", r.Tokens, r.KeptTokens),
			r.UnprunedS, r.STTSS, fmt.Sprintf("%.2f×", r.Speedup), r.SpatiotemporalKept, r.SpatiotemporalS, fmt.Sprintf("%.2f×", r.SpatiotemporalSpeedup), r.Spread)
	}
}
