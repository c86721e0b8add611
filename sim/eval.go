package sim

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reelml/reel/lerobot"
	"github.com/reelml/reel/policy"
)

// EvalConfig describes a closed-loop evaluation.
type EvalConfig struct {
	Episodes int    // number of held-out worlds, EvalSeed(Seed, 0..Episodes-1)
	Seed     uint64 // base of the evaluation seeds
	Horizon  int    // length of the action chunks the policy returns
	Execute  int    // actions of each chunk executed before the policy is asked again (≤ Horizon)
	Workers  int    // goroutines rendering and stepping the worlds; 0 means GOMAXPROCS
	Videos   int    // record the scene frames of the first Videos episodes
}

// Validate checks every field and returns a one-line error naming the first bad one.
func (c EvalConfig) Validate() error {
	switch {
	case c.Episodes < 1:
		return fmt.Errorf("sim eval config: Episodes must be at least 1, got %d", c.Episodes)
	case c.Horizon < 1:
		return fmt.Errorf("sim eval config: Horizon must be at least 1, got %d", c.Horizon)
	case c.Execute < 1 || c.Execute > c.Horizon:
		return fmt.Errorf("sim eval config: Execute must be in [1, Horizon=%d], got %d", c.Horizon, c.Execute)
	case c.Workers < 0:
		return fmt.Errorf("sim eval config: Workers must be ≥ 0 (0 = GOMAXPROCS), got %d", c.Workers)
	case c.Videos < 0 || c.Videos > c.Episodes:
		return fmt.Errorf("sim eval config: Videos must be in [0, Episodes=%d], got %d", c.Episodes, c.Videos)
	}
	return nil
}

// FamilyResult is the outcome of the episodes of one task family.
type FamilyResult struct {
	Success   float64 `json:"success"` // success rate
	Low       float64 `json:"low"`     // 95% Wilson interval of the success rate
	High      float64 `json:"high"`
	N         int     `json:"n"`          // episodes
	MeanSteps float64 `json:"mean_steps"` // actions executed per episode
}

// EvalResult is the outcome of Evaluate: the overall success rate with its 95% Wilson
// interval, episodes and mean steps (the embedded FamilyResult, flattened in JSON), the same
// per task family, and the recorded videos.
type EvalResult struct {
	FamilyResult
	Families map[string]FamilyResult `json:"families"`
	// BoundaryJump is the mean absolute action jump at chunk boundaries (policy.Jumps: the first
	// action executed from each new chunk against the action executed just before, averaged over
	// the action's values), over Boundaries boundaries. A policy that buffers chunks itself
	// (policy.JumpMeter, e.g. policy.Ensembled) counts them; otherwise each chunk Evaluate
	// executes is one.
	BoundaryJump float64 `json:"boundary_jump"`
	Boundaries   int     `json:"boundaries"`
	// LatencyMSPerStep is the wall time spent in the policy per control step of the lockstep
	// rollout (all Act calls over the rounds' steps: a round executes up to Execute actions).
	LatencyMSPerStep float64 `json:"latency_ms_per_step"`
	// Videos holds the first EvalConfig.Videos episodes as played by the policy (scene
	// camera only).
	Videos []lerobot.Episode `json:"-"`
}

// Wilson returns the 95% Wilson score interval of k successes out of n trials ([0, 1] when
// n = 0).
func Wilson(k, n int) (low, high float64) {
	if n == 0 {
		return 0, 1
	}
	const z = 1.959963984540054
	p, fn := float64(k)/float64(n), float64(n)
	den := 1 + z*z/fn
	c := (p + z*z/(2*fn)) / den
	h := z / den * math.Sqrt(p*(1-p)/fn+z*z/(4*fn*fn))
	return max(0, c-h), min(1, c+h)
}

// parallel runs fn(0..n-1) on up to workers goroutines.
func parallel(n, workers int, fn func(i int)) {
	var wg sync.WaitGroup
	var next atomic.Int64
	for range min(n, workers) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				fn(i)
			}
		})
	}
	wg.Wait()
}

// Evaluate runs p closed-loop in ec.Episodes held-out worlds of cfg, in lockstep: each round
// it observes every unfinished world, asks p for all their action chunks in one batched Act
// call, and executes up to ec.Execute actions of each chunk (fewer when the world finishes).
// Policy errors and malformed chunks are returned as errors.
func Evaluate(cfg Config, ec EvalConfig, p policy.Policy) (EvalResult, error) {
	if err := ec.Validate(); err != nil {
		return EvalResult{}, err
	}
	if err := cfg.Validate(); err != nil {
		return EvalResult{}, err
	}
	workers := ec.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	worlds, errs := make([]*World, ec.Episodes), make([]error, ec.Episodes)
	parallel(ec.Episodes, workers, func(i int) { worlds[i], errs[i] = NewWorld(cfg, EvalSeed(ec.Seed, int64(i))) })
	for _, err := range errs {
		if err != nil {
			return EvalResult{}, err
		}
	}
	videos := make([]lerobot.Episode, ec.Videos)
	for i := range videos {
		w := worlds[i]
		videos[i] = lerobot.Episode{Index: i, Seed: w.seed, Task: w.instr, Family: w.family, Size: cfg.ImageSize,
			Cameras: []string{CameraScene}, Frames: make([][]float32, 1)}
	}
	fs := cfg.ImageSize * cfg.ImageSize * 3
	ep, _ := p.(policy.EpisodePolicy)
	if ep != nil {
		if err := ep.StartEpisodes(ec.Episodes); err != nil {
			return EvalResult{}, fmt.Errorf("sim: evaluate: policy: %w", err)
		}
	}
	var err error
	var jumps policy.Jumps
	last := make([][]float32, len(worlds)) // the action each world executed last
	var policyTime time.Duration
	lockstep := 0 // control steps of the lockstep rounds
	for {
		var active []int
		for i, w := range worlds {
			if !w.Done() {
				active = append(active, i)
			}
		}
		if len(active) == 0 {
			break
		}
		obs := make([]policy.Observation, len(active))
		parallel(len(active), workers, func(k int) { obs[k] = worlds[active[k]].Observe() })
		var chunks [][][]float32
		start := time.Now()
		if ep != nil {
			chunks, err = ep.ActEpisodes(active, obs)
		} else {
			chunks, err = p.Act(obs)
		}
		policyTime += time.Since(start)
		if err != nil {
			return EvalResult{}, fmt.Errorf("sim: evaluate: policy: %w", err)
		}
		if len(chunks) != len(active) {
			return EvalResult{}, fmt.Errorf("sim: evaluate: policy returned %d action chunks for %d observations", len(chunks), len(active))
		}
		for k, ch := range chunks {
			if len(ch) == 0 {
				return EvalResult{}, fmt.Errorf("sim: evaluate: policy returned an empty action chunk for observation %d", k)
			}
			for t, a := range ch[:min(len(ch), ec.Execute)] {
				if len(a) != ActionDim {
					return EvalResult{}, fmt.Errorf("sim: evaluate: policy action %d of chunk %d has %d values, want %d", t, k, len(a), ActionDim)
				}
			}
		}
		steps := make([]int, len(active))
		jump := make([]policy.Jumps, len(active))
		parallel(len(active), workers, func(k int) {
			i, w := active[k], worlds[active[k]]
			for t, a := range chunks[k][:min(len(chunks[k]), ec.Execute)] {
				if w.Done() {
					break
				}
				if t == 0 {
					jump[k].Record(last[i], a)
				}
				last[i] = a
				steps[k]++
				if i < len(videos) {
					v := &videos[i]
					n := len(v.Frames[0])
					v.Frames[0] = slices.Grow(v.Frames[0], fs)[:n+fs]
					w.Render(v.Frames[0][n:], CameraScene)
					v.State, v.Action = append(v.State, w.State()), append(v.Action, slices.Clone(a))
				}
				w.Step(a)
			}
		})
		for k := range active {
			jumps.Add(jump[k])
		}
		lockstep += slices.Max(steps)
	}
	for i := range videos {
		videos[i].Success = worlds[i].Success()
	}
	res := summarize(worlds)
	res.Videos = videos
	if jm, ok := p.(policy.JumpMeter); ok {
		jumps = jm.Jumps()
	}
	res.BoundaryJump, res.Boundaries = jumps.Mean(), jumps.N
	res.LatencyMSPerStep = policyTime.Seconds() * 1000 / float64(max(1, lockstep))
	return res, nil
}

// summarize computes the overall and per-family results of finished worlds (chain worlds also per
// hop count, as chain_<k>hop).
func summarize(worlds []*World) EvalResult {
	type tally struct{ n, ok, steps int }
	fam := map[string]*tally{}
	var all tally
	for _, w := range worlds {
		keys := []string{w.family}
		if w.family == FamilyChain { // chain worlds are also tallied by hop count (chain_1hop, …)
			keys = append(keys, fmt.Sprintf("%s_%dhop", FamilyChain, ChainHops(w.instr)))
		}
		ts := []*tally{&all}
		for _, k := range keys {
			if fam[k] == nil {
				fam[k] = &tally{}
			}
			ts = append(ts, fam[k])
		}
		for _, t := range ts {
			t.n++
			t.steps += w.steps
			if w.Success() {
				t.ok++
			}
		}
	}
	rate := func(t *tally) FamilyResult {
		lo, hi := Wilson(t.ok, t.n)
		return FamilyResult{float64(t.ok) / float64(t.n), lo, hi, t.n, float64(t.steps) / float64(t.n)}
	}
	res := EvalResult{FamilyResult: rate(&all), Families: map[string]FamilyResult{}}
	for f, t := range fam {
		res.Families[f] = rate(t)
	}
	return res
}

// Modes measures how a policy handles a task with two valid solutions: in the first `scenes`
// held-out pick_any worlds (EvalSeed(ec.Seed, ·)), it asks the policy `samples` times for the
// first action at the start and checks whether the move heads for one of the twins (cosine
// > 0.9 with the direction to it). hit is the fraction of samples that head for a twin;
// both is the fraction of scenes whose samples go to both twins. A regressor that averages
// the two solutions heads for neither; a generative policy should cover both.
func Modes(cfg Config, ec EvalConfig, p policy.Policy, scenes, samples int) (hit, both float64, err error) {
	cfg.Families = []string{"pick_any"}
	var hits, total, covered int
	for i := range scenes {
		w, err := NewWorld(cfg, EvalSeed(ec.Seed, int64(i)))
		if err != nil {
			return 0, 0, err
		}
		obs := w.Observe()
		batch := make([]policy.Observation, samples)
		for j := range batch {
			batch[j] = obs
		}
		chunks, err := p.Act(batch)
		if err != nil {
			return 0, 0, fmt.Errorf("sim: modes: policy: %w", err)
		}
		twins := w.FocusPoints()
		var seen [2]bool
		for _, ch := range chunks {
			if len(ch) == 0 || len(ch[0]) < 2 {
				return 0, 0, fmt.Errorf("sim: modes: policy returned an empty action")
			}
			dx, dy := float64(ch[0][0]), float64(ch[0][1])
			for k, t := range twins {
				tx, ty := t[0]-w.gx, t[1]-w.gy
				if c := (dx*tx + dy*ty) / (math.Hypot(dx, dy)*math.Hypot(tx, ty) + 1e-12); c > 0.9 {
					seen[k] = true
					hits++
					break
				}
			}
			total++
		}
		if seen[0] && seen[1] {
			covered++
		}
	}
	return float64(hits) / float64(max(1, total)), float64(covered) / float64(max(1, scenes)), nil
}

// DepthPolicy is a policy whose compute per call can be fixed: RD-VLA's recurrent depth.
type DepthPolicy interface {
	policy.Policy
	// SetDepth fixes the iterations per call (depth ≥ 1) or selects adaptive stopping (0).
	SetDepth(depth int)
	// Iterations returns the mean iterations per observation since the last call, by
	// group(instruction) and overall ("all"), and resets the tally.
	Iterations(group func(instruction string) string) map[string]float64
}

// DepthResult is the closed-loop outcome of a DepthPolicy at one fixed depth.
type DepthResult struct {
	Depth int `json:"depth"`
	EvalResult
	LatencyMS float64 `json:"latency_ms_per_call"` // mean wall time of one batched Act call
}

// SweepDepths evaluates p closed-loop (as Evaluate, without videos) at each fixed depth, and
// leaves it adaptive (depth 0) afterwards.
func SweepDepths(cfg Config, ec EvalConfig, p DepthPolicy, depths []int) ([]DepthResult, error) {
	ec.Videos = 0
	defer p.SetDepth(0)
	var out []DepthResult
	for _, d := range depths {
		p.SetDepth(d)
		tp := &timedPolicy{Policy: p}
		res, err := Evaluate(cfg, ec, tp)
		if err != nil {
			return nil, err
		}
		p.Iterations(nil)
		out = append(out, DepthResult{Depth: d, EvalResult: res, LatencyMS: tp.total.Seconds() * 1000 / float64(max(1, tp.calls))})
	}
	return out, nil
}

// timedPolicy measures the mean latency of Act calls.
type timedPolicy struct {
	policy.Policy
	calls int
	total time.Duration
}

func (p *timedPolicy) Act(obs []policy.Observation) ([][][]float32, error) {
	start := time.Now()
	c, err := p.Policy.Act(obs)
	p.total += time.Since(start)
	p.calls++
	return c, err
}
