package policy

import (
	"fmt"
	"math"
	"slices"
)

// Chunking modes: how a connection turns the policy's overlapping action chunks into one action
// per observation. They are the vla-eval harness's PredictModelServer action_ensemble strategies
// (allenai/vla-evaluation-harness src/vla_eval/model_servers/chunking.py ActionChunkBuffer): a
// new chunk is laid over the actions of the previous ones not yet executed, the overlap blended
// action by action, the rest appended.
const (
	ChunkNewest  = "newest"  // the new chunk replaces what is left (execute-k)
	ChunkAverage = "average" // (old + new) / 2 on the overlap
	ChunkEMA     = "ema"     // w·new + (1-w)·old on the overlap, w = Chunking.EMAWeight
	// ChunkRTC is real-time chunking ("Real-Time Execution of Action Chunking Flow Policies", Black
	// et al., arXiv:2506.07339): the new chunk is sampled as an inpainting of the actions left
	// (an Inpainter, a flow policy guided toward them), then replaces them as newest does.
	ChunkRTC = "rtc"
)

// RTC's mask schedules over the overlap (Physical-Intelligence/real-time-chunking-kinetix
// src/model.py get_prefix_weights; LeRobot's RTCAttentionSchedule).
const (
	ScheduleExp    = "exp"    // the paper's Eq. 5: c·(e^c − 1)/(e − 1), c decaying linearly
	ScheduleLinear = "linear" // c
	ScheduleOnes   = "ones"   // 1 over the whole overlap
	ScheduleZeros  = "zeros"  // 1 on the first Delay actions only (hard masking)
)

// RTC defaults: the kinetix evaluation's (src/eval_flow.py RealtimeMethodConfig).
const (
	DefaultMaxGuidance = 5.0
	DefaultSchedule    = ScheduleExp
)

// DefaultEMAWeight is the harness's default ema_alpha.
const DefaultEMAWeight = 0.5

// Chunking selects how an executor of chunks (a served connection, a closed-loop episode) turns
// them into actions; each keeps its own ChunkBuffer. The policy is queried once Spec.Execute
// actions of the last chunk have been executed (or the buffer is empty): with newest that is plain
// execute-k; with average and ema the rest of the chunk stays buffered and is blended with the
// next one. (The harness queries only when its buffer
// is empty, so its blending acts only on chunks longer than what it executes; reel re-queries every
// Spec.Execute actions so that chunks overlap by Horizon - Execute actions.)
type Chunking struct {
	Mode      string  // ChunkNewest (default), ChunkAverage, ChunkEMA or ChunkRTC
	EMAWeight float64 // ChunkEMA: weight of the new chunk's action, in (0, 1] (default DefaultEMAWeight)
	// Delay is the inference delay d in actions: the robot executes the first d actions of what
	// is buffered while the next chunk is computed, so the first d actions of a new chunk are
	// replaced by those (the kinetix evaluation's execution; the policy sees the observation of the
	// step it was queried at). 0 is synchronous. Newest with a delay is the paper's naive
	// asynchronous execution; RTC freezes these d actions in its guidance.
	Delay int
	// RTCHorizon is how many of the actions left RTC guides toward (LeRobot's execution_horizon,
	// the end of the paper's overlap, H − s); 0: all of them.
	RTCHorizon int
	// MaxGuidance is RTC's β, the clip of the guidance weight (default DefaultMaxGuidance).
	MaxGuidance float64
	// Schedule is RTC's mask over the overlap after the frozen actions (default DefaultSchedule).
	Schedule string
}

// WithDefaults fills in zero fields.
func (c Chunking) WithDefaults() Chunking {
	if c.Mode == "" {
		c.Mode = ChunkNewest
	}
	if c.EMAWeight == 0 {
		c.EMAWeight = DefaultEMAWeight
	}
	if c.MaxGuidance == 0 {
		c.MaxGuidance = DefaultMaxGuidance
	}
	if c.Schedule == "" {
		c.Schedule = DefaultSchedule
	}
	return c
}

// Check reports a mode, weight or RTC setting that is not one of the above.
func (c Chunking) Check() error {
	c = c.WithDefaults()
	switch c.Mode {
	case ChunkNewest, ChunkAverage, ChunkEMA, ChunkRTC:
	default:
		return fmt.Errorf("chunking %q: want newest, average, ema or rtc", c.Mode)
	}
	switch c.Schedule {
	case ScheduleExp, ScheduleLinear, ScheduleOnes, ScheduleZeros:
	default:
		return fmt.Errorf("rtc schedule %q: want exp, linear, ones or zeros", c.Schedule)
	}
	switch {
	case !(c.EMAWeight > 0 && c.EMAWeight <= 1):
		return fmt.Errorf("ema weight %g: want a value in (0, 1]", c.EMAWeight)
	case c.Delay < 0:
		return fmt.Errorf("inference delay %d: want ≥ 0 actions", c.Delay)
	case c.RTCHorizon < 0:
		return fmt.Errorf("rtc horizon %d: want ≥ 0 actions (0: all that are left)", c.RTCHorizon)
	case !(c.MaxGuidance > 0) || math.IsInf(c.MaxGuidance, 0):
		return fmt.Errorf("max guidance %g: want a finite value > 0", c.MaxGuidance)
	}
	return nil
}

// CheckChunks reports settings that do not fit chunks of horizon actions executed execute at a
// time: the actions executed while the next chunk is computed come from what is left of the
// last one, so the delay is at most execute and less than the horizon (the kinetix evaluation's
// condition).
func (c Chunking) CheckChunks(horizon, execute int) error {
	if err := c.Check(); err != nil {
		return err
	}
	if c.Delay > 0 && (c.Delay > execute || c.Delay >= horizon) {
		return fmt.Errorf("inference delay %d: want at most execute (%d) and less than the horizon (%d)", c.Delay, execute, horizon)
	}
	return nil
}

// PrefixWeights is RTC's W over a chunk of total actions: 1 before start (the actions executed
// while the chunk is computed), the schedule decaying from start to end (exclusive), 0 from end
// on; start is cut to end. It is the kinetix code's get_prefix_weights, which for exp is the
// paper's Eq. 5 with start = d and end = H − s.
func PrefixWeights(start, end, total int, schedule string) []float32 {
	start = min(start, end)
	w := make([]float32, total)
	for i := range w {
		var v float64
		switch schedule {
		case ScheduleOnes:
			v = 1
		case ScheduleZeros:
			v = b2f(i < start)
		default: // linear, exp
			v = min(1, max(0, float64(start-1-i)/float64(end-start+1)+1))
			if schedule == ScheduleExp {
				v = v * math.Expm1(v) / (math.E - 1)
			}
		}
		if i >= end {
			v = 0
		}
		w[i] = float32(v)
	}
	return w
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// blend is the ensemble of one overlapping action.
func (c Chunking) blend(old, new []float32) []float32 {
	switch c.Mode {
	case ChunkAverage:
		out := make([]float32, len(new))
		for i := range out {
			out[i] = (old[i] + new[i]) / 2
		}
		return out
	case ChunkEMA:
		w := float32(c.EMAWeight)
		out := make([]float32, len(new))
		for i := range out {
			out[i] = w*new[i] + (1-w)*old[i]
		}
		return out
	}
	return new
}

// ChunkBuffer is one connection's or episode's actions not yet executed.
type ChunkBuffer struct {
	c       Chunking
	execute int // actions served from a chunk before the next query (0: the whole chunk)
	queue   [][]float32
	served  int // actions served since the last chunk was pushed
	// from[i] numbers the chunk queue[i] came from (kept actions keep their chunk's number,
	// blended ones take the new chunk's); a boundary is where the number served changes.
	from     []int
	pushes   int
	lastFrom int
	last     []float32
	jumps    Jumps
	horizon  int // length of the chunks pushed
}

// Jumps tallies the action jumps at chunk boundaries: wherever the action served comes from
// another chunk than the action served just before it (within an episode), the mean absolute
// difference of the two over the action's values. With an inference delay as long as execute,
// a chunk's first actions served are those kept at the next query.
type Jumps struct {
	Sum float64 // sum of the jumps
	N   int     // boundaries
}

// Add accumulates o.
func (j *Jumps) Add(o Jumps) { j.Sum, j.N = j.Sum+o.Sum, j.N+o.N }

// Mean is the mean jump (0 without boundaries).
func (j Jumps) Mean() float64 {
	if j.N == 0 {
		return 0
	}
	return j.Sum / float64(j.N)
}

// Record adds the jump from prev to next.
func (j *Jumps) Record(prev, next []float32) {
	if len(prev) == 0 || len(prev) != len(next) {
		return
	}
	var s float64
	for i := range next {
		s += math.Abs(float64(next[i] - prev[i]))
	}
	j.Sum += s / float64(len(next))
	j.N++
}

// NewChunkBuffer returns an empty buffer that asks for a new chunk every execute actions (0: when
// empty).
func NewChunkBuffer(c Chunking, execute int) *ChunkBuffer {
	return &ChunkBuffer{c: c.WithDefaults(), execute: execute}
}

// Due reports whether the policy must be queried before the next action.
func (b *ChunkBuffer) Due() bool {
	return len(b.queue) == 0 || (b.execute > 0 && b.served >= b.execute)
}

// Guide is what RTC's next chunk (as long as the chunks pushed) continues: the actions left, and
// their weights (PrefixWeights with start the delay, end the actions left or RTCHorizon). An empty
// buffer guides nothing.
func (b *ChunkBuffer) Guide() Guide {
	horizon := b.horizon
	end := min(len(b.queue), horizon)
	if b.c.RTCHorizon > 0 {
		end = min(end, b.c.RTCHorizon)
	}
	return Guide{Prev: b.queue[:min(len(b.queue), horizon)], Weights: PrefixWeights(b.c.Delay, end, horizon, b.c.Schedule)}
}

// Push lays chunk over the buffered actions: the first Delay buffered actions kept (they are
// executed while the chunk is computed), then the overlap blended, the rest of chunk appended. A
// buffer longer than chunk keeps its tail (the harness's documented behaviour).
func (b *ChunkBuffer) Push(chunk [][]float32) {
	keep := min(b.c.Delay, len(b.queue), len(chunk))
	b.horizon = len(chunk)
	old, chunk := b.queue[keep:], chunk[keep:]
	overlap := min(len(old), len(chunk))
	q := make([][]float32, 0, keep+max(len(old), len(chunk)))
	q = append(q, b.queue[:keep]...)
	from := append(make([]int, 0, cap(q)), b.from[:keep]...)
	for i := range overlap {
		if len(old[i]) != len(chunk[i]) { // a policy's action size never changes; be safe
			q = append(q, chunk[i])
			continue
		}
		q = append(q, b.c.blend(old[i], chunk[i]))
	}
	q = append(q, chunk[overlap:]...)
	b.pushes++
	for len(from) < len(q) {
		from = append(from, b.pushes)
	}
	if len(old) > len(chunk) {
		q = append(q, old[len(chunk):]...)
		from = append(from, b.from[keep+len(chunk):]...)
	}
	b.queue, b.from, b.served = q, from, 0
}

// Pop returns the next action; the buffer must not be Due.
func (b *ChunkBuffer) Pop() []float32 {
	a, from := b.queue[0], b.from[0]
	b.queue, b.from = slices.Delete(b.queue, 0, 1), slices.Delete(b.from, 0, 1)
	if from != b.lastFrom && b.last != nil {
		b.jumps.Record(b.last, a)
	}
	b.served++
	b.last, b.lastFrom = a, from
	return a
}

// Jumps is the tally of action jumps at the chunk boundaries served so far.
func (b *ChunkBuffer) Jumps() Jumps { return b.jumps }

// Reset forgets the buffered actions (a new episode); the jumps stay counted.
func (b *ChunkBuffer) Reset() { b.queue, b.from, b.served, b.last = nil, nil, 0, nil }

// Guide is what one observation's new chunk continues (real-time chunking).
type Guide struct {
	// Prev holds the committed actions, Prev[k] aligned with the new chunk's action k (raw
	// units); fewer than the horizon leave the rest unguided.
	Prev [][]float32
	// Weights is the guidance weight of each of the new chunk's actions (PrefixWeights).
	Weights []float32
}

// Guides reports whether g guides any action.
func (g Guide) Guides() bool {
	return slices.ContainsFunc(g.Weights, func(w float32) bool { return w != 0 })
}

// Inpainter is a Policy that can sample chunks continuing committed actions: a flow policy whose
// sampling is guided toward them (real-time chunking). Implementations: a trained flow-matching
// checkpoint (tasks).
type Inpainter interface {
	Policy
	// Inpaints reports whether this policy can be guided (a chunk-regression policy cannot).
	Inpaints() bool
	// ActInpainting is Act with each observation's chunk guided by guides[i], the guidance
	// weight clipped at maxGuidance (β).
	ActInpainting(obs []Observation, guides []Guide, maxGuidance float64) ([][][]float32, error)
}

// JumpMeter is a Policy executor that counts the action jumps at its chunk boundaries (Ensembled);
// closed-loop evaluation asks for it by type assertion.
type JumpMeter interface {
	Jumps() Jumps
}

// Ensembled runs p behind one ChunkBuffer per episode: each call answers every observation with a
// chunk of one action, querying p (in one batch) only for the episodes whose buffer is due. An
// evaluation of it executes one action per call (Horizon 1, Execute 1), as it does for a policy
// server that buffers chunks itself.
type Ensembled struct {
	p       Policy
	c       Chunking
	execute int
	buffers []*ChunkBuffer
}

var (
	_ EpisodePolicy = (*Ensembled)(nil)
	_ JumpMeter     = (*Ensembled)(nil)
)

// Ensemble wraps p (whose chunks are to be executed execute actions at a time) with chunking c.
func Ensemble(p Policy, c Chunking, execute int) *Ensembled {
	return &Ensembled{p: p, c: c.WithDefaults(), execute: execute}
}

// StartEpisodes implements EpisodePolicy: n empty buffers (and p's own episodes, if it has any).
// Under ChunkRTC p must be an Inpainter that Inpaints.
func (e *Ensembled) StartEpisodes(n int) error {
	if err := e.c.Check(); err != nil {
		return err
	}
	if e.execute > 0 && e.c.Delay > e.execute {
		return fmt.Errorf("inference delay %d: want at most the %d actions executed of each chunk", e.c.Delay, e.execute)
	}
	if e.c.Mode == ChunkRTC {
		if ip, ok := e.p.(Inpainter); !ok || !ip.Inpaints() {
			return fmt.Errorf("chunking rtc: the policy is not a flow-matching policy (it cannot be guided); use newest, average or ema")
		}
	}
	e.buffers = make([]*ChunkBuffer, n)
	for i := range e.buffers {
		e.buffers[i] = NewChunkBuffer(e.c, e.execute)
	}
	if ep, ok := e.p.(EpisodePolicy); ok {
		return ep.StartEpisodes(n)
	}
	return nil
}

// Act implements Policy, obs[i] being episode i of len(obs) started on the first call.
func (e *Ensembled) Act(obs []Observation) ([][][]float32, error) {
	if e.buffers == nil {
		if err := e.StartEpisodes(len(obs)); err != nil {
			return nil, err
		}
	}
	episodes := make([]int, len(obs))
	for i := range episodes {
		episodes[i] = i
	}
	return e.ActEpisodes(episodes, obs)
}

// Jumps implements JumpMeter: the jumps at the chunk boundaries of every episode so far.
func (e *Ensembled) Jumps() Jumps {
	var j Jumps
	for _, b := range e.buffers {
		j.Add(b.Jumps())
	}
	return j
}

// query asks p for the chunks of the due episodes: under ChunkRTC guided by their buffers (plain
// Act when no buffer has actions left to continue).
func (e *Ensembled) query(episodes []int, obs []Observation) ([][][]float32, error) {
	if e.c.Mode == ChunkRTC {
		ip := e.p.(Inpainter)
		guides := make([]Guide, len(episodes))
		guided := false
		for k, i := range episodes {
			guides[k] = e.buffers[i].Guide()
			guided = guided || guides[k].Guides()
		}
		if guided {
			return ip.ActInpainting(obs, guides, e.c.MaxGuidance)
		}
	}
	if ep, ok := e.p.(EpisodePolicy); ok {
		return ep.ActEpisodes(episodes, obs)
	}
	return e.p.Act(obs)
}

// ActEpisodes implements EpisodePolicy.
func (e *Ensembled) ActEpisodes(episodes []int, obs []Observation) ([][][]float32, error) {
	if len(episodes) != len(obs) {
		return nil, fmt.Errorf("ensemble: %d episodes for %d observations", len(episodes), len(obs))
	}
	var dueEp []int
	var dueObs []Observation
	var duePos []int
	for k, i := range episodes {
		if i < 0 || i >= len(e.buffers) {
			return nil, fmt.Errorf("ensemble: episode %d outside the %d started", i, len(e.buffers))
		}
		if e.buffers[i].Due() {
			dueEp, dueObs, duePos = append(dueEp, i), append(dueObs, obs[k]), append(duePos, k)
		}
	}
	if len(dueObs) > 0 {
		chunks, err := e.query(dueEp, dueObs)
		if err != nil {
			return nil, err
		}
		if len(chunks) != len(dueObs) {
			return nil, fmt.Errorf("policy returned %d action chunks for %d observations", len(chunks), len(dueObs))
		}
		for j, ch := range chunks {
			if len(ch) == 0 {
				return nil, fmt.Errorf("policy returned an empty action chunk for observation %d", duePos[j])
			}
			e.buffers[dueEp[j]].Push(ch)
		}
	}
	out := make([][][]float32, len(obs))
	for k, i := range episodes {
		out[k] = [][]float32{e.buffers[i].Pop()}
	}
	return out, nil
}
