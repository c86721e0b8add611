package data

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// Out-of-distribution counting (the counting study's OOD split). Each shift changes one factor of
// the training distribution and keeps the rest:
//
//	more_objects    counts above the training range: max_objects+1 … the OOD maximum
//	new_shapes      only shapes never seen in training (questions never name the shape)
//	new_colors      only colours never seen in training (questions never name the colour)
//	new_background  a checkerboard background (training draws solid, gradient and noise)
//	new_sizes       objects below (0.4–0.65× min_size) or above (1.35–1.6× max_size) the training sizes
//
// Except for more_objects, counts stay in the training range, so a shift measures robustness of
// counting itself rather than extrapolation to unseen numbers.
var allShifts = []string{"more_objects", "new_shapes", "new_colors", "new_background", "new_sizes"}

// OODShifts returns the shifts that exist for the generator's (training) configuration: for
// example new_shapes needs a shape the configuration does not use, and more_objects needs
// oodMax > MaxObjects.
func (g *SceneGenerator) OODShifts(oodMax int) []string {
	var out []string
	for _, s := range allShifts {
		if _, err := g.shifted(s, oodMax); err == nil {
			out = append(out, s)
		}
	}
	return out
}

// shifted returns the generator of one shift and its count range.
func (g *SceneGenerator) shifted(shift string, oodMax int) (*shiftGen, error) {
	c := g.Config()
	lo, hi := c.MinObjects, c.MaxObjects
	colorOK, shapeOK := true, true
	switch shift {
	case "more_objects":
		lo, hi = c.MaxObjects+1, min(oodMax, MaxCount)
		if hi < lo {
			return nil, fmt.Errorf("more_objects: the OOD maximum %d is not above max_objects %d", oodMax, c.MaxObjects)
		}
	case "new_shapes":
		c.Shapes = unseen(allShapes, c.Shapes)
		shapeOK = false
	case "new_colors":
		c.Colors = unseen(allColors, c.Colors)
		colorOK = false
	case "new_background":
		c.Background = "checker"
	case "new_sizes":
		// Resolved per example (smaller or larger); validate the larger range here.
		c.MinSize, c.MaxSize = min(0.5, c.MaxSize*1.35), min(0.5, c.MaxSize*1.6)
	default:
		return nil, fmt.Errorf("unknown OOD shift %q (known: %v)", shift, allShifts)
	}
	if (shift == "new_shapes" && len(c.Shapes) == 0) || (shift == "new_colors" && len(c.Colors) == 0) {
		return nil, fmt.Errorf("%s: the training configuration already uses them all", shift)
	}
	if lo == 0 && !shapeOK && !colorOK {
		lo = 1
	}
	sg, err := NewSceneGenerator(c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", shift, err)
	}
	out := &shiftGen{gen: sg, lo: lo, hi: hi, colorOK: colorOK, shapeOK: shapeOK}
	if shift == "new_sizes" {
		small := g.Config()
		small.MinSize, small.MaxSize = max(0.02, small.MinSize*0.4), max(0.02, small.MinSize*0.65)
		if out.small, err = NewSceneGenerator(small); err != nil {
			return nil, fmt.Errorf("%s: %w", shift, err)
		}
	}
	return out, nil
}

type shiftGen struct {
	gen, small       *SceneGenerator
	lo, hi           int
	colorOK, shapeOK bool
}

func unseen(all, used []string) []string {
	var out []string
	for _, s := range all {
		if !slices.Contains(used, s) {
			out = append(out, s)
		}
	}
	return out
}

// OODCountingExample draws one counting example under the given shift (see OODShifts); its
// Variant is the shift's name.
func (g *SceneGenerator) OODCountingExample(rng *rand.Rand, shift string, oodMax int) (Example, error) {
	sg, err := g.shifted(shift, oodMax)
	if err != nil {
		return Example{}, err
	}
	gen := sg.gen
	if sg.small != nil && rng.IntN(2) == 0 {
		gen = sg.small
	}
	s := gen.Sample(rng, sg.lo, sg.hi)
	q, a := gen.countingQA(rng, &s, sg.colorOK, sg.shapeOK)
	ex := gen.finish(s, q, a, "counting")
	ex.Variant = shift
	return ex, nil
}
