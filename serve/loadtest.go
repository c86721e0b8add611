package serve

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/reelml/reel/policy"
)

// LoadTestConfig configures a load test of a policy server (BenchServe, RunLoadTest).
type LoadTestConfig struct {
	Sessions     int           // concurrent sessions (default 32)
	Duration     time.Duration // how long each configuration is loaded (default 60 s)
	EpisodeSteps int           // observations per episode, between episode_start and episode_end (default 50)
	ImageSize    int           // side of the square images sent (0: each camera's own size)
	Seed         uint64        // the images' pixels
	Timeout      time.Duration // a reply not received within it counts as dropped (default 30 s)
}

func (c LoadTestConfig) withDefaults() LoadTestConfig {
	if c.Sessions <= 0 {
		c.Sessions = 32
	}
	if c.Duration <= 0 {
		c.Duration = time.Minute
	}
	if c.EpisodeSteps <= 0 {
		c.EpisodeSteps = 50
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultActTimeout
	}
	return c
}

// LoadTestReport is the outcome of one load test.
type LoadTestReport struct {
	MaxBatch   int     `json:"max_batch"`   // the server's max_batch_size during the test
	Sessions   int     `json:"sessions"`    // concurrent sessions
	Seconds    float64 `json:"seconds"`     // duration of the test
	Replies    int     `json:"replies"`     // action replies received and checked
	Errors     int     `json:"errors"`      // error replies
	Dropped    int     `json:"dropped"`     // observations never answered (timeout, broken connection)
	WrongSeq   int     `json:"wrong_seq"`   // replies that did not echo their observation's seq
	CrossWired int     `json:"cross_wired"` // actions computed for another session or step
	P50MS      float64 `json:"p50_ms"`      // reply latency percentiles
	P90MS      float64 `json:"p90_ms"`
	P99MS      float64 `json:"p99_ms"`
	MaxMS      float64 `json:"max_ms"`
	Throughput float64 `json:"throughput"`   // replies per second, all sessions together
	Calls      int     `json:"policy_calls"` // Act calls of the policy
	MeanBatch  float64 `json:"mean_batch"`   // observations per Act call
}

// OK reports whether every observation got its own, correct reply.
func (r LoadTestReport) OK() bool {
	return r.Replies > 0 && r.Errors == 0 && r.Dropped == 0 && r.WrongSeq == 0 && r.CrossWired == 0
}

// tagPolicy wraps the served policy for a load test: the policy runs on every observation as
// usual, and each action of a chunk gets two values appended, the session and step written in
// the observation's instruction tag ("#session:step ..."), so the load client can tell that the
// answer it got was computed for its own observation.
type tagPolicy struct {
	p            policy.Policy
	calls, count atomic.Int64
}

func (t *tagPolicy) Act(obs []policy.Observation) ([][][]float32, error) {
	chunks, err := t.p.Act(obs)
	if err != nil {
		return nil, err
	}
	t.calls.Add(1)
	t.count.Add(int64(len(obs)))
	if len(chunks) != len(obs) {
		return chunks, nil // the server reports it
	}
	for i, o := range obs {
		var sess, step int
		if _, err := fmt.Sscanf(o.Instruction, "#%d:%d", &sess, &step); err != nil {
			sess, step = -1, -1
		}
		for k, a := range chunks[i] {
			chunks[i][k] = append(slices.Clip(a), float32(sess), float32(step))
		}
	}
	return chunks, nil
}

// Check forwards to the policy's own check.
func (t *tagPolicy) Check(obs policy.Observation) (policy.Observation, []string, error) {
	if c, ok := t.p.(policy.Checker); ok {
		return c.Check(obs)
	}
	return obs, nil, nil
}

// BenchServe serves p on 127.0.0.1 (a free port) with cfg and loads it with lc once for each
// max_batch_size in maxBatches, set through /config's setter between runs. The served actions
// carry two tag values (see tagPolicy) that the load client checks; cfg.Adapt is ignored.
func BenchServe(p policy.Policy, cfg Config, lc LoadTestConfig, maxBatches []int) ([]LoadTestReport, error) {
	if err := cfg.Spec.Validate(); err != nil {
		return nil, fmt.Errorf("bench serve: %w", err)
	}
	tp := &tagPolicy{p: p}
	cfg.Addr = "127.0.0.1:0"
	cfg.Adapt = AdaptOptions{}
	spec := cfg.Spec
	spec.ActionDim += 2
	cfg.Spec = spec
	srv := NewServer(tp, cfg)
	if err := srv.Listen(); err != nil {
		srv.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	var out []LoadTestReport
	for _, mb := range maxBatches {
		srv.SetBatching(mb, -1)
		c0, n0 := tp.calls.Load(), tp.count.Load()
		rep, err := RunLoadTest(context.Background(), "ws://"+srv.Addr(), spec, lc)
		if err != nil {
			return out, err
		}
		rep.MaxBatch = mb
		rep.Calls = int(tp.calls.Load() - c0)
		if rep.Calls > 0 {
			rep.MeanBatch = float64(tp.count.Load()-n0) / float64(rep.Calls)
		}
		out = append(out, rep)
	}
	return out, nil
}

// RunLoadTest loads the server at url (serving a policy whose actions carry tagPolicy's two tag
// values; spec is the served spec, tags included) with lc.Sessions concurrent sessions for
// lc.Duration. Each session plays episodes of lc.EpisodeSteps observations and checks every
// reply: its type, that it echoes the observation's seq, and that the action's tags name this
// session and the step whose observation the server's action chunk was computed from (the server
// queries the policy every Spec.Execute steps of an episode).
func RunLoadTest(ctx context.Context, url string, spec policy.Spec, lc LoadTestConfig) (LoadTestReport, error) {
	lc = lc.withDefaults()
	execute := spec.Execute
	if execute <= 0 {
		execute = spec.Horizon
	}
	rep := LoadTestReport{Sessions: lc.Sessions}
	type sessionStats struct {
		latencies                                  []time.Duration
		replies, errors, dropped, wrongSeq, wrongs int
		err                                        error
	}
	stats := make([]sessionStats, lc.Sessions)
	conns := make([]*websocket.Conn, lc.Sessions)
	for i := range conns {
		dctx, cancel := context.WithTimeout(ctx, lc.Timeout)
		c, err := Dial(dctx, url)
		cancel()
		if err != nil {
			for _, c := range conns[:i] {
				c.CloseNow()
			}
			return rep, fmt.Errorf("load session %d: %w", i, err)
		}
		conns[i] = c.conn
	}
	start := time.Now()
	deadline := start.Add(lc.Duration)
	var wg sync.WaitGroup
	for i, conn := range conns {
		wg.Go(func() {
			st := &stats[i]
			defer conn.CloseNow()
			images := map[string]any{}
			rng := rand.New(rand.NewPCG(lc.Seed, uint64(i)))
			for _, cam := range spec.Cameras {
				w, h := cam.Width, cam.Height
				if lc.ImageSize > 0 {
					w, h = lc.ImageSize, lc.ImageSize
				}
				pix := make([]float32, w*h*3)
				for k := range pix {
					pix[k] = float32(rng.IntN(256)) / 255
				}
				im, err := EncodePNG(pix, h, w)
				if err != nil {
					st.err = err
					return
				}
				images[cam.Name] = im
			}
			var seq int64
			send := func(typ MessageType, payload map[string]any) error {
				seq++
				data, err := Encode(NewMessage(typ, seq, payload))
				if err != nil {
					return err
				}
				wctx, cancel := context.WithTimeout(ctx, lc.Timeout)
				defer cancel()
				return conn.Write(wctx, websocket.MessageBinary, data)
			}
			for time.Now().Before(deadline) {
				if err := send(TypeEpisodeStart, map[string]any{"task": map[string]any{"name": "load"}}); err != nil {
					st.dropped++
					return
				}
				for step := 0; step < lc.EpisodeSteps && time.Now().Before(deadline); step++ {
					p := map[string]any{keyImages: images, keyInstruction: fmt.Sprintf("#%d:%d pick up the red square", i, step)}
					if spec.StateDim > 0 {
						p[keyStates] = NewFloat32Array(make([]float32, spec.StateDim))
					}
					t0 := time.Now()
					if err := send(TypeObservation, p); err != nil {
						st.dropped++
						return
					}
					rctx, cancel := context.WithTimeout(ctx, lc.Timeout)
					_, data, err := conn.Read(rctx)
					cancel()
					if err != nil {
						st.dropped++
						return
					}
					st.latencies = append(st.latencies, time.Since(t0))
					msg, err := Decode(data)
					switch {
					case err != nil:
						st.errors++
						continue
					case msg.Seq != seq:
						st.wrongSeq++
					}
					if msg.Type == TypeError {
						st.errors++
						continue
					}
					st.replies++
					acts, err := ParseActions(msg.Payload)
					if err != nil || len(acts) != 1 || len(acts[0]) != spec.ActionDim || spec.ActionDim < 2 {
						st.wrongs++
						continue
					}
					a := acts[0]
					if int(a[len(a)-2]) != i || int(a[len(a)-1]) != step-step%execute {
						st.wrongs++
					}
				}
				if err := send(TypeEpisodeEnd, map[string]any{"metrics": map[string]any{"success": false}}); err != nil {
					st.dropped++
					return
				}
			}
		})
	}
	wg.Wait()
	rep.Seconds = time.Since(start).Seconds()
	var all []time.Duration
	var errs []string
	for _, st := range stats {
		all = append(all, st.latencies...)
		rep.Replies += st.replies
		rep.Errors += st.errors
		rep.Dropped += st.dropped
		rep.WrongSeq += st.wrongSeq
		rep.CrossWired += st.wrongs
		if st.err != nil {
			errs = append(errs, st.err.Error())
		}
	}
	if len(errs) > 0 {
		return rep, fmt.Errorf("load: %s", strings.Join(errs, "; "))
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(p*float64(len(all))))].Seconds() * 1000
	}
	rep.P50MS, rep.P90MS, rep.P99MS = pct(0.50), pct(0.90), pct(0.99)
	if len(all) > 0 {
		rep.MaxMS = all[len(all)-1].Seconds() * 1000
	}
	rep.Throughput = float64(rep.Replies) / rep.Seconds
	return rep, nil
}
