package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/lerobot"
)

// Reward-model data: execution videos with ground truth, in the manner of ExeVRM (Video-Based
// Reward Modeling for Computer-Use Agents, arXiv 2603.10178): successful expert executions,
// failed ones, and adversarial instruction translations (the same video with the instruction
// rewritten so that it becomes a negative). Every episode carries its success from the
// simulator's own check and the step at which its outcome is decided (lerobot.Episode.Kind,
// DecisionStep).

// Episode kinds of reward data: KindExpert, "failed:"+mode and "adversarial:"+rewrite.
const (
	KindExpert      = "expert"
	KindFailed      = "failed"
	KindAdversarial = "adversarial"
)

// FailureModes are the perturbations of the expert that make failed episodes: heavy action
// noise, a constant drift, going for the wrong object, and stopping early.
var FailureModes = []string{"noise", "drift", "wrong_target", "early_stop"}

// Rewrites are the adversarial instruction translations: another object of the scene, another
// colour of the object, another receptacle (bowl colour or push edge), another task family.
var Rewrites = []string{"object", "colour", "receptacle", "family"}

// KindGroup is the group of a reward episode kind: "expert", "failed" or "adversarial".
func KindGroup(kind string) string {
	g, _, _ := strings.Cut(kind, ":")
	return g
}

// earlyStopTail is how many still frames an early-stopped episode records after it stops.
const earlyStopTail = 6

// RewardSeed is the world seed of reward episode g of base: expert and failed episodes have
// their own worlds; an adversarial episode (g%3 == 2) replays the world of the expert episode
// g-2, so its frames are that episode's frames. eval selects the held-out worlds (EvalSeed).
func RewardSeed(base uint64, g int, eval bool) uint64 {
	if g%3 == 2 {
		g -= 2
	}
	if eval {
		return EvalSeed(base, int64(g))
	}
	return TrainSeed(base, int64(g))
}

// RewardKindOf is what RecordRewardEpisode records for global index g before it looks at the
// world: expert (g%3 == 0), failed (1) or adversarial (2).
func RewardKindOf(g int) string { return []string{KindExpert, KindFailed, KindAdversarial}[g%3] }

// RecordRewardEpisode records reward episode g of base (see RewardSeed, RewardKindOf) as
// dataset episode index. Unlike RecordEpisode it also renders the frame after the last
// action (so a solved task is visible in the last frame; its action row is a still one), and
// it labels the episode:
//
//   - expert: the noisy expert; success from World.Success, decision step the first frame
//     showing success (the last frame unless Config.SuccessTail records more after it), or
//     the last frame when the expert failed.
//   - failed:MODE: the expert perturbed from step k on (k uniform in the first two thirds of
//     the noise-free expert's solution); success from World.Success (a perturbed expert can
//     still succeed), decision step the success frame, or k.
//   - adversarial:REWRITE: the frames of expert episode g-2 with the instruction rewritten;
//     the rewrite is checked false in every recorded state, so success is false; decision
//     step 0 (false from the start).
//
// It is a deterministic function of (cfg, base, g, eval).
func RecordRewardEpisode(cfg Config, base uint64, g int, eval bool, index int) (lerobot.Episode, error) {
	seed := RewardSeed(base, g, eval)
	w, err := NewWorld(cfg, seed)
	if err != nil {
		return lerobot.Episode{}, fmt.Errorf("sim: record reward episode %d: %w", index, err)
	}
	kind := RewardKindOf(g)
	rng := data.NewRand(seed ^ 0xe4be47c0ffee) // the expert's stream, as RecordEpisode's
	perturb := data.NewRand(mix(seed ^ uint64(g)<<1 ^ 0x9e3779b9))
	mode, k := "", 0
	if kind == KindFailed {
		mode = FailureModes[perturb.IntN(len(FailureModes))]
		k = perturb.IntN(max(1, 2*w.solveLength()/3))
	}
	wrong := -1
	if mode == "wrong_target" {
		if d := w.distractors(); len(d) > 0 {
			wrong = d[perturb.IntN(len(d))]
		} else {
			mode = "early_stop"
		}
	}
	ang := perturb.Float64() * 2 * math.Pi
	driftX, driftY := 0.9*math.Cos(ang), 0.9*math.Sin(ang)

	cams := w.Cameras()
	ep := lerobot.Episode{Index: index, Seed: seed, Task: w.instr, Family: w.family, Size: cfg.ImageSize,
		Cameras: cams, Frames: make([][]float32, len(cams)), DecisionStep: -1}
	fs := cfg.ImageSize * cfg.ImageSize * 3
	var states []*World // adversarial: every recorded state, to check the rewrite against
	frame := func(a []float32) {
		for c, cam := range cams {
			n := len(ep.Frames[c])
			ep.Frames[c] = slices.Grow(ep.Frames[c], fs)[:n+fs]
			w.Render(ep.Frames[c][n:], cam)
		}
		ep.State = append(ep.State, w.State())
		ep.Action = append(ep.Action, a)
		if kind == KindAdversarial {
			states = append(states, w.clone())
		}
	}
	stopped := -1
	x0, y0 := w.gx, w.gy // where the gripper started: a success tail heads back there
	for !w.Done() && (stopped < 0 || w.steps < stopped+earlyStopTail) {
		t := w.steps
		var a []float32
		switch {
		case mode == "" || t < k:
			a, _ = w.ExpertWithIntent(rng)
		case mode == "noise":
			a = w.expertAction()
			noisy(a, 0.9, rng)
		case mode == "drift":
			a, _ = w.ExpertWithIntent(rng)
			a[0] = float32(clamp(float64(a[0])+driftX, -1, 1))
			a[1] = float32(clamp(float64(a[1])+driftY, -1, 1))
		case mode == "wrong_target":
			a = w.expertFor(wrong)
			noisy(a, cfg.ExpertNoise, rng)
		case mode == "early_stop":
			if stopped < 0 {
				stopped = t
			}
			a = act(0, 0, false)
		}
		frame(a)
		w.Step(a)
	}
	decision := ep.Len() // the frame recorded next: the first that shows success, if any
	if w.Success() {
		for range cfg.SuccessTail {
			dx, dy, _, _ := w.toward(x0, y0)
			a := act(dx, dy, w.closed)
			next := w.clone()
			if next.advance(a); !next.Success() {
				break // the tail never undoes the task
			}
			frame(a) // the state before a, as every frame
			w = next
		}
	}
	frame(act(0, 0, w.closed))
	ep.Success = w.Success()
	switch {
	case ep.Success:
		ep.DecisionStep = decision // the first frame that shows success (the last one without a tail)
	case kind == KindFailed:
		ep.DecisionStep = min(k, ep.Len()-1)
	default:
		ep.DecisionStep = ep.Len() - 1
	}
	ep.Kind = kind
	if mode != "" {
		ep.Kind = KindFailed + ":" + mode
	}
	if kind == KindAdversarial {
		r, ok := w.adversarialRewrite(perturb, states)
		if !ok {
			return lerobot.Episode{}, fmt.Errorf("sim: reward episode %d (seed %d): no adversarial rewrite of %q is false", index, seed, w.instr)
		}
		ep.Task, ep.Family, ep.Kind, ep.Success, ep.DecisionStep = r.instruction(), r.family, KindAdversarial+":"+r.how, false, 0
	}
	return ep, nil
}

// noisy adds Gaussian noise of standard deviation s to a's dx and dy.
func noisy(a []float32, s float64, rng *rand.Rand) {
	a[0] = float32(clamp(float64(a[0])+s*rng.NormFloat64(), -1, 1))
	a[1] = float32(clamp(float64(a[1])+s*rng.NormFloat64(), -1, 1))
}

// solveLength is how many steps the noise-free expert needs from the current state (at most
// MaxSteps).
func (w *World) solveLength() int {
	c := w.clone()
	if c.family == "pick_any" && c.choice < 0 {
		c.choice = c.target
	}
	n := 0
	for !c.Done() {
		c.Step(c.expertAction())
		n++
	}
	return n
}

// distractors are the objects no instruction of this task is about.
func (w *World) distractors() []int {
	var out []int
	for i := range w.objs {
		if i != w.target && i != w.twin {
			out = append(out, i)
		}
	}
	return out
}

// expertFor is the noise-free expert's action as if object j were the target.
func (w *World) expertFor(j int) []float32 {
	t, ch := w.target, w.choice
	w.target = j
	if w.family == "pick_any" {
		w.choice = j
	}
	a := w.expertAction()
	w.target, w.choice = t, ch
	return a
}

// rewrite is an instruction of another task in the same scene. target and bowl are -1 when
// the object or bowl it names is not in the scene.
type rewrite struct {
	how          string // one of Rewrites
	family       string
	color, shape string // the object named
	target       int
	bowlColor    string
	bowl         int
	edge         string
}

func (r rewrite) instruction() string {
	what := r.color + " " + r.shape
	switch r.family {
	case "place":
		return "put the " + what + " in the " + r.bowlColor + " bowl"
	case "push":
		return "push the " + what + " to the " + r.edge + " edge"
	case "pick_any":
		return "pick up a " + what
	}
	return "pick up the " + what
}

// succeeds reports whether the rewritten task is solved in w's state, by World.Success, for
// any object of the colour and shape it names (pick_any scenes hold two).
func (w *World) succeeds(r rewrite) bool {
	if r.target < 0 || (r.family == "place" && r.bowl < 0) {
		return false // it names something not in the scene
	}
	for i, o := range w.objs {
		if o.Color != r.color || o.Shape != r.shape {
			continue
		}
		c := w.clone()
		c.family, c.target, c.twin, c.bowl, c.edge = r.family, i, -1, max(r.bowl, 0), r.edge
		if c.Success() {
			return true
		}
	}
	return false
}

// objectOf is the index of an object of that colour and shape, or -1.
func (w *World) objectOf(color, shape string) int {
	return slices.IndexFunc(w.objs, func(o object) bool { return o.Color == color && o.Shape == shape })
}

func (w *World) bowlOf(color string) int {
	return slices.IndexFunc(w.bowls, func(b bowl) bool { return b.Color == color })
}

// rewrites lists the candidate rewrites of the task by kind, in a fixed order.
func (w *World) rewrites() map[string][]rewrite {
	t := w.objs[w.target]
	fam := w.family // pick_any rewrites keep "pick up a …": the article alone must not give them away
	base := rewrite{family: fam, color: t.Color, shape: t.Shape, target: w.target, bowl: -1, edge: w.edge}
	if w.family == "place" {
		base.bowl, base.bowlColor = w.bowl, w.bowls[w.bowl].Color
	}
	out := map[string][]rewrite{}
	for _, i := range w.distractors() {
		if o := w.objs[i]; o.Color != t.Color || o.Shape != t.Shape {
			r := base
			r.how, r.color, r.shape, r.target = "object", o.Color, o.Shape, i
			out[r.how] = append(out[r.how], r)
		}
	}
	for _, c := range w.cfg.colors() {
		if c != t.Color {
			r := base
			r.how, r.color, r.target = "colour", c, w.objectOf(c, t.Shape)
			out[r.how] = append(out[r.how], r)
		}
	}
	switch w.family {
	case "place":
		for _, c := range w.cfg.colors() {
			if c != base.bowlColor {
				r := base
				r.how, r.bowlColor, r.bowl = "receptacle", c, w.bowlOf(c)
				out[r.how] = append(out[r.how], r)
			}
		}
	case "push":
		for _, e := range edges {
			if e != w.edge {
				r := base
				r.how, r.edge = "receptacle", e
				out[r.how] = append(out[r.how], r)
			}
		}
	}
	for _, f := range []string{"pick", "place", "push"} {
		if f == fam || (f == "pick" && fam == "pick_any") {
			continue
		}
		if f == "place" {
			for i, b := range w.bowls {
				r := base
				r.how, r.family, r.bowl, r.bowlColor = "family", f, i, b.Color
				out[r.how] = append(out[r.how], r)
			}
			continue
		}
		for _, e := range edges {
			r := base
			r.how, r.family, r.edge = "family", f, e
			if f == "pick" {
				r.edge = ""
			}
			out[r.how] = append(out[r.how], r)
			if f == "pick" {
				break
			}
		}
	}
	return out
}

// adversarialRewrite draws a rewrite kind uniformly among those with a candidate that is false
// in every one of states (so no frame of the video shows it accomplished), then one such
// candidate uniformly.
func (w *World) adversarialRewrite(rng *rand.Rand, states []*World) (rewrite, bool) {
	cands := w.rewrites()
	false_ := map[string][]rewrite{}
	var hows []string
	for _, how := range Rewrites {
		for _, r := range cands[how] {
			if !slices.ContainsFunc(states, func(s *World) bool { return s.succeeds(r) }) {
				false_[how] = append(false_[how], r)
			}
		}
		if len(false_[how]) > 0 {
			hows = append(hows, how)
		}
	}
	if len(hows) == 0 {
		return rewrite{}, false
	}
	list := false_[hows[rng.IntN(len(hows))]]
	return list[rng.IntN(len(list))], true
}

// RewardOptions configure GenerateReward (see GenerateOptions); Eval draws the held-out
// worlds (EvalSeed) instead of the training ones.
type RewardOptions struct {
	GenerateOptions
	Eval bool
}

// GenerateReward records reward episodes (RecordRewardEpisode) of global indices
// ShardRange(Episodes, Shard, Shards) with a pool of workers and hands each to w, as Generate
// does; GenerateResult.Solved counts the successful episodes.
func GenerateReward(cfg Config, opts RewardOptions, w EpisodeWriter) (GenerateResult, error) {
	return generate(cfg, opts.GenerateOptions, w, func(g, index int) (lerobot.Episode, error) {
		return RecordRewardEpisode(cfg, opts.Seed, g, opts.Eval, index)
	})
}
