package serve

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/policy"
)

// recorder is a minimal vla-eval model server that records every message it receives and
// answers hello and observations (with a 3-D action), or sleeps before answering.
type recorder struct {
	mu     sync.Mutex
	msgs   []Message
	sleep  time.Duration
	hangup bool // close the connection instead of answering an observation
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	c, err := websocket.Accept(w, req, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	for {
		_, data, err := c.Read(req.Context())
		if err != nil {
			return
		}
		m, err := Decode(data)
		if err != nil {
			return
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		sleep, hangup := r.sleep, r.hangup
		r.mu.Unlock()
		var reply Message
		switch m.Type {
		case TypeHello:
			reply = NewMessage(TypeHello, m.Seq, map[string]any{"protocol_version": 1, "action_dim": 3})
		case TypeObservation:
			if hangup {
				c.Close(websocket.StatusInternalError, "gone")
				return
			}
			time.Sleep(sleep)
			reply = NewMessage(TypeAction, m.Seq, ActionPayload([]float32{1, 2, 3}))
		default:
			continue
		}
		b, _ := Encode(reply)
		if c.Write(req.Context(), websocket.MessageBinary, b) != nil {
			return
		}
	}
}

func reasonOf(t *testing.T, err error) string {
	t.Helper()
	var ee *EpisodeError
	require.ErrorAs(t, err, &ee)
	return ee.FailureReason()
}

// A session speaks as the harness's sync runner: hello, episode_start {"task": ...}, one
// observation per action, episode_end with the result.
func TestSessionMessages(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	s, err := DialSession(ctxT(t), srv.URL, SessionOptions{})
	require.NoError(t, err)
	assert.Equal(t, 3, s.Info().ActionDim)
	task := map[string]any{"name": "pick up the red square", "suite": "pick", "episode_idx": 3}
	require.NoError(t, s.StartEpisode(task))
	a, err := s.Act(testObs(1))
	require.NoError(t, err)
	assert.Equal(t, [][]float32{{1, 2, 3}}, a)
	require.NoError(t, s.EndEpisode(map[string]any{"metrics": map[string]any{"success": true}, "steps": 1}))
	require.NoError(t, s.Close())
	require.Eventually(t, func() bool { rec.mu.Lock(); defer rec.mu.Unlock(); return len(rec.msgs) == 4 }, testTimeout, time.Millisecond)
	types := []MessageType{}
	for _, m := range rec.msgs {
		types = append(types, m.Type)
	}
	assert.Equal(t, []MessageType{TypeHello, TypeEpisodeStart, TypeObservation, TypeEpisodeEnd}, types)
	assert.Equal(t, "pick up the red square", rec.msgs[1].Payload["task"].(map[string]any)["name"])
	assert.Equal(t, map[string]any{"success": true}, rec.msgs[3].Payload["metrics"])
	for i, m := range rec.msgs {
		assert.Equal(t, int64(i+1), m.Seq, "seq counts up")
	}
}

func TestSessionFailureReasons(t *testing.T) {
	// A reply slower than the act timeout.
	rec := &recorder{sleep: 2 * time.Second}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	s, err := DialSession(ctxT(t), srv.URL, SessionOptions{ActTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	_, err = s.Act(testObs(1))
	assert.Equal(t, ReasonTimeout, reasonOf(t, err))
	assert.ErrorContains(t, err, "no action within the act timeout of 100ms")

	// An error reply.
	ps := startServer(t, &fakePolicy{horizon: 1}, testConfig())
	s, err = DialSession(ctxT(t), ps.Addr(), SessionOptions{})
	require.NoError(t, err)
	bad := testObs(1)
	bad.State = []float32{1}
	_, err = s.Act(bad)
	assert.Equal(t, ReasonException, reasonOf(t, err))
	assert.ErrorContains(t, err, "observation.states has shape [1]")

	// The server goes away mid-episode.
	srv2 := httptest.NewServer(&recorder{hangup: true})
	defer srv2.Close()
	s, err = DialSession(ctxT(t), srv2.URL, SessionOptions{ActTimeout: 5 * time.Second})
	require.NoError(t, err)
	_, err = s.Act(testObs(1))
	assert.Equal(t, ReasonClosed, reasonOf(t, err), "%v", err)

	// Nobody listening: retried with backoff, then unreachable.
	start := time.Now()
	_, err = DialSession(ctxT(t), "ws://127.0.0.1:1", SessionOptions{Retries: 3, Backoff: 50 * time.Millisecond})
	assert.Equal(t, ReasonUnreachable, reasonOf(t, err))
	assert.ErrorContains(t, err, "unreachable after 3 attempts")
	assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond, "waits 50 + 100 ms between the attempts")
	assert.True(t, strings.HasPrefix(err.Error(), "policy server unreachable"))
	var _ interface {
		Act(policy.Observation) ([][]float32, error)
	} = s
}
