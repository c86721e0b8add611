// Package reward turns a reward model's scores of execution videos into the quantities of
// TOPReward (Token Probabilities as Hidden Zero-Shot Rewards for Robotics, arXiv 2602.19313):
// progress curves over trajectory prefixes, their Value-Order Correlation with time, success
// detection by a threshold on the whole episode's score, and the reward-aligned behaviour cloning
// (RA-BC) sample weights LeRobot computes from progress (huggingface/lerobot
// src/lerobot/rewards/sarm/rabc.py). It is pure Go and knows nothing of how a Model is built
// (tasks.OpenRewardModel opens one from a run or a pretrained directory).
package reward

import (
	"fmt"
	"math"
	"slices"

	"github.com/reelml/reel/policy"
)

// DefaultPrefixes is TOPReward's number of prefix samples per episode.
const DefaultPrefixes = 15

// PrefixLengths returns the prefix lengths (frame counts) scored for an n-frame episode with p
// samples, as huggingface/lerobot src/lerobot/rewards/topreward/compute_rabc_weights.py picks
// them: unique(round(linspace(1, n, p))) with NumPy's round half to even, ascending; every length
// 1..n when p <= 0 or p >= n. It always ends at n.
func PrefixLengths(n, p int) []int {
	if n <= 0 {
		return nil
	}
	if p <= 0 || p >= n {
		out := make([]int, n)
		for i := range out {
			out[i] = i + 1
		}
		return out
	}
	var out []int
	for i := range p {
		x := 1.0
		if p > 1 {
			// numpy.linspace: start + i·step, the last sample exactly stop.
			x = 1 + float64(i)*float64(n-1)/float64(p-1)
			if i == p-1 {
				x = float64(n)
			}
		}
		l := int(math.RoundToEven(x))
		if len(out) == 0 || out[len(out)-1] != l {
			out = append(out, l)
		}
	}
	return out
}

// Normalize min-max normalises raw scores into [0, 1]. A constant curve (one value included)
// becomes all zeros: it carries no progress. (LeRobot's port returns ones there; zeros keep a
// curve that never moves from looking finished, and VOC is 0 either way.)
func Normalize(raw []float64) []float64 {
	out := make([]float64, len(raw))
	if len(raw) == 0 {
		return out
	}
	lo, hi := slices.Min(raw), slices.Max(raw)
	if hi == lo {
		return out
	}
	for i, v := range raw {
		out[i] = (v - lo) / (hi - lo)
	}
	return out
}

// Ranks returns the 1-based ranks of x, ties given the average of the ranks they span
// (scipy.stats.rankdata's "average" method).
func Ranks(x []float64) []float64 {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case x[a] < x[b]:
			return -1
		case x[a] > x[b]:
			return 1
		}
		return 0
	})
	r := make([]float64, len(x))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && x[idx[j+1]] == x[idx[i]] {
			j++
		}
		avg := float64(i+j)/2 + 1
		for k := i; k <= j; k++ {
			r[idx[k]] = avg
		}
		i = j + 1
	}
	return r
}

// Spearman is the Spearman rank correlation of x and y (Pearson correlation of their average
// ranks); 0 when either is constant or shorter than two.
func Spearman(x, y []float64) float64 {
	if len(x) != len(y) || len(x) < 2 {
		return 0
	}
	rx, ry := Ranks(x), Ranks(y)
	n := float64(len(x))
	var mx, my float64
	for i := range rx {
		mx += rx[i]
		my += ry[i]
	}
	mx, my = mx/n, my/n
	var sxy, sxx, syy float64
	for i := range rx {
		dx, dy := rx[i]-mx, ry[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	if sxx == 0 || syy == 0 {
		return 0
	}
	return sxy / math.Sqrt(sxx*syy)
}

// VOC is TOPReward's Value-Order Correlation: the Spearman correlation of a progress curve with
// its order in time (0 for a constant curve).
func VOC(progress []float64) float64 {
	t := make([]float64, len(progress))
	for i := range t {
		t[i] = float64(i)
	}
	return Spearman(progress, t)
}

// Curve is the progress of one episode over its scored prefixes.
type Curve struct {
	Lengths  []int     `json:"prefix_lengths"` // frames in each prefix, ascending, the last the whole episode
	LogP     []float64 `json:"log_p"`          // the model's log p(True) for each prefix
	Progress []float64 `json:"progress"`       // LogP min-max normalised
	VOC      float64   `json:"voc"`
}

// Final is the whole episode's score: log p(True) of the longest prefix.
func (c Curve) Final() float64 { return c.LogP[len(c.LogP)-1] }

// Progress scores the prefixes of an episode (frames oldest first) with m in one LogPTrue call
// and returns its curve.
func Progress(m Model, instruction string, frames []policy.Image, prefixes int) (Curve, error) {
	lengths := PrefixLengths(len(frames), prefixes)
	if len(lengths) == 0 {
		return Curve{}, fmt.Errorf("reward: an episode with no frames")
	}
	clips := make([]Clip, len(lengths))
	for i, l := range lengths {
		clips[i] = Clip{Instruction: instruction, Frames: frames[:l]}
	}
	logp, err := m.LogPTrue(clips)
	if err != nil {
		return Curve{}, err
	}
	if len(logp) != len(clips) {
		return Curve{}, fmt.Errorf("reward: the model scored %d of %d clips", len(logp), len(clips))
	}
	for i, v := range logp {
		if math.IsNaN(v) || math.IsInf(v, 1) {
			return Curve{}, fmt.Errorf("reward: the model's log p(True) of prefix %d is %v", lengths[i], v)
		}
	}
	p := Normalize(logp)
	return Curve{Lengths: lengths, LogP: logp, Progress: p, VOC: VOC(p)}, nil
}

// PerFrame interpolates a curve's progress linearly onto every frame 1..n (numpy.interp, held
// constant outside the scored lengths), as LeRobot stores it for RA-BC.
func (c Curve) PerFrame(n int) []float64 {
	out := make([]float64, n)
	for f := range out {
		x := float64(f + 1)
		k, _ := slices.BinarySearch(c.Lengths, f+1)
		switch {
		case k < len(c.Lengths) && c.Lengths[k] == f+1:
			out[f] = c.Progress[k]
		case k == 0:
			out[f] = c.Progress[0]
		case k == len(c.Lengths):
			out[f] = c.Progress[len(c.Progress)-1]
		default:
			x0, x1 := float64(c.Lengths[k-1]), float64(c.Lengths[k])
			out[f] = c.Progress[k-1] + (x-x0)/(x1-x0)*(c.Progress[k]-c.Progress[k-1])
		}
	}
	return out
}
