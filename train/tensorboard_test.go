package train

import (
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TBEvent is one event as train/testdata/read_events.py (an independent reader) prints it.
type TBEvent struct {
	Step          int64  `json:"step"`
	FileVersion   string `json:"file_version"`
	SessionStatus *int   `json:"session_status"`
	Values        []struct {
		Tag         string   `json:"tag"`
		SimpleValue *float64 `json:"simple_value"`
		Image       *struct {
			Width    int `json:"width"`
			Height   int `json:"height"`
			PNGBytes int `json:"png_bytes"`
		} `json:"image"`
	} `json:"values"`
}

// ReadTensorBoard reads every event file under dir with the independent Python reader (it skips
// the test when python3-protobuf is missing).
func ReadTensorBoard(t *testing.T, dir string) []TBEvent {
	t.Helper()
	if exec.Command("/usr/bin/python3", "-c", "import google.protobuf").Run() != nil {
		t.Skip("python3-protobuf is not installed (apt-get install python3-protobuf): no independent TensorBoard reader")
	}
	files, err := filepath.Glob(filepath.Join(dir, "events.out.tfevents.*"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no event file in %s", dir)
	_, self, _, _ := runtimeCaller()
	out, err := exec.Command("/usr/bin/python3", append([]string{filepath.Join(filepath.Dir(self), "testdata", "read_events.py")}, files...)...).CombinedOutput()
	require.NoError(t, err, string(out))
	var evs []TBEvent
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var e TBEvent
		require.NoError(t, json.Unmarshal([]byte(line), &e), line)
		evs = append(evs, e)
	}
	return evs
}

func TestEventWriterReadBackIndependently(t *testing.T) {
	dir := t.TempDir()
	w, err := OpenEventWriter(dir, -1)
	require.NoError(t, err)
	require.NoError(t, w.Scalars(1, map[string]float64{"train/loss": 2.5, "train/lr": 1e-3}))
	require.NoError(t, w.Scalars(2, map[string]float64{"train/loss": 1.25}))
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, image.NewRGBA(image.Rect(0, 0, 7, 3))))
	require.NoError(t, w.Image(2, "plots/loss", buf.Bytes(), 7, 3))
	require.NoError(t, w.Close())
	// A resumed run writes a second file whose SessionLog START purges the first's steps ≥ 2.
	w, err = OpenEventWriter(dir, 1)
	require.NoError(t, err)
	require.NoError(t, w.Close())

	evs := ReadTensorBoard(t, dir)
	var scalars []string
	var started []int64
	for _, e := range evs {
		if e.SessionStatus != nil {
			require.Equal(t, 1, *e.SessionStatus)
			started = append(started, e.Step)
		}
		for _, v := range e.Values {
			switch {
			case v.SimpleValue != nil:
				scalars = append(scalars, v.Tag)
				if v.Tag == "train/loss" && e.Step == 2 {
					require.Equal(t, 1.25, *v.SimpleValue)
				}
			case v.Image != nil:
				require.Equal(t, 7, v.Image.Width)
				require.Equal(t, 3, v.Image.Height)
				require.Equal(t, buf.Len(), v.Image.PNGBytes)
			}
		}
	}
	require.ElementsMatch(t, []string{"train/loss", "train/lr", "train/loss"}, scalars)
	require.Equal(t, []int64{2}, started)
	files, _ := filepath.Glob(filepath.Join(dir, "events.out.tfevents.*"))
	require.Len(t, files, 2)
	b, err := os.ReadFile(files[0])
	require.NoError(t, err)
	require.Contains(t, string(b), "brain.Event:2")
}

func runtimeCaller() (uintptr, string, int, bool) { return runtime.Caller(0) }
