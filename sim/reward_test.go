package sim

import (
	"math"
	"slices"
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
	return genRewardCfg(t, DefaultConfig(), n, workers, eval)
}

func genRewardCfg(t *testing.T, cfg Config, n int, workers int, eval bool) []lerobot.Episode {
	t.Helper()
	m := &memWriter{eps: map[int]lerobot.Episode{}}
	_, err := GenerateReward(cfg, RewardOptions{GenerateOptions: GenerateOptions{Episodes: n, Seed: 5, Workers: workers}, Eval: eval}, m)
	require.NoError(t, err)
	out := make([]lerobot.Episode, n)
	for i := range n {
		out[i] = m.eps[i]
	}
	return out
}

// replay re-runs an episode's recorded actions in a fresh world of its seed and returns the
// world after each number of actions 0..T-1 (the state each frame shows). It steps on after
// success, as a success tail does.
func replay(t *testing.T, ep lerobot.Episode) []*World {
	t.Helper()
	w, err := NewWorld(DefaultConfig(), ep.Seed)
	require.NoError(t, err)
	var out []*World
	for _, a := range ep.Action {
		out = append(out, w.clone())
		w.advance(a)
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
	checkRewardGroundTruth(t, genReward(t, 150, 2, false), 0)
}

// TestRewardEpisodesSuccessTail: with Config.SuccessTail, a solved episode goes on after its
// decision step with the task solved in every further frame, the gripper moving (the tail is
// not a still picture), and everything up to the decision step exactly as without a tail.
func TestRewardEpisodesSuccessTail(t *testing.T) {
	t.Parallel()
	const tail = 8
	cfg := DefaultConfig()
	cfg.SuccessTail = tail
	eps := genRewardCfg(t, cfg, 150, 2, false)
	checkRewardGroundTruth(t, eps, tail)
	plain := genReward(t, 150, 2, false)
	fs := 32 * 32 * 3
	tailed, moved := 0, 0
	for g, ep := range eps {
		p := plain[g]
		require.Equal(t, p.Success, ep.Success, "episode %d", g)
		require.Equal(t, p.Task, ep.Task, "episode %d", g)
		require.Equal(t, p.DecisionStep, ep.DecisionStep, "episode %d", g)
		require.Equal(t, p.Frames[0][:(p.DecisionStep+1)*fs], ep.Frames[0][:(p.DecisionStep+1)*fs], "episode %d: frames up to the decision", g)
		if !ep.Success { // adversarial episodes replay their expert episode, tail included (checked above)
			if KindGroup(ep.Kind) != KindAdversarial {
				require.Equal(t, p.Frames, ep.Frames, "episode %d: an unsolved episode has no tail", g)
			}
			continue
		}
		require.LessOrEqual(t, ep.Len()-1-ep.DecisionStep, tail)
		if ep.Len()-1 > ep.DecisionStep {
			tailed++
			dec := ep.Frames[0][ep.DecisionStep*fs : (ep.DecisionStep+1)*fs]
			if !slices.Equal(dec, ep.Frames[0][(ep.Len()-1)*fs:]) {
				moved++
			}
		}
	}
	require.Greater(t, tailed, 40, "most solved episodes get a tail")
	require.Equal(t, tailed, moved, "every tail moves the gripper")
}

// checkRewardGroundTruth checks generated reward episodes against a replay of their actions
// (see TestRewardEpisodesGroundTruth); tail is the Config.SuccessTail they were recorded with.
func checkRewardGroundTruth(t *testing.T, eps []lerobot.Episode, tail int) {
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
		solvedFrom := T - 1
		if ep.Success {
			solvedFrom = ep.DecisionStep
			require.GreaterOrEqual(t, ep.DecisionStep, T-1-tail)
		}
		for s := range T - 1 {
			require.Equal(t, s >= solvedFrom, states[s].Success(), "episode %d (decision step %d): solved at frame %d", g, ep.DecisionStep, s)
			if s >= solvedFrom {
				require.True(t, holds(states[s], ep.Task), "episode %d frame %d", g, s)
			}
		}
		if ep.Success {
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
