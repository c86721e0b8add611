package tasks

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"

	"github.com/reelml/reel/lerobot"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/reward"
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
func (s *simSource) close()                    {}

// stats computes per-dimension statistics of states and actions over the first statsEpisodes
// training episodes (a fixed set: the statistics depend only on the recipe).
func (s *simSource) stats() (state, action lerobot.Stats, err error) {
	var states, actions [][]float32
	for i := range int64(statsEpisodes) {
		ep, err := sim.RecordEpisode(s.cfg, sim.TrainSeed(uint64(s.r.Train.Seed), i), int(i))
		if err != nil {
			continue
		}
		states = append(states, ep.State...)
		actions = append(actions, ep.Action...)
	}
	if len(states) == 0 {
		return state, action, fmt.Errorf("data: the simulator produced no episode for the statistics")
	}
	return lerobot.VectorStats(states), lerobot.VectorStats(actions), nil
}

func (s *simSource) batch(rng *rand.Rand, i int64, n int) ([]vlaExample, error) {
	out := make([]vlaExample, n)
	for j := range out {
		ep, err := sim.RecordEpisode(s.cfg, sim.TrainSeed(uint64(s.r.Train.Seed), i*int64(n)+int64(j)), 0)
		if err != nil {
			return nil, err
		}
		out[j] = episodeExample(&ep, rng.IntN(ep.Len()), s.r.Policy.Horizon)
	}
	return out, nil
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

// episodeExample is the observation at step of a simulated episode and the next h actions: the
// expert's noise-free intent (DART labels) where the episode has it, else the executed actions;
// past the end the robot stays (ChunkAt).
func episodeExample(ep *lerobot.Episode, step, h int) vlaExample {
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
	ex := vlaExample{obs: obs, chunk: ChunkAt(labels, step, h), weight: 1}
	if step < len(ep.Focus) {
		ex.focus = ep.Focus[step]
	}
	return ex
}

// datasetSource reads demonstrations from a LeRobot dataset (v3.0, v2.1 or reel's v2.0) of any
// robot: the policy reads every camera the dataset has, fitted to model.image_size
// (data.resize), and its state and action. Frames are decoded lazily: a windowed sampler draws
// each micro-batch from a few episodes, a loader decodes those (and the next windows', in the
// background) into a byte-bounded cache. The last evalFraction of the episodes (at least one,
// when there are two or more) are held out for the offline action error.
type datasetSource struct {
	r      *recipes.Recipe
	ds     *lerobot.Dataset
	feat   policy.Features
	train  []int // episodes drawn for training
	held   []int // held-out episodes
	loader *lerobot.Loader
	// weights are the RA-BC weight of every frame of every episode (by position), when
	// train.sample_weights is progress.
	weights [][]float64
}

// evalFraction is the share of a dataset's episodes held out for evaluation.
const evalFraction = 0.1

func openDatasetSource(r *recipes.Recipe) (*datasetSource, error) {
	dir := r.Data.Dir
	ds, err := lerobot.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("data.dir: %w", err)
	}
	n := ds.NumEpisodes()
	if n == 0 {
		return nil, fmt.Errorf("data.dir: %s has no episodes", dir)
	}
	s := &datasetSource{r: r, ds: ds, feat: ds.Features()}
	if len(s.feat.Cameras) == 0 {
		return nil, fmt.Errorf("data.dir: %s has no camera (video or image feature); a policy needs at least one", dir)
	}
	if s.feat.ActionDim == 0 {
		return nil, fmt.Errorf("data.dir: %s has no action feature", dir)
	}
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
	if r.Train.SampleWeights == "progress" {
		if s.weights, err = progressWeights(ds, r.Policy.Horizon); err != nil {
			return nil, fmt.Errorf("train.sample_weights: %w", err)
		}
	}
	return s, nil
}

// progressWeights reads the dataset's per-frame progress (reward.ProgressFile, written by `reel
// reward progress --write`) and turns it into RA-BC weights over an action chunk of h frames
// (reward.DefaultRABC: LeRobot's defaults), per episode position.
func progressWeights(ds *lerobot.Dataset, h int) ([][]float64, error) {
	path := filepath.Join(ds.Dir(), reward.ProgressFile)
	byIndex, err := reward.ReadProgress(path)
	if err != nil {
		return nil, fmt.Errorf("%w (write it with: reel reward progress MODEL --data %s --write)", err, ds.Dir())
	}
	progress := make([][]float64, ds.NumEpisodes())
	for i := range progress {
		info := ds.EpisodeMeta(i)
		p, ok := byIndex[info.EpisodeIndex]
		if !ok || len(p) != info.Length {
			return nil, fmt.Errorf("%s: episode %d has %d progress values for %d frames (rescore the dataset)", path, info.EpisodeIndex, len(p), info.Length)
		}
		progress[i] = p
	}
	return reward.DefaultRABC(h).Weights(progress), nil
}

func (s *datasetSource) features() policy.Features { return s.feat }
func (s *datasetSource) focus() bool               { return false }

func (s *datasetSource) close() {
	if s.loader != nil {
		s.loader.Close()
	}
}

// stats are the dataset's own statistics (meta/stats.json, or episodes_stats.jsonl aggregated),
// computed from the data where they are missing.
func (s *datasetSource) stats() (state, action lerobot.Stats, err error) {
	all, err := s.ds.Stats()
	if err != nil {
		return state, action, fmt.Errorf("data.dir: statistics: %w", err)
	}
	action, ok := all[s.ds.ActionKey()]
	if !ok {
		return state, action, fmt.Errorf("data.dir: %s has no statistics of %s", s.r.Data.Dir, s.ds.ActionKey())
	}
	if s.feat.StateDim > 0 {
		if state, ok = all[s.ds.StateKey()]; !ok {
			return state, action, fmt.Errorf("data.dir: %s has no statistics of %s", s.r.Data.Dir, s.ds.StateKey())
		}
	}
	return state, action, nil
}

// start builds the sampler and loader once the task knows the image size (the first batch).
func (s *datasetSource) start(n int) error {
	if s.loader != nil {
		return nil
	}
	sm, err := s.ds.NewSampler(lerobot.SamplerConfig{Seed: uint64(s.r.Train.Seed), BatchSize: n, Episodes: s.train})
	if err != nil {
		return fmt.Errorf("data.dir: %w", err)
	}
	size := s.r.Model.ImageSize
	s.loader, err = s.ds.NewLoader(sm, lerobot.LoaderConfig{Cameras: s.feat.CameraNames(), Width: size, Height: size, Mode: s.r.Data.Resize})
	if err != nil {
		return fmt.Errorf("data.dir: %w", err)
	}
	return nil
}

func (s *datasetSource) batch(_ *rand.Rand, i int64, n int) ([]vlaExample, error) {
	if err := s.start(n); err != nil {
		return nil, err
	}
	loaded, err := s.loader.Batch(i)
	if err != nil {
		return nil, fmt.Errorf("data.dir: %w", err)
	}
	out := make([]vlaExample, len(loaded))
	for j, ex := range loaded {
		out[j] = s.example(ex.Vectors, ex.Step, ex.Images())
		if s.weights != nil {
			out[j].weight = float32(s.weights[ex.Episode][ex.Step])
		}
	}
	return out, nil
}

// example is the observation at step of an episode and its next H actions; past the episode's
// end the last action repeats (the frames LeRobot's delta_timestamps clamp to).
func (s *datasetSource) example(v *lerobot.EpisodeVectors, step int, images []policy.Image) vlaExample {
	obs := policy.Observation{Images: map[string]policy.Image{}, Instruction: v.Task[step]}
	if v.State != nil {
		obs.State = v.State[step]
	}
	for c, name := range s.feat.CameraNames() {
		obs.Images[name] = images[c]
	}
	h := s.r.Policy.Horizon
	chunk := make([][]float32, h)
	for k := range chunk {
		chunk[k] = v.Action[min(step+k, v.Len()-1)]
	}
	return vlaExample{obs: obs, chunk: chunk, weight: 1}
}

func (s *datasetSource) evalExamples(rng *rand.Rand, n int) ([]vlaExample, error) {
	pool := s.held
	if len(pool) == 0 {
		pool = s.train
	}
	size := s.r.Model.ImageSize
	out := make([]vlaExample, n)
	for i := range out {
		ep := pool[i%len(pool)]
		v, err := s.ds.Vectors(ep)
		if err != nil {
			return nil, fmt.Errorf("data.dir: %w", err)
		}
		step := rng.IntN(v.Len())
		var images []policy.Image
		for _, cam := range s.feat.CameraNames() {
			ims, err := s.ds.Frames(ep, cam, []int{step}, size, size, s.r.Data.Resize)
			if err != nil {
				return nil, fmt.Errorf("data.dir: %w", err)
			}
			images = append(images, ims[0])
		}
		out[i] = s.example(v, step, images)
	}
	return out, nil
}
