package sim

import (
	"fmt"
	"strings"

	"github.com/reelml/reel/policy"
)

// ControlFPS is the control frequency datasets and rollout videos of the simulator record.
const ControlFPS = 10

// Features describes the simulated robot of cfg as a data source: its cameras (square, at
// cfg.ImageSize), state and action dimensions with their meaning, and the control frequency.
// A policy trained in the simulator is built from this description, like one trained on a
// LeRobot dataset is built from the dataset's.
func Features(cfg Config) policy.Features {
	f := policy.Features{StateDim: StateDim, ActionDim: ActionDim, StateNames: StateNames(), ActionNames: ActionNames(), FPS: ControlFPS}
	cams := []string{CameraScene}
	if cfg.Wrist {
		cams = append(cams, CameraWrist)
	}
	for _, c := range cams {
		f.Cameras = append(f.Cameras, policy.Camera{Name: c, Width: cfg.ImageSize, Height: cfg.ImageSize})
	}
	return f
}

// Fits reports why a policy with spec cannot be rolled out in the simulator of cfg (nil if it
// can): it must read only cameras the simulator renders, its state and write its actions.
func Fits(cfg Config, spec policy.Spec) error {
	f := Features(cfg)
	if spec.StateDim != f.StateDim || spec.ActionDim != f.ActionDim {
		return fmt.Errorf("the policy reads %d state values and writes %d-D actions; the simulator has %d and %d",
			spec.StateDim, spec.ActionDim, f.StateDim, f.ActionDim)
	}
	for _, c := range spec.Cameras {
		if _, ok := f.Camera(c.Name); !ok {
			return fmt.Errorf("the policy reads camera %q; the simulator renders %v", c.Name, f.CameraNames())
		}
	}
	return nil
}

// FamilyOf returns the task family of an instruction made by NewWorld ("" if it is none of them).
func FamilyOf(instruction string) string {
	switch {
	case strings.HasPrefix(instruction, "pick up the ") && ChainHops(instruction) > 0:
		return FamilyChain
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
