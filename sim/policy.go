package sim

import "strings"

// Observation is what a policy sees at one control step.
type Observation struct {
	// Images maps a camera name ("scene", "wrist") to a Size×Size×3 image (HWC, values in [0,1]).
	Images      map[string][]float32
	Size        int
	State       []float32 // robot state, StateDim values
	Instruction string
}

// Policy maps a batch of observations to one action chunk each: chunks[i][k] is the k-th
// future action (ActionDim values) for observation i. Implementations: a trained checkpoint
// (tasks), a remote policy server (serve.Client), the scripted expert (tests).
type Policy interface {
	Act(obs []Observation) (chunks [][][]float32, err error)
}

// EpisodePolicy is an optional extension of Policy for policies that keep state per episode
// (a remote policy server buffers each connection's action chunk). Evaluate calls
// StartEpisodes(n) once before the first round of n episodes and then ActEpisodes instead of
// Act, where episodes[i] is the episode obs[i] comes from (finished episodes drop out of the
// batch, so positions alone do not identify them).
type EpisodePolicy interface {
	Policy
	StartEpisodes(n int) error
	ActEpisodes(episodes []int, obs []Observation) (chunks [][][]float32, err error)
}

// FamilyOf returns the task family of an instruction made by NewWorld ("" if it is none of them).
func FamilyOf(instruction string) string {
	switch {
	case strings.HasPrefix(instruction, "pick up the "):
		return "pick"
	case strings.HasPrefix(instruction, "pick up a "):
		return "pick_any"
	case strings.HasPrefix(instruction, "put the "):
		return "place"
	case strings.HasPrefix(instruction, "push the "):
		return "push"
	}
	return ""
}
