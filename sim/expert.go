package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/lerobot"
)

// Expert returns the scripted expert's next action (dx, dy, grip ±1) for the current state,
// with Gaussian noise of standard deviation Config.ExpertNoise on dx and dy. It heads for its
// goal at full speed without overshooting: to the target object, closing on arrival, then
// (place) to the bowl centre, opening on arrival; for push it goes around the object to the
// side opposite the goal edge and pushes it there. For pick_any it commits to one of the two
// valid objects, drawn from rng on its first call, and keeps it.
func (w *World) Expert(rng *rand.Rand) []float32 {
	a, _ := w.ExpertWithIntent(rng)
	return a
}

// ExpertWithIntent is Expert that also returns the noise-free action the expert intended. The
// executed action has Gaussian noise on dx, dy and, with probability ExpertNoise/2, a flipped
// gripper command, so recorded episodes also show the expert recovering from slips (a dropped
// object is picked up again); the intended actions are the clean labels to imitate (DART,
// Laskey et al. 2017).
func (w *World) ExpertWithIntent(rng *rand.Rand) (executed, intended []float32) {
	if w.family == "pick_any" && w.choice < 0 {
		w.choice = []int{w.target, w.twin}[rng.IntN(2)]
	}
	intended = w.expertAction()
	a := slices.Clone(intended)
	s := w.cfg.ExpertNoise
	a[0] = float32(clamp(float64(a[0])+s*rng.NormFloat64(), -1, 1))
	a[1] = float32(clamp(float64(a[1])+s*rng.NormFloat64(), -1, 1))
	if rng.Float64() < s/2 {
		a[2] = -a[2]
	}
	return a, intended
}

// Focus is the point the task is about at this step, in table coordinates (x right, y down):
// the object to pick or push (pick_any: the twin the expert committed to, or the first one
// before it chose), and for place the object until it is held, then the bowl. Recorded with
// expert episodes, it supervises a policy's pointing head (Molmo-style pointing).
func (w *World) Focus() (x, y float64) {
	i := w.target
	if w.family == "pick_any" && w.choice >= 0 {
		i = w.choice
	}
	if w.family == "place" && w.held == w.target {
		b := w.bowls[w.bowl]
		return b.X, b.Y
	}
	return w.objs[i].X, w.objs[i].Y
}

// FocusPoints lists every point the task could be about now: both twins for pick_any while
// neither is held (either solves the task), else just Focus.
func (w *World) FocusPoints() [][2]float64 {
	if w.family == "pick_any" && w.held < 0 {
		a, b := w.objs[w.target], w.objs[w.twin]
		return [][2]float64{{a.X, a.Y}, {b.X, b.Y}}
	}
	x, y := w.Focus()
	return [][2]float64{{x, y}}
}

// toward returns the clipped move (in action units) from the gripper towards (x, y) and the
// gripper position it leads to.
func (w *World) toward(x, y float64) (dx, dy, nx, ny float64) {
	dx, dy = (x-w.gx)/MaxStep, (y-w.gy)/MaxStep
	if m := math.Hypot(dx, dy); m > 1 {
		dx, dy = dx/m, dy/m
	}
	return dx, dy, w.gx + dx*MaxStep, w.gy + dy*MaxStep
}

func act(dx, dy float64, closeGrip bool) []float32 {
	return []float32{float32(dx), float32(dy), 2*b2f(closeGrip) - 1}
}

// expertAction is the noise-free expert action.
func (w *World) expertAction() []float32 {
	switch w.family {
	case "pick_any":
		if w.choice >= 0 {
			return w.expertPick(w.choice)
		}
	case "place":
		if w.held == w.target {
			b := w.bowls[w.bowl]
			dx, dy, nx, ny := w.toward(b.X, b.Y)
			return act(dx, dy, math.Hypot(b.X-nx, b.Y-ny) >= 0.3*b.R)
		}
	case "push":
		return w.expertPush()
	}
	return w.expertPick(w.target)
}

// expertPick goes to object i and closes once the move ends within reach of it.
func (w *World) expertPick(i int) []float32 {
	if w.held >= 0 {
		return act(0, 0, w.held == i) // keep it, or drop the wrong one
	}
	o := w.objs[i]
	dx, dy, nx, ny := w.toward(o.X, o.Y)
	return act(dx, dy, math.Hypot(o.X-nx, o.Y-ny) < o.R+Reach/2)
}

// edgeDir is the unit vector pointing to edge.
func edgeDir(edge string) (ex, ey float64) {
	switch edge {
	case "left":
		return -1, 0
	case "right":
		return 1, 0
	case "top":
		return 0, -1
	}
	return 0, 1
}

// expertPush works in the target's frame: a along the push direction e, b across it (p).
// In contact behind the object it pushes along e; otherwise it moves sideways out of the
// object's way, back past it, and across to the contact point behind it.
func (w *World) expertPush() []float32 {
	if w.held >= 0 {
		return act(0, 0, false)
	}
	o := w.objs[w.target]
	ex, ey := edgeDir(w.edge)
	px, py := -ey, ex
	rx, ry := w.gx-o.X, w.gy-o.Y
	a, b, r := rx*ex+ry*ey, rx*px+ry*py, o.R
	s := 1.0
	if b < 0 {
		s = -1
	}
	at := func(a, b float64) (float64, float64) { return o.X + a*ex + b*px, o.Y + a*ey + b*py }
	var gx, gy float64
	switch {
	case a < 0 && math.Abs(b) < r/2 && math.Hypot(rx, ry) < r+0.05:
		return act(ex, ey, false) // push
	case a < -(r + 0.01):
		gx, gy = at(-(r + 0.02), 0) // the contact point behind the object
	case math.Abs(b) < r+0.05:
		if x, y := at(a, s*(r+0.065)); a > r+0.02 && (x < 0.01 || x > 0.99 || y < 0.01 || y > 0.99) {
			s = -s // ahead of the object: pass it on the side with room
		}
		gx, gy = at(a, s*(r+0.065)) // sideways, out of its way
	default:
		gx, gy = at(-(r + 0.03), b) // back past it, keeping clear
	}
	dx, dy, _, _ := w.toward(gx, gy)
	return act(dx, dy, false)
}

// RecordEpisode runs the noisy expert in the world of seed until Done and records, at every
// step, the images of every camera, the state and the executed action. It is a deterministic
// function of (cfg, seed).
func RecordEpisode(cfg Config, seed uint64, index int) (lerobot.Episode, error) {
	w, err := NewWorld(cfg, seed)
	if err != nil {
		return lerobot.Episode{}, fmt.Errorf("sim: record episode %d: %w", index, err)
	}
	rng := data.NewRand(seed ^ 0xe4be47c0ffee)
	cams := w.Cameras()
	ep := lerobot.Episode{Index: index, Seed: seed, Task: w.instr, Family: w.family, Size: cfg.ImageSize,
		Cameras: cams, Frames: make([][]float32, len(cams))}
	fs := cfg.ImageSize * cfg.ImageSize * 3
	for !w.Done() {
		for c, cam := range cams {
			n := len(ep.Frames[c])
			ep.Frames[c] = slices.Grow(ep.Frames[c], fs)[:n+fs]
			w.Render(ep.Frames[c][n:], cam)
		}
		a, intent := w.ExpertWithIntent(rng)
		ep.Intended = append(ep.Intended, intent)
		pts := w.FocusPoints()
		alt := pts[len(pts)-1]
		ep.Focus = append(ep.Focus, []float32{float32(pts[0][0]), float32(pts[0][1]), float32(alt[0]), float32(alt[1])})
		ep.State = append(ep.State, w.State())
		ep.Action = append(ep.Action, a)
		w.Step(a)
	}
	ep.Success = w.Success()
	return ep, nil
}

const evalBit = 1 << 63

// mix is the splitmix64 finaliser.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// TrainSeed is the seed of the i-th training world of base; its top bit is always 0.
func TrainSeed(base uint64, i int64) uint64 { return mix(base^mix(uint64(i))) &^ evalBit }

// EvalSeed is the seed of the i-th evaluation world of base; its top bit is always 1, so
// evaluation worlds never share a seed with training worlds.
func EvalSeed(base uint64, i int64) uint64 {
	return mix(base^mix(uint64(i)^0x5851f42d4c957f2d)) | evalBit
}
