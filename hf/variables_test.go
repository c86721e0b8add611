package hf

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/backends"
)

// Variables builds at most 3 layers per tower and repeats them: for every fixture architecture,
// with 5 text and 4 vision layers, the list must equal the one a full build gives, in order.
func TestVariablesRepeatLayers(t *testing.T) {
	b, _, err := backends.Select("go")
	require.NoError(t, err)
	dirs, err := filepath.Glob(filepath.Join("testdata", "*", "config.json"))
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	for _, p := range dirs {
		dir := filepath.Dir(p)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			cfg, err := ReadConfig(dir)
			require.NoError(t, err)
			if t := cfg.Text(); t != nil {
				t.Layers = 5
				for len(t.LayerTypes) < 5 && len(t.LayerTypes) > 0 {
					t.LayerTypes = append(t.LayerTypes, t.LayerTypes[len(t.LayerTypes)-1])
				}
			}
			if cfg.Contrastive != nil {
				cfg.Contrastive.Text.Layers = 5
			}
			if v := cfg.VisionTower(); v != nil {
				v.Layers = 4
			}
			full, err := buildVariables(b, cfg)
			require.NoError(t, err)
			got, err := Variables(b, cfg)
			require.NoError(t, err)
			require.Equal(t, full, got)
			// And not by falling back to the full build: the repetition itself gives it.
			two, err := buildVariables(b, withLayers(cfg, 2))
			require.NoError(t, err)
			require.Less(t, len(two), len(full))
			rep, ok := repeatLayers(two, cfg)
			require.True(t, ok)
			require.Equal(t, full, rep)
		})
	}
}
