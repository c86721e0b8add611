package reward

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"

	"github.com/parquet-go/parquet-go"

	"github.com/reelml/reel/lerobot"
	"github.com/reelml/reel/sim"
)

// ProgressFile is the per-frame progress a dataset keeps for RA-BC, at its root, named and laid
// out as huggingface/lerobot src/lerobot/rewards/topreward/compute_rabc_weights.py writes it (one
// row per frame: index, episode_index, frame_index, progress_sparse).
const ProgressFile = "topreward_progress.parquet"

// ProgressRow is one row of ProgressFile.
type ProgressRow struct {
	Index        int64   `parquet:"index"`         // the frame's global index in the dataset
	EpisodeIndex int64   `parquet:"episode_index"` // as stored in the dataset
	FrameIndex   int64   `parquet:"frame_index"`   // within the episode
	Progress     float32 `parquet:"progress_sparse"`
}

// Options configure ScoreDataset.
type Options struct {
	Prefixes int    // prefix samples per episode (DefaultPrefixes when 0; < 0: every prefix)
	Episodes int    // score the first Episodes episodes only (0: all)
	Camera   string // camera ("" : the dataset's first)
	Size     int    // frames fitted to Size×Size (0: the camera's native size)
}

// FlagOptions are Options as 'reel reward progress' takes them (errors name its flags):
// prefixes 0 means every prefix there, and no count may be negative.
func FlagOptions(prefixes, episodes int, camera string, size int) (Options, error) {
	switch {
	case prefixes < 0:
		return Options{}, fmt.Errorf("--prefixes: %d must be 0 (every prefix) or positive", prefixes)
	case episodes < 0:
		return Options{}, fmt.Errorf("--episodes: %d must be 0 (all) or positive", episodes)
	case size < 0:
		return Options{}, fmt.Errorf("--size: %d must be 0 (native) or positive", size)
	}
	if prefixes == 0 {
		prefixes = -1 // every prefix
	}
	return Options{Prefixes: prefixes, Episodes: episodes, Camera: camera, Size: size}, nil
}

// Episode is one scored episode.
type Episode struct {
	Index       int    `json:"episode"`
	Instruction string `json:"instruction"`
	Kind        string `json:"kind,omitempty"`
	Success     *bool  `json:"success,omitempty"`
	Frames      int    `json:"frames"`
	Curve
}

// DetectionReport is success detection by a threshold on the whole episode's log p(True), chosen
// for accuracy on the train split and measured on the held-out split: a split stratified by
// label (the 1st, 3rd, 5th… success and the 1st, 3rd, 5th… failure train, the others are held out).
type DetectionReport struct {
	Threshold     float64 `json:"threshold"`
	TrainEpisodes int     `json:"train_episodes"`
	TrainAccuracy float64 `json:"train_accuracy"`
	TestEpisodes  int     `json:"test_episodes"`
	Accuracy      float64 `json:"accuracy"`
	Precision     float64 `json:"precision"`
	Recall        float64 `json:"recall"`
}

// Report is ScoreDataset's result.
type Report struct {
	Prefixes  int                `json:"prefixes"`
	Episodes  []Episode          `json:"episodes"`
	VOC       float64            `json:"voc"`                   // mean over episodes
	VOCByKind map[string]float64 `json:"voc_by_kind,omitempty"` // mean per kind group (expert, failed, adversarial)
	Detection *DetectionReport   `json:"success_detection,omitempty"`
}

// EpisodeKind is an episode's kind: the kind its metadata records (reward data: expert,
// failed:MODE, adversarial:REWRITE; the per-kind means group them by sim.KindGroup), else "expert" when it succeeded and "failed"
// when it did not; "" without either.
func EpisodeKind(info lerobot.EpisodeMeta) string {
	switch {
	case info.Kind != "":
		return info.Kind
	case info.Success == nil:
		return ""
	case *info.Success:
		return "expert"
	}
	return "failed"
}

// ScoreDataset computes every episode's progress curve with m, the mean VOC overall and per
// kind, and success detection when the dataset has success labels.
func ScoreDataset(m Model, ds *lerobot.Dataset, opts Options) (*Report, error) {
	cams := ds.Cameras()
	if len(cams) == 0 {
		return nil, fmt.Errorf("lerobot dataset %s: no camera to show the reward model", ds.Dir())
	}
	cam := opts.Camera
	if cam == "" {
		cam = cams[0]
	}
	key, ok := ds.CameraKey(cam)
	if !ok {
		return nil, fmt.Errorf("lerobot dataset %s: no camera %q (cameras: %v)", ds.Dir(), cam, cams)
	}
	w, h := opts.Size, opts.Size
	if w <= 0 {
		f, _ := ds.Info().Features.Get(key)
		if len(f.Shape) != 3 {
			return nil, fmt.Errorf("lerobot dataset %s: features.%s.shape: want [height, width, 3], got %v (pass a frame size)", ds.Dir(), key, f.Shape)
		}
		h, w = f.Shape[0], f.Shape[1]
		if names, ok := f.Names.([]any); ok && len(names) == 3 && (names[0] == "channel" || names[0] == "channels") {
			h, w = f.Shape[1], f.Shape[2]
		}
	}
	rep := &Report{Prefixes: opts.prefixes()}
	for i := range opts.episodes(ds) {
		info := ds.EpisodeMeta(i)
		steps := make([]int, info.Length)
		for t := range steps {
			steps[t] = t
		}
		frames, err := ds.Frames(i, cam, steps, w, h, "")
		if err != nil {
			return nil, err
		}
		instr := instruction(info)
		c, err := Progress(m, instr, frames, rep.Prefixes)
		if err != nil {
			return nil, fmt.Errorf("episode %d: %w", info.EpisodeIndex, err)
		}
		rep.Episodes = append(rep.Episodes, Episode{Index: info.EpisodeIndex, Instruction: instr, Kind: EpisodeKind(info),
			Success: info.Success, Frames: info.Length, Curve: c})
	}
	rep.summarise()
	return rep, nil
}

func (o Options) prefixes() int {
	if o.Prefixes == 0 {
		return DefaultPrefixes
	}
	return o.Prefixes
}

func (o Options) episodes(ds *lerobot.Dataset) int {
	if o.Episodes > 0 {
		return min(ds.NumEpisodes(), o.Episodes)
	}
	return ds.NumEpisodes()
}

func instruction(info lerobot.EpisodeMeta) string {
	if len(info.Tasks) > 0 {
		return info.Tasks[0]
	}
	return ""
}

// ScoreOracle is ScoreDataset with the dataset's own labels in place of a model, the
// ground-truth progress: a successful episode's progress rises linearly from 0 at its first
// frame to 1 at its decision_step (its last frame when the dataset records none) and stays
// there; an unsuccessful one (failed, or an adversarial instruction) stays at 0. Its log_p is
// that progress itself. It needs success labels.
func ScoreOracle(ds *lerobot.Dataset, opts Options) (*Report, error) {
	rep := &Report{Prefixes: opts.prefixes()}
	for i := range opts.episodes(ds) {
		info := ds.EpisodeMeta(i)
		if info.Success == nil {
			return nil, fmt.Errorf("lerobot dataset %s: episode %d has no success label for the oracle progress", ds.Dir(), info.EpisodeIndex)
		}
		decision := info.Length - 1
		if info.DecisionStep != nil {
			decision = *info.DecisionStep
		}
		c := Curve{Lengths: PrefixLengths(info.Length, rep.Prefixes)}
		for _, l := range c.Lengths {
			v := 0.0
			if *info.Success {
				v = 1
				if decision > 0 {
					v = min(1, float64(l-1)/float64(decision))
				}
			}
			c.LogP = append(c.LogP, v)
		}
		c.Progress = Normalize(c.LogP)
		c.VOC = VOC(c.Progress)
		rep.Episodes = append(rep.Episodes, Episode{Index: info.EpisodeIndex, Instruction: instruction(info), Kind: EpisodeKind(info),
			Success: info.Success, Frames: info.Length, Curve: c})
	}
	rep.summarise()
	return rep, nil
}

// summarise fills the VOC means and the success detection.
func (r *Report) summarise() {
	sums, counts := map[string]float64{}, map[string]int{}
	var total float64
	var scores []float64
	var labels []bool
	for _, e := range r.Episodes {
		total += e.VOC
		if g := sim.KindGroup(e.Kind); g != "" {
			sums[g] += e.VOC
			counts[g]++
		}
		if e.Success != nil {
			scores, labels = append(scores, e.Final()), append(labels, *e.Success)
		}
	}
	if len(r.Episodes) > 0 {
		r.VOC = total / float64(len(r.Episodes))
	}
	if len(counts) > 0 {
		r.VOCByKind = map[string]float64{}
		for k, s := range sums {
			r.VOCByKind[k] = s / float64(counts[k])
		}
	}
	if len(scores) >= 2 {
		var trS, teS []float64
		var trL, teL []bool
		seen := map[bool]int{}
		for i := range scores {
			seen[labels[i]]++
			if seen[labels[i]]%2 == 1 {
				trS, trL = append(trS, scores[i]), append(trL, labels[i])
			} else {
				teS, teL = append(teS, scores[i]), append(teL, labels[i])
			}
		}
		thr := ChooseThreshold(trS, trL)
		d := Detect(teS, teL, thr)
		r.Detection = &DetectionReport{Threshold: thr, TrainEpisodes: len(trS), TrainAccuracy: Detect(trS, trL, thr).Accuracy(),
			TestEpisodes: len(teS), Accuracy: d.Accuracy(), Precision: d.Precision(), Recall: d.Recall()}
	}
}

// WriteProgress writes every scored episode's per-frame progress (Curve.PerFrame) to
// ds's ProgressFile and returns its path. Episodes not in r are left out.
func WriteProgress(ds *lerobot.Dataset, r *Report) (string, error) {
	var rows []ProgressRow
	byIndex := map[int]*Episode{}
	for i := range r.Episodes {
		byIndex[r.Episodes[i].Index] = &r.Episodes[i]
	}
	global := 0
	for i := range ds.NumEpisodes() {
		info := ds.EpisodeMeta(i)
		if e, ok := byIndex[info.EpisodeIndex]; ok {
			for t, p := range e.PerFrame(info.Length) {
				rows = append(rows, ProgressRow{Index: int64(global + t), EpisodeIndex: int64(info.EpisodeIndex), FrameIndex: int64(t), Progress: float32(p)})
			}
		}
		global += info.Length
	}
	path := filepath.Join(ds.Dir(), ProgressFile)
	if err := parquet.WriteFile(path, rows); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}

// ReadProgress reads a ProgressFile into per-frame progress per stored episode_index, checking
// that every episode's frames are 0..n-1 and its values finite.
func ReadProgress(path string) (map[int][]float64, error) {
	rows, err := parquet.ReadFile[ProgressRow](path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := map[int][]float64{}
	for _, r := range rows {
		e := int(r.EpisodeIndex)
		if int(r.FrameIndex) != len(out[e]) {
			return nil, fmt.Errorf("%s: episode %d: frame_index %d where %d was expected (rows in frame order)", path, e, r.FrameIndex, len(out[e]))
		}
		if v := float64(r.Progress); math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%s: episode %d frame %d: progress_sparse is %v", path, e, r.FrameIndex, v)
		}
		out[e] = append(out[e], float64(r.Progress))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no rows", path)
	}
	return out, nil
}

// Kinds returns the report's kinds, sorted.
func (r *Report) Kinds() []string {
	var out []string
	for k := range r.VOCByKind {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
