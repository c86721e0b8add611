package sim

import (
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/reelml/reel/lerobot"
	"github.com/stretchr/testify/require"
)

type memWriter struct {
	mu  sync.Mutex
	eps map[int]lerobot.Episode
}

func (m *memWriter) Write(ep lerobot.Episode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.eps[ep.Index] = ep
	return nil
}

func genReward(t *testing.T, n int, workers int, eval bool) []lerobot.Episode {
	t.Helper()
	m := &memWriter{eps: map[int]lerobot.Episode{}}
	_, err := GenerateReward(DefaultConfig(), RewardOptions{GenerateOptions: GenerateOptions{Episodes: n, Seed: 5, Workers: workers}, Eval: eval}, m)
	require.NoError(t, err)
	out := make([]lerobot.Episode, n)
	for i := range n {
		out[i] = m.eps[i]
	}
	return out
}

// replay re-runs an episode's recorded actions in a fresh world of its seed and returns the
// world after each number of actions 0..T-1 (the state each frame shows).
func replay(t *testing.T, ep lerobot.Episode) []*World {
	t.Helper()
	w, err := NewWorld(DefaultConfig(), ep.Seed)
	require.NoError(t, err)
	var out []*World
	for _, a := range ep.Action {
		out = append(out, w.clone())
		w.Step(a)
	}
	return out
}

// holds is an independent reading of an instruction against a world: whether it is
// accomplished, from the instruction's words and the objects' colours, shapes and positions.
func holds(w *World, instr string) bool {
	f := strings.Fields(instr)
	color, shape := f[2], f[3]
	if f[0] == "pick" { // pick up the|a COLOR SHAPE
		color, shape = f[3], f[4]
	}
	for i, o := range w.objs {
		if o.Color != color || o.Shape != shape {
			continue
		}
		switch f[0] {
		case "pick":
			if w.held == i {
				return true
			}
		case "put":
			for _, b := range w.bowls {
				if b.Color == f[6] && w.held != i && math.Hypot(o.X-b.X, o.Y-b.Y) < b.R {
					return true
				}
			}
		case "push":
			d := map[string]float64{"left": o.X, "right": 1 - o.X, "top": o.Y, "bottom": 1 - o.Y}[f[6]]
			if d < EdgeZone {
				return true
			}
		}
	}
	return false
}

// TestRewardEpisodesGroundTruth checks the labels of generated reward episodes against a
// replay of their actions: success where the simulator says so, the decision step where
// success first holds (the last frame), failed episodes perturbed at their decision step,
// adversarial episodes with the frames of their expert episode and an instruction that no
// frame accomplishes (read independently from its words).
func TestRewardEpisodesGroundTruth(t *testing.T) {
	t.Parallel()
	eps := genReward(t, 150, 2, false)
	groups := map[string]int{}
	modes := map[string]bool{}
	expertOK := 0
	for g, ep := range eps {
		require.Equal(t, RewardKindOf(g), KindGroup(ep.Kind), "episode %d", g)
		groups[KindGroup(ep.Kind)]++
		modes[ep.Kind] = true
		T := ep.Len()
		require.Len(t, ep.Frames[0], T*32*32*3)
		states := replay(t, ep)
		require.GreaterOrEqual(t, ep.DecisionStep, 0)
		require.Less(t, ep.DecisionStep, T)
		if KindGroup(ep.Kind) == KindAdversarial {
			src := eps[g-2]
			require.Equal(t, src.Frames, ep.Frames, "episode %d replays episode %d's video", g, g-2)
			require.NotEqual(t, src.Task, ep.Task)
			require.False(t, ep.Success)
			for s, w := range states {
				require.False(t, holds(w, ep.Task), "episode %d %q: frame %d accomplishes the rewrite %q", g, ep.Kind, s, ep.Task)
			}
			continue
		}
		require.Equal(t, holds(states[T-1], ep.Task), ep.Success,
			"episode %d: success label vs the replayed last frame", g)
		require.Equal(t, states[T-1].Success(), ep.Success)
		for s := range T - 1 {
			require.False(t, states[s].Success(), "episode %d succeeds at frame %d before its last", g, s)
		}
		if ep.Success {
			require.Equal(t, T-1, ep.DecisionStep)
			if ep.Kind == KindExpert {
				expertOK++
			}
		} else if KindGroup(ep.Kind) == KindFailed {
			require.Less(t, ep.DecisionStep, T-1)
		}
	}
	require.Equal(t, map[string]int{KindExpert: 50, KindFailed: 50, KindAdversarial: 50}, groups)
	require.GreaterOrEqual(t, expertOK, 45, "the noisy expert solves almost every scene")
	failedOK := 0
	for g := 1; g < len(eps); g += 3 {
		if eps[g].Success {
			failedOK++
		}
	}
	require.LessOrEqual(t, failedOK, 30, "most perturbed episodes fail")
	require.GreaterOrEqual(t, len(modes), 6, "kinds seen: %v", modes)
}

// TestRewardEpisodesDeterministic: the episodes depend on the seed and index only (not on
// the number of workers), and the held-out worlds differ from the training ones.
func TestRewardEpisodesDeterministic(t *testing.T) {
	t.Parallel()
	a, b := genReward(t, 9, 1, false), genReward(t, 9, 3, false)
	require.Equal(t, a, b)
	ev := genReward(t, 9, 2, true)
	for i := range a {
		require.NotEqual(t, a[i].Seed, ev[i].Seed)
	}
}
