package lerobot

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/reelml/reel/mediaio"
	"github.com/stretchr/testify/require"
)

// testCol is one column of a parquet file as Go values, one per row.
type testCol struct {
	name string
	typ  reflect.Type
	vals []any
}

// readTestColumns reads every top-level column of a parquet file (nested lists flattened).
func readTestColumns(t *testing.T, path string) ([]testCol, []string) {
	t.Helper()
	p, err := openParquet(path)
	require.NoError(t, err)
	defer p.Close()
	var kv []string
	for _, m := range p.pf.Metadata().KeyValueMetadata {
		kv = append(kv, m.Key, m.Value)
	}
	var out []testCol
	for _, name := range p.names() {
		c, err := p.column(name)
		require.NoError(t, err)
		tc := testCol{name: name}
		for r := range c.rows() {
			var v any
			switch c.kind {
			case parquet.Float:
				f := make([]float32, 0)
				for _, x := range c.rowFloats(r) {
					f = append(f, float32(x))
				}
				v = f
			case parquet.Double:
				v = slices.Clone(c.rowFloats(r))
			case parquet.Int32, parquet.Int64:
				v = slices.Clone(c.rowInts(r))
			case parquet.Boolean:
				b := []bool{}
				for _, x := range c.rowInts(r) {
					b = append(b, x != 0)
				}
				v = b
			default:
				s := []string{}
				for _, x := range c.rowBytes(r) {
					s = append(s, string(x))
				}
				v = s
			}
			if !c.list { // a scalar: its one value
				v = reflect.ValueOf(v).Index(0).Interface()
			}
			tc.vals = append(tc.vals, v)
		}
		tc.typ = reflect.TypeOf(tc.vals[0])
		out = append(out, tc)
	}
	return out, kv
}

// writeTestColumns writes columns as a parquet file (one row group).
func writeTestColumns(t *testing.T, path string, cols []testCol, kv ...string) {
	t.Helper()
	fields := make([]pqField, len(cols))
	for i, c := range cols {
		fields[i] = pqField{c.name, c.typ}
	}
	n := len(cols[0].vals)
	rows := make([][]any, n)
	for r := range rows {
		for _, c := range cols {
			rows[r] = append(rows[r], c.vals[r])
		}
	}
	require.NoError(t, newPQTable(fields).write(path, pqRowGroups{rows}, kv...))
}

// editParquet rewrites the parquet file at path through edit.
func editParquet(t *testing.T, path string, edit func(cols []testCol) []testCol) {
	t.Helper()
	cols, kv := readTestColumns(t, path)
	writeTestColumns(t, path, edit(cols), kv...)
}

func colIndex(cols []testCol, name string) int {
	return slices.IndexFunc(cols, func(c testCol) bool { return c.name == name })
}

// writeEpisodesWithoutStats drops the stats/ columns of a v3.0 dataset's episodes file.
func writeEpisodesWithoutStats(t *testing.T, dir string) {
	editParquet(t, filepath.Join(dir, "meta/episodes/chunk-000/file-000.parquet"), func(cols []testCol) []testCol {
		return slices.DeleteFunc(cols, func(c testCol) bool { return strings.HasPrefix(c.name, "stats/") })
	})
}

// lerobotImage is LeRobot's image struct in parquet.
type lerobotImage struct {
	Bytes []byte `parquet:"bytes"`
	Path  string `parquet:"path"`
}

// toImageFeature turns camera "top" of a v3.0 dataset written from eps into a dtype "image"
// feature: PNG bytes in a data parquet column.
func toImageFeature(t *testing.T, dir string, eps []StoredEpisode) {
	t.Helper()
	var pngs []any
	for _, ep := range eps {
		cam := ep.Cameras[0]
		px := cam.Width * cam.Height * 3
		for s := range ep.Len() {
			im := image.NewNRGBA(image.Rect(0, 0, cam.Width, cam.Height))
			f := cam.Pix[s*px : (s+1)*px]
			for y := range cam.Height {
				for x := range cam.Width {
					o := (y*cam.Width + x) * 3
					im.SetNRGBA(x, y, color.NRGBA{f[o], f[o+1], f[o+2], 255})
				}
			}
			var b bytes.Buffer
			require.NoError(t, png.Encode(&b, im))
			pngs = append(pngs, lerobotImage{Bytes: b.Bytes(), Path: "frame.png"})
		}
	}
	editParquet(t, filepath.Join(dir, "data/chunk-000/file-000.parquet"), func(cols []testCol) []testCol {
		return append(cols, testCol{name: "observation.images.top", typ: reflect.TypeOf(lerobotImage{}), vals: pngs})
	})
	editJSON(t, filepath.Join(dir, "meta/info.json"), func(m map[string]any) {
		f := m["features"].(map[string]any)["observation.images.top"].(map[string]any)
		f["dtype"] = "image"
		delete(f, "info")
	})
}

// requireFFmpeg skips a test on a machine without ffmpeg.
func requireFFmpeg(t *testing.T) {
	t.Helper()
	if _, err := mediaio.FFmpeg(); err != nil {
		t.Skip(err)
	}
}

func meanAbsDiff(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		s += math.Abs(float64(a[i] - b[i]))
	}
	return s / float64(len(a))
}

// lerobotRow is one parquet row of a v2.x data file (one frame), read back with parquet-go's
// generic reader.
type lerobotRow struct {
	State        []float32 `parquet:"observation.state,list"`
	Action       []float32 `parquet:"action,list"`
	Timestamp    float32   `parquet:"timestamp"`
	FrameIndex   int64     `parquet:"frame_index"`
	EpisodeIndex int64     `parquet:"episode_index"`
	Index        int64     `parquet:"index"`
	TaskIndex    int64     `parquet:"task_index"`
}
