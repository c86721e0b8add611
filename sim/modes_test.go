package sim

import (
	"github.com/reelml/reel/policy"

	"testing"

	"github.com/stretchr/testify/require"
)

// twinPolicy knows the worlds Modes builds (scene i is EvalSeed(seed, i)) and heads for the
// first twin, the second, alternately, or for their midpoint.
type twinPolicy struct {
	cfg   Config
	seed  uint64
	scene int
	mode  string // "alternate", "first", "average"
}

func (p *twinPolicy) Act(obs []policy.Observation) ([][][]float32, error) {
	cfg := p.cfg
	cfg.Families = []string{"pick_any"}
	w, err := NewWorld(cfg, EvalSeed(p.seed, int64(p.scene)))
	if err != nil {
		return nil, err
	}
	p.scene++
	tw := w.FocusPoints()
	out := make([][][]float32, len(obs))
	for i := range obs {
		tx, ty := tw[0][0], tw[0][1]
		switch {
		case p.mode == "average":
			tx, ty = (tw[0][0]+tw[1][0])/2, (tw[0][1]+tw[1][1])/2
		case p.mode == "alternate" && i%2 == 1:
			tx, ty = tw[1][0], tw[1][1]
		}
		out[i] = [][]float32{{float32(tx - w.gx), float32(ty - w.gy), -1}}
	}
	return out, nil
}

func TestModes(t *testing.T) {
	cfg := DefaultConfig()
	ec := EvalConfig{Episodes: 1, Seed: 7, Horizon: 1, Execute: 1}
	for _, tc := range []struct {
		mode      string
		hit, both float64
	}{{"alternate", 1, 1}, {"first", 1, 0}, {"average", 0, 0}} {
		hit, both, err := Modes(cfg, ec, &twinPolicy{cfg: cfg, seed: 7, mode: tc.mode}, 10, 4)
		require.NoError(t, err)
		require.Equal(t, tc.hit, hit, tc.mode)
		require.Equal(t, tc.both, both, tc.mode)
	}
}
