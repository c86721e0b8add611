package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/sim"
)

// TestDataGenReward writes reward episodes from the CLI and reads their labels back: kinds in
// the i%3 pattern, adversarial episodes negative, every decision step inside its episode.
func TestDataGenReward(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a dataset")
	}
	if _, err := data.FFmpeg(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	r := reel(t, dir, "data", "gen-reward", "--episodes", "6", "--out", "rw", "--seed", "4", "--set", "data.max_steps=20")
	requireOK(t, r)
	require.Contains(t, r.stdout, "wrote 6 reward episodes")
	ds, err := data.OpenLeRobot(filepath.Join(dir, "rw"))
	require.NoError(t, err)
	require.Equal(t, 6, ds.NumEpisodes())
	for i := range 6 {
		info := ds.EpisodeInfo(i)
		require.Equal(t, sim.RewardKindOf(i), sim.KindGroup(info.Kind), "episode %d", i)
		require.NotNil(t, info.DecisionStep)
		require.NotNil(t, info.Success)
		require.GreaterOrEqual(t, *info.DecisionStep, 0)
		require.Less(t, *info.DecisionStep, info.Length)
		if strings.HasPrefix(info.Kind, sim.KindAdversarial) {
			require.False(t, *info.Success)
			require.Equal(t, ds.EpisodeInfo(i-2).Length, info.Length)
		}
	}
	msg := requireUserError(t, reel(t, dir, "data", "gen-reward", "--episodes", "0", "--out", "x"), 2)
	require.Contains(t, msg, "data gen-reward: --episodes must be a positive number")
}
