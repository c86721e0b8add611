package tasks

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/reelml/reel/recipes"
)

// OpenRewardModel dispatches on what the directory holds and names what it expected otherwise.
func TestOpenRewardModelDispatch(t *testing.T) {
	b := goBackend(t)
	runWith := func(recipe string) string {
		r, err := recipes.Load(recipe, nil)
		require.NoError(t, err)
		y, err := yaml.Marshal(r)
		require.NoError(t, err)
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "recipe.yaml"), y, 0o644))
		return dir
	}
	_, err := OpenRewardModel(b, runWith("stts-videoqa-tiny"))
	require.ErrorContains(t, err, "no True/False answer")
	_, err = OpenRewardModel(b, runWith("molmobot-tiny"))
	require.ErrorContains(t, err, "a vla run is not a reward model")
	_, err = OpenRewardModel(b, runWith("exevrm-tiny")) // a run without checkpoints
	require.Error(t, err)
	_, err = OpenRewardModel(b, filepath.Join(t.TempDir(), "missing"))
	require.ErrorContains(t, err, "missing")
	_, err = OpenRewardModel(b, t.TempDir())
	require.ErrorContains(t, err, "expected a reel run")
}
