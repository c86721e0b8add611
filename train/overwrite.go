package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/reelml/reel/checkpoints"
)

// RunOutputs are the entries of a run directory that a run writes, and that Options.Overwrite
// replaces.
var RunOutputs = []string{"checkpoints", MetricsFile, "plots", TensorBoardDir, "recipe.yaml"}

// overwriteAside moves the outputs of an earlier run in dir out of the way (into a hidden
// directory inside dir, by renames: nothing is copied or deleted) so that a run with
// Options.Overwrite starts from an empty run directory while the old outputs stay on disk until
// the new run has succeeded. finish(failed) settles them: after a success the old outputs are
// deleted; after a failure that saved no new checkpoint the new partial outputs are removed and
// the old ones put back, byte for byte; after a failure that did save a checkpoint (an
// interrupted run, kept so that --resume can continue it) the old outputs stay in the hidden
// directory, which the returned note names.
func overwriteAside(dir string) (finish func(failed bool) (note string, err error), err error) {
	var present []string
	for _, name := range RunOutputs {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			present = append(present, name)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("--out %s: %w", dir, err)
		}
	}
	if len(present) == 0 {
		return func(bool) (string, error) { return "", nil }, nil
	}
	aside, err := os.MkdirTemp(dir, ".overwritten-")
	if err != nil {
		return nil, fmt.Errorf("--out %s: %w", dir, err)
	}
	moved := []string{}
	restore := func() error {
		var first error
		for _, name := range moved {
			_ = os.RemoveAll(filepath.Join(dir, name)) // the new run's partial output
			if err := os.Rename(filepath.Join(aside, name), filepath.Join(dir, name)); err != nil && first == nil {
				first = err
			}
		}
		if first == nil {
			first = os.Remove(aside)
		}
		return first
	}
	for _, name := range present {
		if err := os.Rename(filepath.Join(dir, name), filepath.Join(aside, name)); err != nil {
			if rerr := restore(); rerr != nil {
				return nil, fmt.Errorf("--out %s: %w (the earlier outputs are in %s)", dir, err, aside)
			}
			return nil, fmt.Errorf("--out %s: %w", dir, err)
		}
		moved = append(moved, name)
	}
	return func(failed bool) (string, error) {
		if !failed {
			return "", os.RemoveAll(aside)
		}
		if dirs, _ := checkpoints.List(filepath.Join(dir, "checkpoints")); len(dirs) > 0 {
			return fmt.Sprintf("the run saved checkpoints; the outputs it replaces are kept in %s", aside), nil
		}
		if err := restore(); err != nil {
			return "", fmt.Errorf("--out %s: restoring the earlier outputs: %w (they are in %s)", dir, err, aside)
		}
		return "", nil
	}, nil
}
