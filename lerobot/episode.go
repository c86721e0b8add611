package lerobot

// Episode is one recorded robot trajectory, the unit of a LeRobot-style dataset: at every step
// t the camera images and robot state the policy saw, and the action that was executed. The
// simulator records Episodes (package sim), Writer.Write stores them and Dataset.Episode reads
// one back; StoredEpisode is the storage form Writer.WriteStored takes (frames of any size as
// bytes). EpisodeMeta is what a dataset's metadata says about an episode without reading it.
type Episode struct {
	Index  int    // position in its dataset
	Seed   uint64 // procedural seed of the scene (0 when unknown)
	Task   string // natural-language instruction, e.g. "put the red square in the blue bowl"
	Family string // task family, e.g. "pick", "place", "push", "pick_any"
	// Size is the side of the square camera images, in pixels.
	Size int
	// Cameras names the camera streams ("scene", optionally "wrist"); Frames[c] belongs to
	// Cameras[c] and holds T×Size×Size×3 values in [0,1] (frame-major, HWC).
	Cameras []string
	Frames  [][]float32
	State   [][]float32 // T × state dimension
	Action  [][]float32 // T × action dimension: the action executed after observing step t
	Success bool        // whether the episode ended with the task solved
	// Kind and DecisionStep label reward-model data (sim.RecordRewardEpisodes): the episode's
	// kind ("expert", "failed", "adversarial", …) and the step at which its outcome is decided
	// (success reached, or the step after which it can no longer succeed). Both are recorded
	// in a dataset's episode metadata when Kind is set.
	Kind         string
	DecisionStep int
	// Intended is optional: the expert's noise-free action at each step (the label a policy
	// imitates; Action is what was executed, noise included). Datasets on disk do not carry it.
	Intended [][]float32
	// Focus is optional privileged information from the simulator: at each step two (x, y)
	// table points the task is about, x1 y1 x2 y2 (equal when only one object is; see
	// sim.World.FocusPoints). Datasets on disk do not carry it.
	Focus [][]float32
}

// Len is the number of steps T.
func (e *Episode) Len() int { return len(e.State) }
