package checkpoints

import "path/filepath"

// RunDir returns RUN for RUN/checkpoints/step-N (or the directory itself otherwise): where a
// run's plots, rollouts, results and analyses go.
func RunDir(ckpt string) string {
	parent := filepath.Dir(ckpt)
	if filepath.Base(parent) == "checkpoints" {
		return filepath.Dir(parent)
	}
	return ckpt
}
