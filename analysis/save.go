package analysis

import (
	"fmt"
	"path/filepath"

	"github.com/reelml/reel/checkpoints"
)

// Summary is the result in one line (`reel analyze patching` prints it).
func (r *PatchingResult) Summary() string {
	return fmt.Sprintf("clean LD %.3f, corrupted LD %.3f (clean acc %.2f); top cell %s #%d restores %.2f",
		r.CleanLD, r.CorruptLD, r.CleanAccuracy, r.Top[0].Site, r.Top[0].Position, r.Top[0].Restoration)
}

// Summary is the result in one line (`reel analyze heads` prints it).
func (r *HeadsResult) Summary() string {
	return fmt.Sprintf("counting accuracy %.3f; top-%d heads %v ablated → %.3f; %d random → %.3f (mean of %d)",
		r.Accuracy, len(r.TopK.Heads), r.TopK.Heads, r.TopK.Accuracy, len(r.TopK.Heads), r.RandomMean, len(r.Random))
}

// CheckFlags checks c as 'reel analyze patching' takes it (errors name its flags).
func (c PatchingConfig) CheckFlags() error {
	if c.Pairs < 1 {
		return fmt.Errorf("--pairs must be ≥ 1, got %d", c.Pairs)
	}
	return nil
}

// CheckFlags checks c as 'reel analyze heads' takes it (errors name its flags).
func (c HeadsConfig) CheckFlags() error {
	if c.Examples < 1 || c.RandomDraws < 1 || c.TopK < 0 {
		return fmt.Errorf("--examples and --random-draws must be ≥ 1 and --top-k ≥ 0")
	}
	return nil
}

// Run runs the tool a config is for: Patching for a *PatchingConfig, Heads for a *HeadsConfig.
func (s *Subject) Run(config any) (interface{ Summary() string }, error) {
	switch c := config.(type) {
	case *PatchingConfig:
		return s.Patching(*c)
	case *HeadsConfig:
		return s.Heads(*c)
	}
	return nil, fmt.Errorf("analysis: no tool for %T", config)
}

// Save writes a tool's result as DIR/NAME.json and its plot as DIR/NAME.png (NAME patching or
// heads). A plot that cannot be drawn is plotErr; the JSON is written all the same.
func Save(dir string, result any) (plotErr, err error) {
	var name string
	switch r := result.(type) {
	case *PatchingResult:
		name = "patching"
		plotErr = PlotPatching(filepath.Join(dir, name+".png"), r)
	case *HeadsResult:
		name = "heads"
		plotErr = PlotHeads(filepath.Join(dir, name+".png"), r)
	default:
		return nil, fmt.Errorf("analysis: cannot save a %T", result)
	}
	return plotErr, checkpoints.WriteJSON(filepath.Join(dir, name+".json"), result)
}
