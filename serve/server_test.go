package serve

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/policy"
)

// testTimeout bounds every exchange; it is generous, never a measured duration.
const testTimeout = 20 * time.Second

// fakePolicy returns chunks whose action k for observation i is
// [call number, k, State[0] of observation i], so tests can tell which call and which chunk
// position produced an action and whose observation it answered.
type fakePolicy struct {
	horizon int

	mu      sync.Mutex
	calls   int
	batches []int
	err     error // returned by the next calls when set
	panics  bool

	inFlight   atomic.Int32
	concurrent atomic.Bool // set if Act was ever entered twice at once
}

func (p *fakePolicy) Act(obs []policy.Observation) ([][][]float32, error) {
	if p.inFlight.Add(1) > 1 {
		p.concurrent.Store(true)
	}
	defer p.inFlight.Add(-1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.panics {
		panic("fake policy exploded")
	}
	if p.err != nil {
		return nil, p.err
	}
	p.calls++
	p.batches = append(p.batches, len(obs))
	chunks := make([][][]float32, len(obs))
	for i, o := range obs {
		id := float32(-1)
		if len(o.State) > 0 {
			id = o.State[0]
		}
		for k := range p.horizon {
			chunks[i] = append(chunks[i], []float32{float32(p.calls), float32(k), id})
		}
	}
	return chunks, nil
}

func (p *fakePolicy) set(err error, panics bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err, p.panics = err, panics
}

func (p *fakePolicy) stats() (calls int, batches []int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls, append([]int(nil), p.batches...)
}

const testSize = 8

var testCameras = []string{"scene", "wrist"}

func testConfig() Config {
	return Config{
		Addr:     "127.0.0.1:0",
		MaxBatch: 1,
		Spec:     testSpec(testSize, 2, 3, 4, testCameras...),
		Name:     "fake",
	}
}

// startServer runs a server on 127.0.0.1:0 until the test ends.
func startServer(t *testing.T, p policy.Policy, cfg Config) *Server {
	t.Helper()
	s := NewServer(p, cfg)
	require.NoError(t, s.Listen())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(testTimeout):
			t.Error("server did not shut down")
		}
	})
	return s
}

func dial(t *testing.T, s *Server) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := Dial(ctx, "ws://"+s.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { c.conn.CloseNow() })
	return c
}

// testSpec is the spec of a policy with square cameras of side size.
func testSpec(size, stateDim, actionDim, horizon int, cameras ...string) policy.Spec {
	s := policy.Spec{Name: "test", Features: policy.Features{StateDim: stateDim, ActionDim: actionDim},
		Horizon: horizon, Resize: policy.ResizePad, Normalization: policy.NormMeanStd}
	for _, c := range cameras {
		s.Cameras = append(s.Cameras, policy.Camera{Name: c, Width: size, Height: size})
	}
	return s
}

// testImage is a side×side image of testPixels.
func testImage(side int, seed uint64) policy.Image {
	return policy.Image{W: side, H: side, Pix: testPixels(side, seed)}
}

func testObs(id float32) policy.Observation {
	return policy.Observation{
		Images:      map[string]policy.Image{"scene": testImage(testSize, 1), "wrist": testImage(testSize, 2)},
		State:       []float32{id, 0.5},
		Instruction: "push the cube",
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func TestHealth(t *testing.T) {
	s := startServer(t, &fakePolicy{horizon: 1}, testConfig())
	resp, err := http.Get("http://" + s.Addr() + "/health")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	assert.Equal(t, "ok", body["status"])
	assert.Equal(t, float64(ProtocolVersion), body["protocol_version"])
}

func TestHelloHandshake(t *testing.T) {
	cfg := testConfig()
	cfg.Spec.Execute = 2
	cfg.MaxBatch = 4
	s := startServer(t, &fakePolicy{horizon: 4}, cfg)
	c := dial(t, s)
	info := c.Info()
	assert.Equal(t, ProtocolVersion, info.ProtocolVersion)
	assert.Equal(t, "fake", info.ModelServer)
	assert.Equal(t, 3, info.ActionDim)
	assert.Equal(t, 4, info.ChunkSize)
	assert.Equal(t, 2, info.Execute)
	assert.Equal(t, []int{testSize, testSize, 3}, info.ImageShapes["wrist"])
	assert.Equal(t, 2, info.StateDim)
	assert.Equal(t, 4, info.MaxBatch)
	assert.Equal(t, testCameras, info.Cameras)
	assert.NotEmpty(t, info.SessionID)
	assert.NotEqual(t, info.SessionID, dial(t, s).Info().SessionID, "each connection is its own session")

	// A client speaking another protocol version is answered (with a logged warning), as the
	// harness's servers do.
	raw := rawConn(t, s)
	reply := raw.exchange(t, mustEncode(t, NewMessage(TypeHello, 3, map[string]any{"protocol_version": 2})))
	assert.Equal(t, TypeHello, reply.Type)
	assert.Equal(t, int64(3), reply.Seq)
	assert.Equal(t, int8(ProtocolVersion), reply.Payload["protocol_version"])
	reply = raw.exchange(t, mustEncode(t, NewMessage(TypeHello, 4, map[string]any{"protocol_version": 1})))
	assert.Equal(t, TypeHello, reply.Type)
	assert.Equal(t, int64(4), reply.Seq)
}

// A chunk of 4 with Execute=2: the policy is called on every second observation, the answers
// walk through the first two actions of each chunk, and episode_start drops what is left.
func TestActionBuffer(t *testing.T) {
	cfg := testConfig()
	cfg.Spec.Execute = 2
	p := &fakePolicy{horizon: 4}
	s := startServer(t, p, cfg)
	c := dial(t, s)
	ctx := ctxT(t)
	step := func() []float32 {
		a, err := c.Step(ctx, testObs(7))
		require.NoError(t, err)
		return a
	}
	require.NoError(t, c.EpisodeStart(ctx, map[string]any{"task": "push"}))
	assert.Equal(t, []float32{1, 0, 7}, step())
	assert.Equal(t, []float32{1, 1, 7}, step())
	assert.Equal(t, []float32{2, 0, 7}, step(), "Execute=2 re-queries after two actions")
	calls, _ := p.stats()
	assert.Equal(t, 2, calls)

	require.NoError(t, c.EpisodeStart(ctx, nil))
	assert.Equal(t, []float32{3, 0, 7}, step(), "episode_start clears the buffer")
	assert.Equal(t, []float32{3, 1, 7}, step())
	require.NoError(t, c.EpisodeEnd(ctx, map[string]any{"success": true}))
	calls, _ = p.stats()
	assert.Equal(t, 3, calls)
}

// Without Execute the whole chunk is used.
func TestActionBufferWholeChunk(t *testing.T) {
	p := &fakePolicy{horizon: 3}
	s := startServer(t, p, testConfig())
	c := dial(t, s)
	var got [][]float32
	for range 4 {
		a, err := c.Step(ctxT(t), testObs(1))
		require.NoError(t, err)
		got = append(got, a)
	}
	assert.Equal(t, [][]float32{{1, 0, 1}, {1, 1, 1}, {1, 2, 1}, {2, 0, 1}}, got)
}

// N clients stepping at once are served by one Act call with all N observations, and each gets
// the action for its own observation. The batch window is long so the batch fills by count, not
// by timing.
func TestBatching(t *testing.T) {
	const n = 5
	cfg := testConfig()
	cfg.MaxBatch = n
	cfg.BatchWindow = time.Minute
	p := &fakePolicy{horizon: 1}
	s := startServer(t, p, cfg)
	clients := make([]*Client, n)
	for i := range clients {
		clients[i] = dial(t, s)
	}
	for round := range 3 {
		actions := make([][]float32, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Go(func() { actions[i], errs[i] = c.Step(ctxT(t), testObs(float32(10+i))) })
		}
		wg.Wait()
		for i := range n {
			require.NoError(t, errs[i])
			assert.Equal(t, []float32{float32(round + 1), 0, float32(10 + i)}, actions[i], "client %d gets its own action", i)
		}
	}
	calls, batches := p.stats()
	assert.Equal(t, 3, calls)
	assert.Equal(t, []int{n, n, n}, batches)
	assert.False(t, p.concurrent.Load(), "Act is never called concurrently")
}

// With a short window, concurrent clients still get correct answers whatever the batches.
func TestBatchingShortWindow(t *testing.T) {
	const n, steps = 6, 10
	cfg := testConfig()
	cfg.MaxBatch = 4
	p := &fakePolicy{horizon: 2}
	cfg.Spec.Execute = 2
	s := startServer(t, p, cfg)
	var wg sync.WaitGroup
	errs := make(chan error, n*steps)
	for i := range n {
		c := dial(t, s)
		wg.Go(func() {
			for k := range steps {
				a, err := c.Step(ctxT(t), testObs(float32(i)))
				if err != nil {
					errs <- err
					return
				}
				if a[1] != float32(k%2) || a[2] != float32(i) {
					errs <- errors.New("wrong action for this client")
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	calls, batches := p.stats()
	total := 0
	for _, b := range batches {
		assert.LessOrEqual(t, b, 4)
		total += b
	}
	assert.Equal(t, n*steps/2, total, "one policy query per two steps per client")
	assert.LessOrEqual(t, calls, total)
	assert.False(t, p.concurrent.Load())
}

// rawClient drives a connection byte by byte, for malformed messages.
type rawClient struct{ conn *websocket.Conn }

func rawConn(t *testing.T, s *Server) *rawClient {
	t.Helper()
	conn, _, err := websocket.Dial(ctxT(t), "ws://"+s.Addr(), nil)
	require.NoError(t, err)
	conn.SetReadLimit(1 << 20)
	t.Cleanup(func() { conn.CloseNow() })
	return &rawClient{conn}
}

func (r *rawClient) exchange(t *testing.T, data []byte) Message {
	t.Helper()
	require.NoError(t, r.conn.Write(ctxT(t), websocket.MessageBinary, data))
	_, reply, err := r.conn.Read(ctxT(t))
	require.NoError(t, err)
	m, err := Decode(reply)
	require.NoError(t, err)
	return m
}

func observationBytes(t *testing.T, seq int64, obs policy.Observation) []byte {
	p, err := ObservationPayload(obs)
	require.NoError(t, err)
	return mustEncode(t, NewMessage(TypeObservation, seq, p))
}

// Every malformed message gets an error reply, and the next valid observation on the same
// connection still gets its action.
func TestMalformedMessages(t *testing.T) {
	cfg := testConfig()
	cfg.MaxMessageBytes = 64 << 10
	s := startServer(t, &fakePolicy{horizon: 1}, cfg)
	r := rawConn(t, s)

	noWrist := testObs(1)
	noWrist.Images = map[string]policy.Image{"scene": testImage(testSize, 1)}
	shortState := testObs(1)
	shortState.State = []float32{1}
	notPNG := func() []byte {
		p, err := ObservationPayload(testObs(1))
		require.NoError(t, err)
		p["images"].(map[string]any)["wrist"] = Image{Format: "png", Data: []byte("definitely not a png")}
		return mustEncode(t, NewMessage(TypeObservation, 5, p))
	}()
	badDType := func() []byte {
		p, err := ObservationPayload(testObs(1))
		require.NoError(t, err)
		p["states"] = map[string]any{"__ndarray__": true, "data": make([]byte, 8), "dtype": "<f8", "shape": []int{2}}
		return mustEncode(t, NewMessage(TypeObservation, 5, p))
	}()
	huge := make([]byte, 200<<10)

	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"garbage", []byte("\xc1 garbage bytes"), "not valid msgpack"},
		{"unknown type", mustEncode(t, NewMessage("record", 5, nil)), `unknown message type "record"`},
		{"action from client", mustEncode(t, NewMessage(TypeAction, 5, nil)), "does not accept"},
		{"missing fields", []byte{0x81, 0xa4, 't', 'y', 'p', 'e', 0xa5, 'h', 'e', 'l', 'l', 'o'}, `missing field "payload"`},
		{"missing camera", observationBytes(t, 5, noWrist), `no camera "wrist"`},
		{"wrong state size", observationBytes(t, 5, shortState), "observation.states has shape [1], the policy reads [2]"},
		{"image not png", notPNG, "observation.images.wrist: not a png image"},
		{"wrong dtype bytes", badDType, "states: ndarray: 8 data bytes do not match dtype <f8 and shape [2] (expected 16)"},
		{"oversized", huge, "exceeds the server's limit of 65536 bytes"},
	}
	for i, c := range cases {
		reply := r.exchange(t, c.data)
		assert.Equal(t, TypeError, reply.Type, c.name)
		msg, _ := reply.Payload["error"].(string)
		assert.Contains(t, msg, c.want, c.name)
		assert.NotContains(t, msg, "\n", c.name)

		seq := int64(100 + i)
		reply = r.exchange(t, observationBytes(t, seq, testObs(3)))
		require.Equal(t, TypeAction, reply.Type, "after %s: %v", c.name, reply.Payload)
		assert.Equal(t, seq, reply.Seq, "the action echoes the observation's seq")
		got, err := ParseActions(reply.Payload)
		require.NoError(t, err)
		assert.Equal(t, float32(3), got[0][2])
	}
}

// A failing or panicking policy yields an error reply; the server and the connection live on.
func TestPolicyErrors(t *testing.T) {
	p := &fakePolicy{horizon: 1}
	s := startServer(t, p, testConfig())
	c := dial(t, s)
	ctx := ctxT(t)

	p.set(errors.New("out of GPU memory"), false)
	_, err := c.Step(ctx, testObs(1))
	var se *ServerError
	require.ErrorAs(t, err, &se)
	assert.Contains(t, se.Message, "out of GPU memory")

	p.set(nil, true)
	_, err = c.Step(ctx, testObs(1))
	require.ErrorAs(t, err, &se)
	assert.Contains(t, se.Message, "policy panicked: fake policy exploded")

	p.set(nil, false)
	a, err := c.Step(ctx, testObs(4))
	require.NoError(t, err)
	assert.Equal(t, []float32{1, 0, 4}, a)
}

// A policy returning the wrong number of chunks or wrong action sizes is reported, not trusted.
func TestPolicyBadOutput(t *testing.T) {
	cfg := testConfig()
	cfg.Spec.ActionDim = 5 // the fake returns 3 values
	s := startServer(t, &fakePolicy{horizon: 2}, cfg)
	_, err := dial(t, s).Step(ctxT(t), testObs(1))
	assert.ErrorContains(t, err, "policy returned action 0 with 3 values, expected 5")

	s = startServer(t, policy.Policy(wrongCount{}), testConfig())
	_, err = dial(t, s).Step(ctxT(t), testObs(1))
	assert.ErrorContains(t, err, "policy returned 0 action chunks for 1 observations")
}

type wrongCount struct{}

func (wrongCount) Act([]policy.Observation) ([][][]float32, error) { return nil, nil }

// ListenAndServe stops when its context is cancelled, closing open connections.
func TestShutdown(t *testing.T) {
	cfg := testConfig()
	s := NewServer(&fakePolicy{horizon: 1}, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx) }()
	require.Eventually(t, func() bool { return s.Addr() != "" }, testTimeout, time.Millisecond)
	c := dial(t, s)
	_, err := c.Step(ctxT(t), testObs(1))
	require.NoError(t, err)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(testTimeout):
		t.Fatal("ListenAndServe did not return after cancel")
	}
	_, err = c.Step(ctxT(t), testObs(1))
	assert.Error(t, err, "the connection is closed")
	_, err = Dial(ctxT(t), s.Addr())
	assert.Error(t, err, "the listener is closed")
}
