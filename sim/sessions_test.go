package sim

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/policy"
)

// expertSession plays each episode with the scripted expert on its own copy of the world (the
// task's seed), like a remote server holding a per-connection state. fail(episode, step) makes it
// fail there.
type expertSession struct {
	t      *testing.T
	cfg    Config
	w      *World
	ep     int
	steps  int
	starts []map[string]any
	ends   []map[string]any
	fail   func(ep, step int) error
	dim    int // action values returned (ActionDim when 0)
	closed bool
	failed bool // fail returned an error: the session must not be used again
	open   *atomic.Int32
}

type reasoned struct{ reason string }

func (r reasoned) Error() string         { return "failed: " + r.reason }
func (r reasoned) FailureReason() string { return r.reason }

func (s *expertSession) StartEpisode(task map[string]any) error {
	require.False(s.t, s.failed, "a session is not reused after a failure")
	s.starts = append(s.starts, task)
	w, err := NewWorld(s.cfg, task["seed"].(uint64))
	require.NoError(s.t, err)
	require.Equal(s.t, w.Instruction(), task["name"])
	require.Equal(s.t, w.Family(), task["suite"])
	s.w, s.ep, s.steps = w, task["episode_idx"].(int), 0
	return nil
}

func (s *expertSession) Act(obs policy.Observation) ([][]float32, error) {
	require.Equal(s.t, s.w.State(), obs.State, "the session sees its own world")
	if s.fail != nil {
		if err := s.fail(s.ep, s.steps); err != nil {
			s.failed = true
			return nil, err
		}
	}
	s.steps++
	a := s.w.Expert(data.NewRand(uint64(s.ep*1000 + s.steps)))
	s.w.Step(a)
	if s.dim > 0 {
		a = make([]float32, s.dim)
	}
	return [][]float32{a}, nil
}

func (s *expertSession) EndEpisode(result map[string]any) error {
	s.ends = append(s.ends, result)
	return nil
}

func (s *expertSession) Close() error {
	if !s.closed {
		s.closed = true
		s.open.Add(-1)
	}
	return nil
}

// sessions counts the sessions a factory opened and the most open at once.
type sessions struct {
	mu       sync.Mutex
	all      []*expertSession
	open     atomic.Int32
	maxOpen  int32
	dialErr  func(n int) error
	make     func() *expertSession
	attempts int
}

func (f *sessions) newSession() (Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts++
	if f.dialErr != nil {
		if err := f.dialErr(f.attempts); err != nil {
			return nil, err
		}
	}
	s := f.make()
	s.open = &f.open
	f.all = append(f.all, s)
	if n := f.open.Add(1); n > f.maxOpen {
		f.maxOpen = n
	}
	return s, nil
}

func sessionConfig() (Config, EvalConfig) {
	return DefaultConfig(), EvalConfig{Episodes: 12, Seed: 5, Horizon: 1, Execute: 1}
}

// The expert, one action per answer, solves every episode, with each worker's session playing
// one episode after another, at most `concurrency` sessions open at once; the harness's task
// and result dicts reach the session.
func TestEvaluateSessionsExpert(t *testing.T) {
	cfg, ec := sessionConfig()
	f := &sessions{make: func() *expertSession { return &expertSession{t: t, cfg: cfg} }}
	res, err := EvaluateSessions(cfg, ec, nil, f.newSession, 3)
	require.NoError(t, err)
	assert.Equal(t, 12, res.N)
	assert.Equal(t, 1.0, res.Success)
	assert.Zero(t, res.Failed)
	assert.False(t, res.Partial)
	assert.LessOrEqual(t, f.maxOpen, int32(3))
	assert.LessOrEqual(t, len(f.all), 3, "a session plays episode after episode")
	assert.Zero(t, f.open.Load(), "every session is closed")
	played := 0
	for _, s := range f.all {
		played += len(s.starts)
		require.Len(t, s.ends, len(s.starts))
		for _, e := range s.ends {
			assert.Equal(t, map[string]any{"success": true}, e["metrics"])
			assert.Greater(t, e["steps"], 0)
		}
	}
	assert.Equal(t, 12, played)
	for k, o := range res.Episodes {
		assert.Equal(t, k, o.Index)
		assert.Equal(t, EvalSeed(5, int64(k)), o.Seed)
		assert.True(t, o.Success)
		assert.Equal(t, FamilyOf(o.Instruction), o.Family)
	}
	// The same episodes as the lockstep evaluator plays: the same worlds, the same outcome.
	lock, err := Evaluate(cfg, ec, newExpertPolicy(t, cfg, ec))
	require.NoError(t, err)
	assert.Equal(t, lock.Success, res.Success)
}

// One episode's failure (a timeout, a broken connection, actions of the wrong size) fails that
// episode alone, with its reason; the session is replaced and the others run on.
func TestEvaluateSessionsIsolatesFailures(t *testing.T) {
	cfg, ec := sessionConfig()
	f := &sessions{}
	f.make = func() *expertSession {
		return &expertSession{t: t, cfg: cfg, fail: func(ep, step int) error {
			switch {
			case ep == 2 && step == 3:
				return reasoned{"timeout"}
			case ep == 7 && step == 0:
				return errors.New("policy server: observation.images has no camera")
			}
			return nil
		}}
	}
	shard := []int{1, 2, 7, 9}
	res, err := EvaluateSessions(cfg, ec, shard, f.newSession, 2)
	require.NoError(t, err)
	require.Len(t, res.Episodes, 4)
	assert.Equal(t, 2, res.Failed)
	byIndex := map[int]EpisodeOutcome{}
	for _, o := range res.Episodes {
		byIndex[o.Index] = o
	}
	assert.Equal(t, "timeout", byIndex[2].FailureReason)
	assert.Equal(t, 3, byIndex[2].Steps)
	assert.Equal(t, "exception", byIndex[7].FailureReason)
	assert.Contains(t, byIndex[7].FailureDetail, "no camera")
	assert.True(t, byIndex[1].Success && byIndex[9].Success)
	assert.Equal(t, 0.5, res.Success, "failed episodes count as failures")
	assert.GreaterOrEqual(t, len(f.all), 3, "a failed session is replaced")
	assert.Zero(t, f.open.Load())

	// Actions the simulator cannot take fail the episode with a clear detail.
	f = &sessions{make: func() *expertSession { return &expertSession{t: t, cfg: cfg, dim: 7} }}
	res, err = EvaluateSessions(cfg, ec, []int{0}, f.newSession, 1)
	require.NoError(t, err)
	assert.Equal(t, "exception", res.Episodes[0].FailureReason)
	assert.Contains(t, res.Episodes[0].FailureDetail, "has 7 values, the simulator takes 3")
}

// A server that cannot be reached stops the workers that fail to dial; the episodes never run
// are failures too and the result is partial. A dial that fails once costs that episode only.
func TestEvaluateSessionsUnreachable(t *testing.T) {
	cfg, ec := sessionConfig()
	f := &sessions{make: func() *expertSession { return &expertSession{t: t, cfg: cfg} },
		dialErr: func(int) error { return reasoned{"server_unreachable"} }}
	res, err := EvaluateSessions(cfg, ec, nil, f.newSession, 4)
	require.NoError(t, err)
	assert.True(t, res.Partial)
	assert.Equal(t, 12, res.Failed)
	for _, o := range res.Episodes {
		assert.Equal(t, "server_unreachable", o.FailureReason)
		assert.NotEmpty(t, o.Instruction)
	}
	assert.Equal(t, 4, f.attempts, "each worker tries once")

	f = &sessions{make: func() *expertSession { return &expertSession{t: t, cfg: cfg} },
		dialErr: func(n int) error {
			if n == 1 {
				return reasoned{"server_unreachable"}
			}
			return nil
		}}
	res, err = EvaluateSessions(cfg, ec, nil, f.newSession, 2)
	require.NoError(t, err)
	assert.False(t, res.Partial)
	assert.Equal(t, 1, res.Failed)

	_, err = EvaluateSessions(cfg, ec, []int{12}, f.newSession, 1)
	assert.ErrorContains(t, err, "episode 12 is not in [0, Episodes=12)")
	_, err = EvaluateSessions(cfg, ec, nil, f.newSession, 0)
	assert.ErrorContains(t, err, "concurrency")
}
