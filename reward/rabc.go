package reward

import "math"

// RABC holds the parameters of reward-aligned behaviour cloning's sample weights, as
// huggingface/lerobot src/lerobot/rewards/sarm/rabc.py computes them (SARM, arXiv 2509.25358,
// Eq. 8-9): a sample at frame t of an episode has the progress increment
// r = progress[min(t + Chunk, end − 1)] − progress[t] and weight
//
//	1                                            if r > Kappa,
//	clip((r − (µ − 2σ)) / (4σ + Epsilon), 0, 1)  if 0 ≤ r ≤ Kappa,
//	0                                            if r < 0,
//
// with µ = max(mean r, 0) and σ = max(std r, Epsilon) over every frame of the dataset.
type RABC struct {
	Chunk   int     // frames ahead (the policy's action chunk)
	Kappa   float64 // increments above it weigh 1 (LeRobot: 0.01)
	Epsilon float64 // LeRobot: 1e-6
}

// DefaultRABC is LeRobot's defaults with the given chunk.
func DefaultRABC(chunk int) RABC { return RABC{Chunk: chunk, Kappa: 0.01, Epsilon: 1e-6} }

// Deltas returns each frame's progress increment over the chunk, per episode.
func (p RABC) Deltas(progress [][]float64) [][]float64 {
	out := make([][]float64, len(progress))
	for e, pr := range progress {
		d := make([]float64, len(pr))
		for t := range pr {
			d[t] = pr[min(t+p.Chunk, len(pr)-1)] - pr[t]
		}
		out[e] = d
	}
	return out
}

// Weights returns every frame's RA-BC weight (before a batch's normalisation), per episode, from
// per-frame progress per episode.
func (p RABC) Weights(progress [][]float64) [][]float64 {
	deltas := p.Deltas(progress)
	var sum, sq float64
	n := 0
	for _, d := range deltas {
		for _, v := range d {
			sum += v
			sq += v * v
			n++
		}
	}
	mu, sigma := 0.0, p.Epsilon
	if n > 0 {
		m := sum / float64(n)
		mu = max(m, 0)
		sigma = max(math.Sqrt(max(sq/float64(n)-m*m, 0)), p.Epsilon)
	}
	lower := mu - 2*sigma
	out := make([][]float64, len(deltas))
	for e, d := range deltas {
		w := make([]float64, len(d))
		for t, r := range d {
			switch {
			case r > p.Kappa:
				w[t] = 1
			case r >= 0:
				w[t] = min(max((r-lower)/(4*sigma+p.Epsilon), 0), 1)
			}
		}
		out[e] = w
	}
	return out
}
