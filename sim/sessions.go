package sim

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/reelml/reel/policy"
)

// Session is a connection to a policy that plays one episode at a time, as a benchmark of the
// vla-evaluation-harness drives a model server: StartEpisode with the task (the harness's task
// dict: "name" the instruction, "suite" the task family, "episode_idx", "seed"), one Act per
// observation, EndEpisode with the result ({"metrics": {"success": bool}, "steps": n,
// "elapsed_sec": s}). After any error the session is closed and a new one dialled for the next
// episode. An error may carry the harness's failure reason through a FailureReason() string
// method (a remote policy's "timeout", "connection_closed", ...); others count as "exception".
type Session interface {
	StartEpisode(task map[string]any) error
	Act(obs policy.Observation) (actions [][]float32, err error)
	EndEpisode(result map[string]any) error
	Close() error
}

// EpisodeOutcome is one episode of EvaluateSessions.
type EpisodeOutcome struct {
	Index       int     // held-out episode index: the world of EvalSeed(Seed, Index)
	Seed        uint64  // the world's seed
	Family      string  // task family
	Instruction string  // the task's instruction
	Success     bool    // the world was solved (false for a failed episode)
	Steps       int     // actions executed
	Seconds     float64 // wall time of the episode
	// FailureReason and FailureDetail say why an episode failed, in the harness's terms
	// ("server_unreachable", "connection_closed", "timeout", "exception"); empty when it ran to
	// its end.
	FailureReason, FailureDetail string
}

// SessionsResult is the outcome of EvaluateSessions: the success rates (failed episodes count as
// failures) and every episode.
type SessionsResult struct {
	EvalResult
	Episodes []EpisodeOutcome // in the order they were asked for
	Failed   int              // episodes with a FailureReason
	// Partial: some episodes never ran because no session could be opened any more (they are
	// in Episodes as failures with reason server_unreachable).
	Partial bool
}

// reasonOf is an error's harness failure reason.
func reasonOf(err error) string {
	var r interface{ FailureReason() string }
	if errors.As(err, &r) && r.FailureReason() != "" {
		return r.FailureReason()
	}
	return "exception"
}

// EvaluateSessions plays the held-out worlds EvalSeed(ec.Seed, i) for i in episodes (all of
// 0..ec.Episodes-1 when nil) with up to concurrency sessions at once, each worker driving one
// world at a time through its own session and executing up to ec.Execute actions of each answer.
// Episodes are isolated: an episode whose session fails (an error reply, a timeout, a broken
// connection, actions of the wrong size) is recorded as a failure with its reason, the session
// is closed, and the worker dials a new one for its next episode. A worker that cannot dial
// stops; when every worker has stopped, the episodes left are recorded as unreachable and the
// result is Partial. Only invalid configurations return an error. Videos are not recorded.
func EvaluateSessions(cfg Config, ec EvalConfig, episodes []int, newSession func() (Session, error), concurrency int) (SessionsResult, error) {
	if err := ec.Validate(); err != nil {
		return SessionsResult{}, err
	}
	if err := cfg.Validate(); err != nil {
		return SessionsResult{}, err
	}
	if concurrency < 1 {
		return SessionsResult{}, fmt.Errorf("sim: evaluate sessions: concurrency must be ≥ 1, got %d", concurrency)
	}
	if episodes == nil {
		for i := range ec.Episodes {
			episodes = append(episodes, i)
		}
	}
	for _, i := range episodes {
		if i < 0 || i >= ec.Episodes {
			return SessionsResult{}, fmt.Errorf("sim: evaluate sessions: episode %d is not in [0, Episodes=%d)", i, ec.Episodes)
		}
	}
	out := make([]EpisodeOutcome, len(episodes))
	var mu sync.Mutex
	next, lastErr := 0, error(nil)
	take := func() int {
		mu.Lock()
		defer mu.Unlock()
		if next == len(episodes) {
			return -1
		}
		next++
		return next - 1
	}
	var wg sync.WaitGroup
	for range min(concurrency, len(episodes)) {
		wg.Go(func() {
			var sess Session
			defer func() {
				if sess != nil {
					sess.Close()
				}
			}()
			for k := take(); k >= 0; k = take() {
				if sess == nil {
					s, err := newSession()
					if err != nil {
						out[k] = failedEpisode(cfg, ec, episodes[k], reasonOf(err), err)
						mu.Lock()
						lastErr = err
						mu.Unlock()
						return // this worker stops; the others go on
					}
					sess = s
				}
				var err error
				out[k], err = playEpisode(cfg, ec, episodes[k], sess)
				if err != nil {
					sess.Close()
					sess = nil
				}
			}
		})
	}
	wg.Wait()
	res := SessionsResult{Episodes: out}
	for k := next; k < len(episodes); k++ { // never taken: every worker stopped
		out[k] = failedEpisode(cfg, ec, episodes[k], "server_unreachable", fmt.Errorf("not run: no session could be opened (%w)", lastErr))
		res.Partial = true
	}
	for _, o := range out {
		if o.FailureReason != "" {
			res.Failed++
		}
	}
	res.EvalResult = summarizeOutcomes(out)
	return res, nil
}

// failedEpisode records episode i as failed before it started.
func failedEpisode(cfg Config, ec EvalConfig, i int, reason string, err error) EpisodeOutcome {
	o := EpisodeOutcome{Index: i, Seed: EvalSeed(ec.Seed, int64(i)), FailureReason: reason, FailureDetail: err.Error()}
	if w, werr := NewWorld(cfg, o.Seed); werr == nil {
		o.Family, o.Instruction = w.family, w.instr
	}
	return o
}

// playEpisode runs episode i through sess. A non-nil error means the session failed (the
// outcome then says why) and must not be used again.
func playEpisode(cfg Config, ec EvalConfig, i int, sess Session) (EpisodeOutcome, error) {
	start := time.Now()
	o := EpisodeOutcome{Index: i, Seed: EvalSeed(ec.Seed, int64(i))}
	fail := func(err error) (EpisodeOutcome, error) {
		o.Success, o.FailureReason, o.FailureDetail = false, reasonOf(err), err.Error()
		o.Seconds = time.Since(start).Seconds()
		return o, err
	}
	w, err := NewWorld(cfg, o.Seed)
	if err != nil {
		o.FailureReason, o.FailureDetail = "exception", err.Error()
		return o, nil // the world, not the session, failed
	}
	o.Family, o.Instruction = w.family, w.instr
	task := map[string]any{"name": w.instr, "suite": w.family, "task_id": slices.Index(families, w.family), "episode_idx": i, "seed": o.Seed}
	if err := sess.StartEpisode(task); err != nil {
		return fail(err)
	}
	for !w.Done() {
		chunk, err := sess.Act(w.Observe())
		if err != nil {
			o.Steps = w.steps
			return fail(err)
		}
		if len(chunk) == 0 {
			o.Steps = w.steps
			return fail(fmt.Errorf("the policy answered step %d with no action", w.steps))
		}
		for t, a := range chunk[:min(len(chunk), ec.Execute)] {
			if len(a) != ActionDim {
				o.Steps = w.steps
				return fail(fmt.Errorf("action %d of the answer to step %d has %d values, the simulator takes %d", t, w.steps, len(a), ActionDim))
			}
			if w.Done() {
				break
			}
			w.Step(a)
		}
	}
	o.Success, o.Steps = w.Success(), w.steps
	o.Seconds = time.Since(start).Seconds()
	result := map[string]any{"metrics": map[string]any{"success": o.Success}, "steps": o.Steps, "elapsed_sec": math.Round(o.Seconds*1000) / 1000}
	if err := sess.EndEpisode(result); err != nil {
		return fail(err)
	}
	return o, nil
}

// summarizeOutcomes computes the overall and per-family results of played episodes.
func summarizeOutcomes(out []EpisodeOutcome) EvalResult {
	type tally struct{ n, ok, steps int }
	fam := map[string]*tally{}
	var all tally
	for _, o := range out {
		t := fam[o.Family]
		if t == nil {
			t = &tally{}
			fam[o.Family] = t
		}
		for _, t := range []*tally{t, &all} {
			t.n++
			t.steps += o.Steps
			if o.Success {
				t.ok++
			}
		}
	}
	rate := func(t *tally) FamilyResult {
		if t.n == 0 {
			return FamilyResult{Low: 0, High: 1}
		}
		lo, hi := Wilson(t.ok, t.n)
		return FamilyResult{float64(t.ok) / float64(t.n), lo, hi, t.n, float64(t.steps) / float64(t.n)}
	}
	res := EvalResult{FamilyResult: rate(&all), Families: map[string]FamilyResult{}}
	for f, t := range fam {
		res.Families[f] = rate(t)
	}
	return res
}
