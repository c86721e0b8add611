package tasks

import (
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/sim"
)

// statsEpisodes is how many training episodes the synthetic source's normalisation statistics
// are computed from.
const statsEpisodes = 64

// simSource generates expert episodes in the procedural simulator, one per training example
// (sim.TrainSeed), and held-out ones from the disjoint evaluation seeds.
type simSource struct {
	r   *recipes.Recipe
	cfg sim.Config
}

func newSimSource(r *recipes.Recipe, cfg sim.Config) *simSource { return &simSource{r: r, cfg: cfg} }

func (s *simSource) features() policy.Features { return sim.Features(s.cfg) }
func (s *simSource) focus() bool               { return true }

// stats computes per-dimension statistics of states and actions over the first statsEpisodes
// training episodes (a fixed set: the statistics depend only on the recipe).
func (s *simSource) stats() (state, action data.Stats) {
	var states, actions [][]float32
	for i := range int64(statsEpisodes) {
		ep, err := sim.RecordEpisode(s.cfg, sim.TrainSeed(uint64(s.r.Train.Seed), i), int(i))
		if err != nil {
			continue
		}
		states = append(states, ep.State...)
		actions = append(actions, ep.Action...)
	}
	return data.ComputeStats(states), data.ComputeStats(actions)
}

func (s *simSource) example(rng *rand.Rand, i int64, j int) (vlaExample, error) {
	micro := int64(s.r.Train.BatchSize / s.r.Train.GradAccum)
	ep, err := sim.RecordEpisode(s.cfg, sim.TrainSeed(uint64(s.r.Train.Seed), i*micro+int64(j)), 0)
	if err != nil {
		return vlaExample{}, err
	}
	return episodeExample(&ep, rng.IntN(ep.Len()), s.r.Policy.Horizon), nil
}

func (s *simSource) evalExamples(rng *rand.Rand, n int) ([]vlaExample, error) {
	out := make([]vlaExample, 0, n)
	for i := range n {
		ep, err := sim.RecordEpisode(s.cfg, sim.EvalSeed(uint64(s.r.Eval.Seed), int64(i)), i)
		if err != nil {
			return nil, err
		}
		out = append(out, episodeExample(&ep, rng.IntN(ep.Len()), s.r.Policy.Horizon))
	}
	return out, nil
}

// episodeExample is the observation at step of a recorded episode and the next h actions: the
// expert's noise-free intent (DART labels) where the episode has it, else the executed actions.
func episodeExample(ep *data.Episode, step, h int) vlaExample {
	s := ep.Size
	px := s * s * 3
	obs := policy.Observation{Images: map[string]policy.Image{}, State: ep.State[step], Instruction: ep.Task}
	for c, name := range ep.Cameras {
		obs.Images[name] = policy.Image{W: s, H: s, Pix: ep.Frames[c][step*px : (step+1)*px]}
	}
	labels := ep.Action
	if len(ep.Intended) == len(ep.Action) {
		labels = ep.Intended
	}
	ex := vlaExample{obs: obs, chunk: ChunkAt(labels, step, h)}
	if step < len(ep.Focus) {
		ex.focus = ep.Focus[step]
	}
	return ex
}

// datasetSource reads demonstrations from a LeRobot dataset. The last evalFraction of its
// episodes (at least one, when it has two or more) are held out for the offline action error.
type datasetSource struct {
	r       *recipes.Recipe
	ds      *data.LeRobotDataset
	feat    policy.Features
	train   []int // episode indices drawn for training
	held    []int // held-out episodes
	eps     []data.Episode
	epsOnce sync.Once
	epsErr  error
}

// evalFraction is the share of a dataset's episodes held out for evaluation.
const evalFraction = 0.1

func openDatasetSource(r *recipes.Recipe) (*datasetSource, error) {
	dir := r.Data.Dir
	ds, err := data.OpenLeRobot(dir)
	if err != nil {
		return nil, fmt.Errorf("data.dir: %v", err)
	}
	n := ds.NumEpisodes()
	if n == 0 {
		return nil, fmt.Errorf("data.dir: %s has no episodes", dir)
	}
	s := &datasetSource{r: r, ds: ds}
	held := 0
	if n >= 2 {
		held = max(1, int(float64(n)*evalFraction))
	}
	for i := range n {
		if i < n-held {
			s.train = append(s.train, i)
		} else {
			s.held = append(s.held, i)
		}
	}
	ep, err := ds.Episode(0)
	if err != nil {
		return nil, fmt.Errorf("data.dir: %v", err)
	}
	if ep.Len() == 0 {
		return nil, fmt.Errorf("data.dir: %s episode 0 has no frames", dir)
	}
	s.feat = policy.Features{StateDim: len(ep.State[0]), ActionDim: len(ep.Action[0])}
	for _, c := range ep.Cameras {
		s.feat.Cameras = append(s.feat.Cameras, policy.Camera{Name: c, Width: ep.Size, Height: ep.Size})
	}
	return s, nil
}

func (s *datasetSource) features() policy.Features { return s.feat }
func (s *datasetSource) focus() bool               { return false }

func (s *datasetSource) stats() (state, action data.Stats) {
	st := s.ds.Stats()
	return st.State, st.Action
}

// episodes decodes every stored episode once (safe for the concurrent data workers).
func (s *datasetSource) episodes() ([]data.Episode, error) {
	s.epsOnce.Do(func() {
		for i := range s.ds.NumEpisodes() {
			ep, err := s.ds.Episode(i)
			if err != nil {
				s.epsErr = fmt.Errorf("data.dir: %v", err)
				return
			}
			if len(ep.State) == 0 || len(ep.State[0]) != s.feat.StateDim || len(ep.Action[0]) != s.feat.ActionDim {
				s.epsErr = fmt.Errorf("data.dir: %s episode %d: expected %d state and %d action values per step", s.r.Data.Dir, i, s.feat.StateDim, s.feat.ActionDim)
				return
			}
			s.eps = append(s.eps, ep)
		}
	})
	return s.eps, s.epsErr
}

func (s *datasetSource) example(rng *rand.Rand, _ int64, _ int) (vlaExample, error) {
	eps, err := s.episodes()
	if err != nil {
		return vlaExample{}, err
	}
	ep := &eps[s.train[rng.IntN(len(s.train))]]
	return episodeExample(ep, rng.IntN(ep.Len()), s.r.Policy.Horizon), nil
}

func (s *datasetSource) evalExamples(rng *rand.Rand, n int) ([]vlaExample, error) {
	eps, err := s.episodes()
	if err != nil {
		return nil, err
	}
	pool := s.held
	if len(pool) == 0 {
		pool = s.train
	}
	out := make([]vlaExample, n)
	for i := range out {
		ep := &eps[pool[i%len(pool)]]
		out[i] = episodeExample(ep, rng.IntN(ep.Len()), s.r.Policy.Horizon)
	}
	return out, nil
}
