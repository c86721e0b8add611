package checkpoints

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"
)

// tensorBytes returns a copy of t's raw data.
func tensorBytes(t *testing.T, x *tensors.Tensor) []byte {
	t.Helper()
	var out []byte
	if x.Shape().Size() == 0 {
		return out
	}
	require.NoError(t, x.ConstBytes(func(b []byte) { out = append(out, b...) }))
	return out
}

func TestSafetensorsHeaderBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tiny.safetensors")
	w := tensors.FromFlatDataAndDimensions([]float32{1, 2}, 2)
	require.NoError(t, WriteSafetensors(path, map[string]*tensors.Tensor{"w": w}, map[string]string{"format": "pt"}))
	got, err := os.ReadFile(path)
	require.NoError(t, err)

	header := `{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}` + "   "
	want := []byte{88, 0, 0, 0, 0, 0, 0, 0} // 88 = len(header), little-endian
	want = append(want, header...)
	want = append(want, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40) // float32 1 and 2, little-endian
	require.Equal(t, string(want), string(got))

	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")

	// Without metadata, there is no "__metadata__" entry.
	require.NoError(t, WriteSafetensors(path, map[string]*tensors.Tensor{"w": w}, nil))
	got, err = os.ReadFile(path)
	require.NoError(t, err)
	header = `{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	n := binary.LittleEndian.Uint64(got)
	require.EqualValues(t, 0, (8+n)%8)
	require.Equal(t, header, strings.TrimRight(string(got[8:8+n]), " "))
}

func TestSafetensorsRoundTrip(t *testing.T) {
	in := map[string]*tensors.Tensor{
		"layer.weight": tensors.FromFlatDataAndDimensions([]float32{1.5, -2, 3.25, 0, 1e-30, -7}, 2, 3),
		"layer.bias":   tensors.FromFlatDataAndDimensions([]float64{-0.5, 0.25, 1e300}, 3),
		"scale":        tensors.FromScalar(float64(3.5)),
		"ids":          tensors.FromFlatDataAndDimensions([]int32{-1, 2, 1 << 30, 4}, 4),
		"step":         tensors.FromFlatDataAndDimensions([]int64{1 << 40, -3, 5, 6}, 2, 1, 2),
		"bf":           tensors.FromFlatDataAndDimensions(bfloat16.FromFloat32s(1, -0.5, 3), 3),
		"half":         tensors.FromFlatDataAndDimensions(float16.FromFloat32s(0.25, 65504), 2),
		"pixels":       tensors.FromFlatDataAndDimensions([]uint8{0, 1, 127, 255, 9}, 5),
		"mask":         tensors.FromFlatDataAndDimensions([]bool{true, false, true}, 3),
		"empty":        tensors.FromShape(shapes.Make(dtypes.Float32, 0, 3)),
	}
	meta := map[string]string{"format": "pt", "epoch": "42", "quote": `a "b" <c>`}
	path := filepath.Join(t.TempDir(), "model.safetensors")
	require.NoError(t, WriteSafetensors(path, in, meta))

	out, gotMeta, err := ReadSafetensors(path)
	require.NoError(t, err)
	require.Equal(t, meta, gotMeta)
	require.Len(t, out, len(in))
	for name, want := range in {
		got := out[name]
		require.NotNil(t, got, name)
		require.True(t, want.Shape().Equal(got.Shape()), "%s: shape %s, want %s", name, got.Shape(), want.Shape())
		require.Equal(t, tensorBytes(t, want), tensorBytes(t, got), name)
	}
	require.Equal(t, []bool{true, false, true}, tensors.MustCopyFlatData[bool](out["mask"]))
	require.Equal(t, []float32{1.5, -2, 3.25, 0, 1e-30, -7}, tensors.MustCopyFlatData[float32](out["layer.weight"]))

	// Data is laid out in name order, aligned after the header.
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	n := binary.LittleEndian.Uint64(raw)
	header := string(raw[8 : 8+n])
	last := -1
	for _, name := range []string{"bf", "empty", "half", "ids", "layer.bias", "layer.weight", "mask", "pixels", "scale", "step"} {
		i := strings.Index(header, `"`+name+`":`)
		require.Greater(t, i, last, "%s in name order", name)
		last = i
	}
	require.Contains(t, header, `"bf":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]}`)
	require.Contains(t, header, `"empty":{"dtype":"F32","shape":[0,3],"data_offsets":[6,6]}`)
	require.Contains(t, header, `"scale":{"dtype":"F64","shape":[],"data_offsets":`)
}

func TestWriteSafetensorsErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.safetensors")
	ok := tensors.FromScalar(float32(1))
	for name, c := range map[string]struct {
		tensors map[string]*tensors.Tensor
		want    string
	}{
		"reserved": {map[string]*tensors.Tensor{"__metadata__": ok}, "reserved"},
		"nil":      {map[string]*tensors.Tensor{"x": nil}, `tensor "x" is nil`},
		"empty":    {map[string]*tensors.Tensor{"": ok}, "empty tensor name"},
		"dtype":    {map[string]*tensors.Tensor{"c": tensors.FromScalar(complex64(1))}, `tensor "c": dtype`},
	} {
		err := WriteSafetensors(path, c.tensors, nil)
		require.Error(t, err, name)
		require.Contains(t, err.Error(), path, name)
		require.Contains(t, err.Error(), c.want, name)
	}
	_, err := os.Stat(path)
	require.True(t, os.IsNotExist(err), "nothing written on error")
}

func TestReadSafetensorsErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.safetensors")
	require.NoError(t, WriteSafetensors(good, map[string]*tensors.Tensor{
		"a": tensors.FromFlatDataAndDimensions([]float32{1, 2, 3}, 3),
		"b": tensors.FromFlatDataAndDimensions([]int64{4}, 1),
	}, nil))
	raw, err := os.ReadFile(good)
	require.NoError(t, err)
	n := int(binary.LittleEndian.Uint64(raw))
	_, _, err = ReadSafetensors(good)
	require.NoError(t, err)

	withHeader := func(h string) []byte {
		for (8+len(h))%8 != 0 {
			h += " "
		}
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
		return append(append(b, h...), make([]byte, 16)...)
	}
	badBool := withHeader(`{"a":{"dtype":"BOOL","shape":[16],"data_offsets":[0,16]}}`)
	badBool[len(badBool)-1] = 7
	bigLen := binary.LittleEndian.AppendUint64(nil, 1<<40)
	cases := map[string]struct {
		data []byte
		want string
	}{
		"short":          {raw[:5], "truncated file"},
		"header cut":     {raw[:8+n-4], "truncated file"},
		"data cut":       {raw[:len(raw)-1], "truncated file"},
		"huge header":    {append(bigLen, raw[8:]...), "exceeds"},
		"not json":       {withHeader(`{"a": nope}`), "invalid JSON header"},
		"not object":     {withHeader(`[1, 2]`), "does not start with '{'"},
		"bad dtype":      {withHeader(`{"a":{"dtype":"F8","shape":[4],"data_offsets":[0,16]}}`), `unsupported dtype "F8"`},
		"size mismatch":  {withHeader(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}`), "needs 12"},
		"hole":           {withHeader(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`), "expected 0"},
		"not covered":    {withHeader(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`), "cover 8 data bytes but the file has 16"},
		"bad metadata":   {withHeader(`{"__metadata__":{"k":1}}`), "__metadata__"},
		"negative shape": {withHeader(`{"a":{"dtype":"U8","shape":[-16],"data_offsets":[0,16]}}`), "invalid shape"},
		"bad bool":       {badBool, "other than 0 or 1"},
	}
	for name, c := range cases {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".safetensors")
		require.NoError(t, os.WriteFile(p, c.data, 0o644))
		_, _, err := ReadSafetensors(p)
		require.Error(t, err, name)
		require.Contains(t, err.Error(), p, name)
		require.Contains(t, err.Error(), c.want, name)
		require.NotContains(t, err.Error(), "\n", name)
	}
	_, _, err = ReadSafetensors(filepath.Join(dir, "missing.safetensors"))
	require.ErrorContains(t, err, "missing.safetensors: no such file")
}
