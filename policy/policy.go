// Package policy is the vocabulary every part of reel uses to talk about a robot policy without
// knowing how it was built or what it was trained on: the Spec a trained policy carries in its
// checkpoint (cameras and image sizes, state and action dimensions, chunking, normalisation),
// the Observation it reads, the images it sees (Image, Resize) and the Policy interface
// (observations in, action chunks out).
//
// The simulator, LeRobot datasets, the trainer, closed-loop evaluation and the vla-eval server
// all meet here: a served policy is known only by its Spec, never by the simulator's constants.
package policy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/reelml/reel/internal/atomicfile"
	"github.com/reelml/reel/internal/safeio"
)

// Observation is what a policy sees at one control step.
type Observation struct {
	// Images maps a camera name ("scene", "wrist", "top", ...) to its image.
	Images      map[string]Image
	State       []float32 // robot state (proprioception), Spec.StateDim values; may be empty
	Instruction string
}

// Policy maps a batch of observations to one action chunk each: chunks[i][k] is the k-th future
// action (Spec.ActionDim values, raw units) for observation i. Implementations: a trained
// checkpoint (tasks), a remote policy server (serve), the scripted expert (sim, tests).
type Policy interface {
	Act(obs []Observation) (chunks [][][]float32, err error)
}

// EpisodePolicy is an optional extension of Policy for policies that keep state per episode (a
// remote policy server buffers each connection's action chunk). An evaluation calls
// StartEpisodes(n) once before the first round of n episodes and then ActEpisodes instead of Act,
// where episodes[i] is the episode obs[i] comes from (finished episodes drop out of the batch, so
// positions alone do not identify them).
type EpisodePolicy interface {
	Policy
	StartEpisodes(n int) error
	ActEpisodes(episodes []int, obs []Observation) (chunks [][][]float32, err error)
}

// Checker is an optional extension of Policy for policies that can vet one observation on its
// own: Check returns the observation as the policy will read it (e.g. an instruction cut to the
// policy's text length) with a warning for each such change, or an error when the policy cannot
// read it at all. A policy server checks every observation before it joins a batch, so that one
// session's bad observation fails alone instead of failing the Act call of the whole batch. Check
// may be called concurrently with itself and with Act.
type Checker interface {
	Check(obs Observation) (Observation, []string, error)
}

// Camera is one image input: its name and the image size the policy's network takes.
type Camera struct {
	Name   string `json:"name"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

// Features describes a robot's observations and actions as a data source has them (the
// simulator, a LeRobot dataset's info.json): what a policy trained on it must read and write.
type Features struct {
	Cameras     []Camera `json:"cameras"`
	StateDim    int      `json:"state_dim"`
	ActionDim   int      `json:"action_dim"`
	StateNames  []string `json:"state_names,omitempty"`  // meaning of each state value, if known
	ActionNames []string `json:"action_names,omitempty"` // meaning of each action value, if known
	FPS         float64  `json:"fps,omitempty"`          // control frequency, if known
}

// CameraNames lists the cameras' names in order.
func (f Features) CameraNames() []string {
	out := make([]string, len(f.Cameras))
	for i, c := range f.Cameras {
		out[i] = c.Name
	}
	return out
}

// Camera returns the camera called name.
func (f Features) Camera(name string) (Camera, bool) {
	i := slices.IndexFunc(f.Cameras, func(c Camera) bool { return c.Name == name })
	if i < 0 {
		return Camera{}, false
	}
	return f.Cameras[i], true
}

// Normalisation modes of states and actions, as LeRobot and openpi define them.
const (
	NormMeanStd   = "mean_std"  // (x − mean) / std
	NormMinMax    = "min_max"   // [min, max] → [−1, 1]
	NormQuantiles = "quantiles" // [q01, q99] → [−1, 1] (openpi's choice for pi0)
)

// Spec is what a trained policy reads and returns. It is written into every checkpoint of a
// policy (SpecFile) and is all that serving and evaluation know of it.
type Spec struct {
	Name string `json:"name"` // e.g. "reel:molmobot-tiny"
	Features
	Horizon       int    `json:"horizon"`       // actions per predicted chunk
	Execute       int    `json:"execute"`       // actions of each chunk executed before asking again
	Normalization string `json:"normalization"` // NormMeanStd, NormMinMax or NormQuantiles
	Resize        string `json:"resize"`        // how images of another size are fitted (ResizePad, ...)
	MaxTextLen    int    `json:"max_text_len"`  // instruction tokens the policy reads
}

// SpecFile is the name of the spec inside a checkpoint directory.
const SpecFile = "policy.json"

// Validate checks that the spec describes a usable policy.
func (s Spec) Validate() error {
	switch {
	case len(s.Cameras) == 0:
		return fmt.Errorf("policy spec: no cameras")
	case s.ActionDim < 1:
		return fmt.Errorf("policy spec: action_dim must be ≥ 1, got %d", s.ActionDim)
	case s.StateDim < 0:
		return fmt.Errorf("policy spec: state_dim must be ≥ 0, got %d", s.StateDim)
	case s.Horizon < 1 || s.Execute < 1 || s.Execute > s.Horizon:
		return fmt.Errorf("policy spec: need 1 ≤ execute (%d) ≤ horizon (%d)", s.Execute, s.Horizon)
	case len(s.StateNames) > 0 && len(s.StateNames) != s.StateDim:
		return fmt.Errorf("policy spec: %d state names for %d state values", len(s.StateNames), s.StateDim)
	case len(s.ActionNames) > 0 && len(s.ActionNames) != s.ActionDim:
		return fmt.Errorf("policy spec: %d action names for %d action values", len(s.ActionNames), s.ActionDim)
	}
	if _, err := ParseResizeMode(s.Resize); err != nil {
		return fmt.Errorf("policy spec: %w", err)
	}
	switch s.Normalization {
	case NormMeanStd, NormMinMax, NormQuantiles:
	default:
		return fmt.Errorf("policy spec: normalization %q is not one of %s, %s, %s", s.Normalization, NormMeanStd, NormMinMax, NormQuantiles)
	}
	seen := map[string]bool{}
	for _, c := range s.Cameras {
		switch {
		case c.Name == "" || strings.ContainsAny(c.Name, " \t\n/"):
			return fmt.Errorf("policy spec: camera name %q is empty or has spaces or slashes", c.Name)
		case seen[c.Name]:
			return fmt.Errorf("policy spec: camera %q appears twice", c.Name)
		case c.Width < 1 || c.Height < 1:
			return fmt.Errorf("policy spec: camera %q has size %d×%d", c.Name, c.Width, c.Height)
		}
		seen[c.Name] = true
	}
	return nil
}

// WriteSpec writes s as JSON to path, atomically.
func WriteSpec(path string, s Spec) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, func(w *bufio.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// ReadSpec reads and validates the spec at path.
func ReadSpec(path string) (Spec, error) {
	var s Spec
	b, err := safeio.ReadFile(path, safeio.JSONLimit)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	if err := s.Validate(); err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
