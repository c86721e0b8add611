package reward

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/reelml/reel/lerobot"
	"github.com/stretchr/testify/require"
)

// brightnessModel scores a clip by the log of its last frame's mean brightness: a scene that
// brightens "progresses".
type brightnessModel struct{}

func (brightnessModel) LogPTrue(clips []Clip) ([]float64, error) {
	out := make([]float64, len(clips))
	for i, c := range clips {
		var s float64
		last := c.Frames[len(c.Frames)-1]
		for _, v := range last.Pix {
			s += float64(v)
		}
		out[i] = math.Log(s/float64(len(last.Pix)) + 1e-3)
	}
	return out, nil
}
func (brightnessModel) Close() {}

// writeBrightnessDataset writes n episodes of T 16×16 frames: even episodes succeed (kind
// expert, decided at step 6) and brighten from 0.1 to 0.9, odd ones fail (kind failed:noise,
// decided at step 2) and darken from 0.9 to 0.1.
func writeBrightnessDataset(t *testing.T, n, T int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ds")
	w, err := lerobot.Create(dir, lerobot.WriterConfig{FPS: 10})
	require.NoError(t, err)
	const size = 16
	for e := range n {
		ep := lerobot.Episode{Index: e, Task: "pick the red cube", Family: "pick", Size: size, Cameras: []string{"scene"}, Success: e%2 == 0,
			Kind: "expert", DecisionStep: 6}
		if !ep.Success {
			ep.Kind, ep.DecisionStep = "failed:noise", 2
		}
		fr := make([]float32, T*size*size*3)
		for s := range T {
			v := 0.1 + 0.8*float32(s)/float32(T-1)
			if !ep.Success {
				v = 1 - v
			}
			for j := range size * size * 3 {
				fr[s*size*size*3+j] = v
			}
			ep.State = append(ep.State, []float32{float32(s)})
			ep.Action = append(ep.Action, []float32{0})
		}
		ep.Frames = [][]float32{fr}
		require.NoError(t, w.Write(ep))
	}
	require.NoError(t, w.Close())
	return dir
}

func TestScoreDataset(t *testing.T) {
	dir := writeBrightnessDataset(t, 6, 10)
	ds, err := lerobot.Open(dir)
	require.NoError(t, err)
	rep, err := ScoreDataset(brightnessModel{}, ds, Options{Prefixes: 4})
	require.NoError(t, err)
	require.Len(t, rep.Episodes, 6)
	for _, e := range rep.Episodes {
		require.Equal(t, []int{1, 4, 7, 10}, e.Lengths)
		require.Equal(t, "pick the red cube", e.Instruction)
		if *e.Success {
			require.Equal(t, "expert", e.Kind)
			require.InDelta(t, 1, e.VOC, 1e-9)
		} else {
			require.Equal(t, "failed:noise", e.Kind)
			require.InDelta(t, -1, e.VOC, 1e-9)
		}
	}
	require.InDelta(t, 0, rep.VOC, 1e-9)
	require.InDelta(t, 1, rep.VOCByKind["expert"], 1e-9)
	require.InDelta(t, -1, rep.VOCByKind["failed"], 1e-9)
	require.NotNil(t, rep.Detection)
	require.Equal(t, 4, rep.Detection.TrainEpisodes) // successes 0, 4 and failures 1, 5
	require.Equal(t, 2, rep.Detection.TestEpisodes)
	require.Equal(t, 1.0, rep.Detection.Accuracy)
	require.Equal(t, 1.0, rep.Detection.Recall)

	rep2, err := ScoreDataset(brightnessModel{}, ds, Options{Prefixes: 4, Episodes: 2})
	require.NoError(t, err)
	require.Len(t, rep2.Episodes, 2)

	// The per-frame progress file, read back by parquet-go's own reader.
	path, err := WriteProgress(ds, rep)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, ProgressFile), path)
	type row struct {
		Index    int64   `parquet:"index"`
		Episode  int64   `parquet:"episode_index"`
		Frame    int64   `parquet:"frame_index"`
		Progress float32 `parquet:"progress_sparse"`
	}
	rows, err := parquet.ReadFile[row](path)
	require.NoError(t, err)
	require.Len(t, rows, 60)
	require.Equal(t, row{Index: 13, Episode: 1, Frame: 3, Progress: float32(rep.Episodes[1].Progress[1])}, rows[13])
	prog, err := ReadProgress(path)
	require.NoError(t, err)
	require.Len(t, prog, 6)
	require.InDeltaSlice(t, rep.Episodes[0].PerFrame(10), prog[0], 1e-6)
}

func TestScoreOracle(t *testing.T) {
	ds, err := lerobot.Open(writeBrightnessDataset(t, 4, 10))
	require.NoError(t, err)
	rep, err := ScoreOracle(ds, Options{Prefixes: 4})
	require.NoError(t, err)
	require.Len(t, rep.Episodes, 4)
	// Success decided at step 6: prefixes 1, 4, 7, 10 → 0, 3/6, 1, 1; ranks (1, 2, 3.5, 3.5)
	// against (1, 2, 3, 4): 4.5 / √(4.5·5).
	require.Equal(t, []float64{0, 0.5, 1, 1}, rep.Episodes[0].Progress)
	require.InDelta(t, 4.5/math.Sqrt(22.5), rep.Episodes[0].VOC, 1e-12)
	require.Equal(t, []float64{0, 0, 0, 0}, rep.Episodes[1].Progress)
	require.Zero(t, rep.Episodes[1].VOC)
	require.InDelta(t, 4.5/math.Sqrt(22.5), rep.VOCByKind["expert"], 1e-12)
	require.Zero(t, rep.VOCByKind["failed"])
	require.Equal(t, 1.0, rep.Detection.Accuracy)
}

func TestFlagOptions(t *testing.T) {
	o, err := FlagOptions(0, 3, "cam", 0)
	require.NoError(t, err)
	require.Equal(t, Options{Prefixes: -1, Episodes: 3, Camera: "cam"}, o) // 0: every prefix
	o, err = FlagOptions(15, 0, "", 64)
	require.NoError(t, err)
	require.Equal(t, Options{Prefixes: 15, Size: 64}, o)
	for _, c := range [][3]int{{-1, 0, 0}, {0, -1, 0}, {0, 0, -1}} {
		_, err := FlagOptions(c[0], c[1], "", c[2])
		require.Error(t, err, c)
	}
}
