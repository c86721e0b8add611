package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/internal/version"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/text"
)

// These tests drive the server with testdata/harness_client.py, a benchmark client written from
// the vla-evaluation-harness's protocol, connection, runner and orchestrator code (see its
// docstring), so the server is checked against the harness's semantics and not against reel's
// own Go client.

var (
	pyOnce sync.Once
	pyPath string
)

// harnessPython is a Python 3 with msgpack, websockets, numpy and PIL, or skips the test.
func harnessPython(t *testing.T) string {
	t.Helper()
	pyOnce.Do(func() {
		for _, c := range []string{"/usr/bin/python3", "python3"} {
			p, err := exec.LookPath(c)
			if err != nil {
				continue
			}
			if exec.Command(p, "-c", "import msgpack, websockets, numpy, PIL").Run() == nil {
				pyPath = p
				return
			}
		}
	})
	if pyPath == "" {
		t.Skip("no python3 with msgpack, websockets, numpy and PIL: `make deps` installs python3-msgpack python3-websockets python3-numpy python3-pil")
	}
	return pyPath
}

// harnessClient is the path of the harness-style Python client.
func harnessClient() string {
	p, _ := filepath.Abs(filepath.Join("testdata", "harness_client.py"))
	return p
}

// runHarness runs the client and decodes its JSON output; it fails the test unless the exit
// status is wantCode.
func runHarness(t *testing.T, wantCode int, args ...string) map[string]any {
	t.Helper()
	py := harnessPython(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, append([]string{harnessClient()}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("harness client: %v", err)
	}
	require.Equal(t, wantCode, code, "harness client %v: stdout %s stderr %s", args, stdout.String(), stderr.String())
	var out map[string]any
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &out), "stdout %s stderr %s", stdout.String(), stderr.String())
	return out
}

// harnessPolicy stands for a trained policy: like tasks.Policy its Act fails the whole batch
// when one instruction has more than maxWords words, and its Check cuts such instructions with a
// warning. Action k of a chunk for observation o is [dir, state[0], k] where dir is +1 for an
// instruction mentioning "stove" and −1 otherwise.
type harnessPolicy struct {
	horizon, maxWords int

	mu      sync.Mutex
	batches []int
	seen    []policy.Observation
}

func (p *harnessPolicy) Act(obs []policy.Observation) ([][][]float32, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, o := range obs {
		if n := len(text.Tokenize(o.Instruction)); p.maxWords > 0 && n > p.maxWords {
			return nil, fmt.Errorf("observation %d: instruction has %d words, more than model.max_text_len (%d)", i, n, p.maxWords)
		}
	}
	p.batches = append(p.batches, len(obs))
	p.seen = append(p.seen, obs...)
	chunks := make([][][]float32, len(obs))
	for i, o := range obs {
		dir := float32(-1)
		if strings.Contains(o.Instruction, "stove") {
			dir = 1
		}
		s0 := float32(0)
		if len(o.State) > 0 {
			s0 = o.State[0]
		}
		for k := range p.horizon {
			chunks[i] = append(chunks[i], []float32{dir, s0, float32(k)})
		}
	}
	return chunks, nil
}

func (p *harnessPolicy) Check(obs policy.Observation) (policy.Observation, []string, error) {
	if w := text.Tokenize(obs.Instruction); p.maxWords > 0 && len(w) > p.maxWords {
		obs.Instruction = strings.Join(w[:p.maxWords], " ")
		return obs, []string{fmt.Sprintf("instruction has %d words, more than model.max_text_len (%d): cut to %q", len(w), p.maxWords, obs.Instruction)}, nil
	}
	return obs, nil, nil
}

func (p *harnessPolicy) stats() ([]int, []policy.Observation) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.batches...), append([]policy.Observation(nil), p.seen...)
}

// simSpec is a simulator-trained policy's spec: one 8-px scene camera, a 4-D state, 3-D actions.
func simSpec() policy.Spec {
	s := testSpec(8, 4, 3, 4, "scene")
	s.Execute = 2
	s.StateNames = []string{"x", "y", "gripper_closed", "holding"}
	s.ActionNames = []string{"dx", "dy", "grip"}
	return s
}

// liberoConfig serves simSpec to a LIBERO-shaped benchmark: agentview feeds scene, 7-D actions.
func liberoConfig() Config {
	cfg := testConfig()
	cfg.Spec = simSpec()
	cfg.Adapt = AdaptOptions{Cameras: map[string]string{"agentview": "scene"}, ActionDim: 7}
	cfg.MaxBatch = 4
	return cfg
}

// The hello reply carries the harness's observation_spec, action_spec and observation_params
// (DimSpec dicts keyed as the benchmark names its components), reel's version as
// harness_version, and answers a client of another protocol version.
func TestHarnessHello(t *testing.T) {
	t.Parallel()
	s := startServer(t, &harnessPolicy{horizon: 4}, liberoConfig())
	out := runHarness(t, 0, "hello", "ws://"+s.Addr())
	assert.Equal(t, float64(ProtocolVersion), out["protocol_version"])
	assert.Equal(t, version.String(), out["harness_version"])
	assert.Equal(t, map[string]any{
		"agentview": map[string]any{"name": "image", "dims": 0.0, "format": "rgb_hwc_uint8", "description": `fitted to the policy's camera "scene", 8×8 (pad)`},
		"language":  map[string]any{"name": "language", "dims": 0.0, "format": "language"},
		"state":     map[string]any{"name": "state", "dims": 4.0, "format": "raw", "description": "the policy reads 4 state values (x, y, gripper_closed, holding)"},
	}, out["observation_spec"])
	assert.Equal(t, map[string]any{"actions": map[string]any{"name": "actions", "dims": 7.0, "format": "raw", "description": "dx, dy, grip, then 4 zeros"}}, out["action_spec"])
	assert.Equal(t, map[string]any{"send_state": true}, out["observation_params"])
	assert.Equal(t, 7.0, out["action_dim"])
	assert.Equal(t, []any{"agentview"}, out["cameras"])

	out = runHarness(t, 0, "hello", "ws://"+s.Addr(), "--protocol-version", "2")
	assert.Equal(t, float64(ProtocolVersion), out["protocol_version"], "another protocol version is answered, not refused")
}

// A LIBERO-shaped benchmark (one 256×256 agentview camera, no state, 7-D actions) run by the
// harness-style client in two concurrent shards against a policy with a 4-D state, an 8-px
// "scene" camera and 3-D actions: every episode completes, each gets 7-D float32 actions whose
// first three values are the policy's, the policy sees 8×8 scene images and zero states, the long
// instruction is cut with a warning, and the two shards' results merge into the harness's
// aggregate, recomputed by the Python checker.
func TestHarnessLiberoShapedShards(t *testing.T) {
	t.Parallel()
	p := &harnessPolicy{horizon: 4, maxWords: 12}
	s := startServer(t, p, liberoConfig())
	dir := t.TempDir()
	outs := make([]map[string]any, 2)
	var wg sync.WaitGroup
	for shard := range 2 {
		wg.Go(func() {
			outs[shard] = runHarness(t, 0, "libero", "ws://"+s.Addr(), "--tasks", "2", "--episodes-per-task", "3", "--steps", "5",
				"--shard-id", fmt.Sprint(shard), "--num-shards", "2", "--out", filepath.Join(dir, fmt.Sprintf("shard%d.jsonl", shard)))
		})
	}
	wg.Wait()
	warned := false
	for shard, out := range outs {
		assert.Equal(t, 3.0, out["episodes"], "shard %d: 6 items round-robin over 2 shards", shard)
		assert.Equal(t, 0.0, out["failures"], "shard %d: %v", shard, out["failure_details"])
		for _, w := range out["warnings"].([]any) {
			warned = warned || strings.Contains(w.(string), "instruction has 17 words, more than model.max_text_len (12)")
			if strings.Contains(w.(string), "no states") {
				assert.Contains(t, w, "the policy reads 4 state values and was given zeros")
			}
		}
	}
	assert.True(t, warned, "the 17-word instruction is cut with a warning: %v", outs)
	batches, seen := p.stats()
	assert.NotEmpty(t, batches)
	for _, o := range seen {
		require.Equal(t, []string{"scene"}, mapsKeys(o.Images))
		assert.Equal(t, 8, o.Images["scene"].W)
		assert.Equal(t, 8, o.Images["scene"].H)
		assert.Equal(t, []float32{0, 0, 0, 0}, o.State)
		assert.LessOrEqual(t, len(text.Tokenize(o.Instruction)), 12)
	}
	// 2 shards × 3 episodes × 5 steps, the policy queried every Execute=2 steps of an episode.
	total := 0
	for _, b := range batches {
		total += b
	}
	assert.Equal(t, 6*3, total)

	meta, recs, warnings, err := MergeResults([]string{filepath.Join(dir, "shard0.jsonl"), filepath.Join(dir, "shard1.jsonl")})
	require.NoError(t, err)
	assert.Empty(t, warnings)
	assert.Equal(t, "libero_shaped", meta.Benchmark)
	require.Len(t, recs, 6)
	agg := Aggregate(meta, recs)
	assert.Equal(t, 0.5, agg["mean_success"], "the stove task succeeds (its actions push +x), the other does not")
	path := filepath.Join(dir, "merged.json")
	require.NoError(t, WriteAggregate(path, agg))
	check := runHarness(t, 0, "check-aggregate", path)
	assert.Equal(t, true, check["ok"], "%v", check["problems"])
	assert.Equal(t, 6.0, check["episodes"])
	assert.Equal(t, 3.0, check["successes"])

	// The same shard twice is refused.
	_, _, _, err = MergeResults([]string{filepath.Join(dir, "shard0.jsonl"), filepath.Join(dir, "shard0.jsonl")})
	assert.ErrorContains(t, err, "is in both")
}

// The harness's real LIBERO takes a send_state parameter, which the orchestrator sets from the
// hello's observation_params: it then sends its 8-D state. A 4-D policy refuses it, every
// episode failing with one clear error naming the key and both shapes; served with --state-dims
// picking four of the values, every episode runs and the policy reads the picked ones.
func TestHarnessLiberoWithState(t *testing.T) {
	t.Parallel()
	s := startServer(t, &harnessPolicy{horizon: 4}, liberoConfig())
	dir := t.TempDir()
	out := runHarness(t, 1, "libero", "ws://"+s.Addr(), "--state-param", "--tasks", "1", "--episodes-per-task", "2", "--steps", "3",
		"--out", filepath.Join(dir, "strict.jsonl"))
	assert.Equal(t, map[string]any{"send_state": true}, out["auto_configured"])
	assert.Equal(t, 2.0, out["failures"])
	assert.Contains(t, out["failure_details"].([]any)[0], "observation.states has shape [8], the policy reads [4] (pick values with --state-dims")

	p := &harnessPolicy{horizon: 4}
	cfg := liberoConfig()
	cfg.Adapt.StateDims = []int{0, 1, 6, 7}
	s = startServer(t, p, cfg)
	out = runHarness(t, 0, "libero", "ws://"+s.Addr(), "--state-param", "--tasks", "1", "--episodes-per-task", "2", "--steps", "3",
		"--out", filepath.Join(dir, "picked.jsonl"))
	assert.Equal(t, 0.0, out["failures"])
	assert.Equal(t, map[string]any{"name": "state", "dims": 8.0, "format": "raw",
		"description": "the policy reads 4 state values (x, y, gripper_closed, holding), picked at indices [0 1 6 7]"},
		out["server_info"].(map[string]any)["observation_spec"].(map[string]any)["state"])
	_, seen := p.stats()
	require.NotEmpty(t, seen)
	assert.Equal(t, []float32{0, 1, 6, 7}, seen[0].State, "step 0's state [0..7] picked at 0, 1, 6, 7")
	assert.Equal(t, []float32{20, 21, 26, 27}, seen[1].State, "step 2's (execute 2: the policy is asked every other step)")
}

func mapsKeys(m map[string]policy.Image) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Several sessions observe at once: one's observation lacks the camera (it alone gets an error
// reply), one's instruction is too long for the policy (cut, with a warning); the others are
// batched with it into one policy call and get their own actions.
func TestHarnessBadSessionInBatch(t *testing.T) {
	t.Parallel()
	p := &harnessPolicy{horizon: 4, maxWords: 8}
	cfg := liberoConfig()
	cfg.MaxBatch = 3 // the three valid observations fill one batch
	cfg.BatchWindow = time.Minute
	s := startServer(t, p, cfg)
	obs := `[{"state": [1, 0, 0, 0]},
		{"state": [2, 0, 0, 0], "instruction": "pick up the black bowl on the stove and place it on the plate"},
		{"state": [3, 0, 0, 0], "camera": "wrist"},
		{"state": [4, 0, 0, 0], "size": 256}]`
	out := runHarness(t, 0, "batch", "ws://"+s.Addr(), "--obs", obs)
	replies := out["replies"].([]any)
	require.Len(t, replies, 4)
	for i, r := range replies {
		r := r.(map[string]any)
		assert.Equal(t, true, r["seq_ok"], "session %d", i)
		payload := r["payload"].(map[string]any)
		if i == 2 {
			assert.Equal(t, "error", r["type"])
			assert.Contains(t, payload["error"], `observation.images has no camera "agentview" for the policy's camera "scene" (the observation has wrist`)
			continue
		}
		require.Equal(t, "action", r["type"], "session %d: %v", i, payload)
		act := payload["actions"].(map[string]any)
		assert.Equal(t, "<f4", act["dtype"])
		assert.Equal(t, []any{7.0}, act["shape"])
		vals := act["values"].([]any)
		assert.Equal(t, float64(i+1), vals[1], "session %d gets the action for its own observation", i)
		assert.Equal(t, []any{0.0, 0.0, 0.0, 0.0}, vals[3:], "zero padding to 7")
		if i == 1 {
			assert.Equal(t, 1.0, vals[0], `"stove" survives the cut`)
			md := payload["metadata"].(map[string]any)
			assert.Contains(t, md["warnings"].([]any)[0], "instruction has 14 words, more than model.max_text_len (8)")
		} else {
			assert.NotContains(t, payload, "metadata")
		}
	}
	batches, _ := p.stats()
	assert.Equal(t, []int{3}, batches, "one policy call for the three valid sessions")
}

// /config as the harness's tools use it: GET reads, GET with a query and POST with a JSON body
// set max_batch_size and max_wait_time, unknown keys and bad values are reported (422 when
// nothing applied), and the dispatcher uses the new values.
func TestHarnessConfig(t *testing.T) {
	t.Parallel()
	cfg := liberoConfig()
	cfg.MaxBatch, cfg.BatchWindow = 2, 5*time.Millisecond
	s := startServer(t, &harnessPolicy{horizon: 4}, cfg)
	out := runHarness(t, 0, "config", "ws://"+s.Addr(), "--requests", `[
		{"method": "GET"},
		{"method": "GET", "query": "max_batch_size=8"},
		{"method": "POST", "body": "{\"max_wait_time\": 0.25}"},
		{"method": "GET", "query": "bogus=1&max_batch_size=0"},
		{"method": "GET", "query": "bogus=1&max_batch_size=3"}]`)
	rs := out["responses"].([]any)
	require.Len(t, rs, 5)
	resp := func(i int) (float64, map[string]any) {
		r := rs[i].(map[string]any)
		return r["status"].(float64), r["body"].(map[string]any)
	}
	status, body := resp(0)
	assert.Equal(t, 200.0, status)
	assert.Equal(t, map[string]any{"applied": map[string]any{}, "config": map[string]any{"max_batch_size": 2.0, "max_wait_time": 0.005}}, body)
	status, body = resp(1)
	assert.Equal(t, 200.0, status)
	assert.Equal(t, map[string]any{"max_batch_size": 8.0}, body["applied"])
	assert.Equal(t, map[string]any{"max_batch_size": 8.0, "max_wait_time": 0.005}, body["config"])
	status, body = resp(2)
	assert.Equal(t, 200.0, status)
	assert.Equal(t, map[string]any{"max_wait_time": 0.25}, body["applied"])
	status, body = resp(3)
	assert.Equal(t, 422.0, status, "nothing applied")
	assert.ElementsMatch(t, []any{"unknown key: bogus", `bad value for max_batch_size: "0" is not an integer ≥ 1`}, body["errors"])
	status, body = resp(4)
	assert.Equal(t, 200.0, status, "partly applied")
	assert.Equal(t, []any{"unknown key: bogus"}, body["errors"])
	n, w := s.Batching()
	assert.Equal(t, 3, n)
	assert.Equal(t, 250*time.Millisecond, w)
}

// The dispatcher uses what /config set: with max_batch_size 1 every policy call has one
// observation, with 3 and a long window the three sessions' observations go in one call.
func TestConfigDrivesBatching(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBatch, cfg.BatchWindow = 1, time.Minute
	p := &fakePolicy{horizon: 1}
	s := startServer(t, p, cfg)
	clients := []*Client{dial(t, s), dial(t, s), dial(t, s)}
	step := func() {
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Go(func() {
				_, err := c.Step(ctxT(t), testObs(float32(i)))
				assert.NoError(t, err)
			})
		}
		wg.Wait()
	}
	step()
	_, batches := p.stats()
	assert.Equal(t, []int{1, 1, 1}, batches)
	resp, err := http.Post("http://"+s.Addr()+"/config?max_batch_size=3", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	step()
	_, batches = p.stats()
	assert.Equal(t, []int{1, 1, 1, 3}, batches)
	resp, err = http.Head("http://" + s.Addr() + "/config")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

// A float16 state ("<f2", as numpy sends np.float16 arrays) decodes to the exact float16 values,
// and a message larger than 16 MiB is served when the limit allows it, refused (the connection
// staying usable) when it does not.
func TestHarnessFloat16AndLargeMessages(t *testing.T) {
	t.Parallel()
	cfg := liberoConfig()
	cfg.MaxMessageBytes = 20 << 20
	s := startServer(t, &harnessPolicy{horizon: 4}, cfg)
	url := "ws://" + s.Addr()
	out := runHarness(t, 0, "f16", url, "--state", "[0.3333, -2.5, 65504, 1e-7]")
	assert.Equal(t, "<f2", out["sent_dtype"])
	sent := out["sent_as_float32"].([]any)
	vals := out["action"].(map[string]any)["actions"].(map[string]any)["values"].([]any)
	assert.Equal(t, sent[0], vals[1], "state[0] arrives as numpy's float16 value")
	assert.NotEqual(t, 0.3333, sent[0], "float16 rounding happened on the way")

	out = runHarness(t, 0, "big", url, "--mib", "16.5")
	assert.Equal(t, "action", out["type"], "%v", out["payload"])
	assert.Equal(t, true, out["seq_ok"])
	// Over the limit (sent from Go: the Debian websockets masks frames in pure Python, slowly).
	p, err := ObservationPayload(testObs(1))
	require.NoError(t, err)
	p["images"] = map[string]any{"agentview": p["images"].(map[string]any)["scene"]}
	p["states"] = NewFloat32Array([]float32{1, 2, 3, 4})
	p["padding"] = make([]byte, 21<<20)
	r := rawConn(t, s)
	reply := r.exchange(t, mustEncode(t, NewMessage(TypeObservation, 9, p)))
	assert.Equal(t, TypeError, reply.Type)
	assert.Equal(t, int64(0), reply.Seq, "the message is not decoded")
	assert.Contains(t, reply.Payload["error"], "exceeds the server's limit of 20971520 bytes")
	delete(p, "padding")
	reply = r.exchange(t, mustEncode(t, NewMessage(TypeObservation, 10, p)))
	assert.Equal(t, TypeAction, reply.Type, "the connection stays usable")
}
