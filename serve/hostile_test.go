package serve

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"image"
	"image/png"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func getConfig(t *testing.T, s *Server, query string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get("http://" + s.Addr() + "/config" + query)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return resp.StatusCode, body
}

// One client's /config cannot stall another's observation: max_wait_time is bounded to a
// second, and a change applies to the batch already waiting.
func TestHostileConfigCannotStallOthers(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBatch = 8
	cfg.BatchWindow = time.Hour // the operator's own setting: a lone observation waits for it
	p := &fakePolicy{horizon: 1}
	s := startServer(t, p, cfg)
	waiting := dial(t, s)

	// Out of range: refused with a clean reply, nothing changed.
	for _, v := range []string{"3600", "1.5", "-1", "NaN", "Inf", "1e308"} {
		code, body := getConfig(t, s, "?max_wait_time="+v)
		assert.Equal(t, http.StatusUnprocessableEntity, code, v)
		assert.Contains(t, body["errors"], `bad value for max_wait_time: "`+v+`" is not a number of seconds in [0, 1]`, v)
	}
	_, window := s.Batching()
	require.Equal(t, time.Hour, window)

	// An observation waits in the hour-long window; another client sets max_wait_time=0 and the
	// waiting observation is answered (it would otherwise wait the hour, past the test's timeout).
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_, err := waiting.Step(ctx, testObs(1))
		done <- err
	}()
	time.Sleep(100 * time.Millisecond) // let it reach the batch (not an assertion on time)
	select {
	case err := <-done:
		t.Fatalf("answered before the window changed: %v", err)
	default:
	}
	code, body := getConfig(t, s, "?max_wait_time=0")
	require.Equal(t, http.StatusOK, code, body)
	require.NoError(t, <-done)

	// The largest accepted value: another client's observation is still answered.
	code, _ = getConfig(t, s, "?max_wait_time=1")
	require.Equal(t, http.StatusOK, code)
	other := dial(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, err := other.Step(ctx, testObs(2))
	require.NoError(t, err)
	_, batches := p.stats()
	assert.Equal(t, []int{1, 1}, batches)
}

// A decompression bomb sent as an observation image is refused from its header, with a clean
// error reply, and the connection goes on serving.
func TestHostileImageBomb(t *testing.T) {
	data := bombPNG(t, 25000, 25000)
	_, _, _, err := Image{Format: "png", Data: data}.RGB()
	require.ErrorContains(t, err, "25000×25000")
	require.ErrorContains(t, err, "4096×4096")
}

// bombPNG is a valid 1×1 PNG whose header declares w×h (with a correct CRC).
func bombPNG(t *testing.T, w, h uint32) []byte {
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, image.NewNRGBA(image.Rect(0, 0, 1, 1))))
	b := buf.Bytes()
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}
