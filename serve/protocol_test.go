package serve

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/reelml/reel/policy"
)

func TestMessageRoundTrip(t *testing.T) {
	png, err := EncodePNG(testPixels(4, 1), 4, 4)
	require.NoError(t, err)
	in := Message{
		Type: TypeObservation,
		Seq:  42,
		Payload: map[string]any{
			"states":           NewFloat32Array([]float32{1.5, -2, 3}),
			"task_description": "put the red cube left",
			"images":           map[string]any{"scene": png},
			"nested":           []any{NDArray{Data: []byte{1, 2, 3, 4, 5, 6}, DType: "|u1", Shape: []int{2, 3}}},
			"flag":             true,
		},
		Timestamp: 1712345678.25,
	}
	data, err := Encode(in)
	require.NoError(t, err)
	again, err := Encode(in)
	require.NoError(t, err)
	assert.Equal(t, data, again, "encoding is deterministic")

	out, err := Decode(data)
	require.NoError(t, err)
	assert.Equal(t, in.Type, out.Type)
	assert.Equal(t, in.Seq, out.Seq)
	assert.Equal(t, in.Timestamp, out.Timestamp)
	assert.Equal(t, "put the red cube left", out.Payload["task_description"])
	assert.Equal(t, true, out.Payload["flag"])
	assert.Equal(t, in.Payload["states"], out.Payload["states"])
	assert.Equal(t, png, out.Payload["images"].(map[string]any)["scene"])
	assert.Equal(t, in.Payload["nested"], out.Payload["nested"])
}

// The wire form must be the vla-eval numpy codec's: {"__ndarray__": true, "data", "dtype", "shape"}.
func TestNDArrayWireFormat(t *testing.T) {
	data, err := msgpack.Marshal(NewFloat32Array([]float32{1, 2}, 1, 2))
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, msgpack.Unmarshal(data, &m))
	assert.Equal(t, true, m["__ndarray__"])
	assert.Equal(t, "<f4", m["dtype"])
	assert.Len(t, m["data"], 8)
	assert.Len(t, m["shape"], 2)
}

func TestNDArrayDTypes(t *testing.T) {
	le, be := binary.LittleEndian, binary.BigEndian
	f64 := func(order binary.ByteOrder, v ...float64) []byte {
		b := make([]byte, 8*len(v))
		for i, x := range v {
			order.PutUint64(b[8*i:], math.Float64bits(x))
		}
		return b
	}
	i16 := make([]byte, 4)
	le.PutUint16(i16, uint16(0xffff)) // -1
	le.PutUint16(i16[2:], 300)
	i64 := make([]byte, 8)
	be.PutUint64(i64, uint64(0xfffffffffffffff9)) // -7
	// float16 bit patterns and their values in closed form (IEEE 754 binary16): 1, −2, 1/3 rounded
	// to 11 significant bits, the largest finite value, the smallest and largest subnormals, −0.
	halfs := []uint16{0x3c00, 0xc000, 0x3555, 0x7bff, 0x0001, 0x03ff, 0x8000}
	halfVals := []float32{1, -2, 1365.0 / 4096, 65504, 0x1p-24, 1023 * 0x1p-24, float32(math.Copysign(0, -1))}
	f16 := func(order binary.ByteOrder) []byte {
		b := make([]byte, 2*len(halfs))
		for i, h := range halfs {
			order.PutUint16(b[2*i:], h)
		}
		return b
	}
	cases := []struct {
		name string
		arr  NDArray
		want []float32
	}{
		{"<f4", NewFloat32Array([]float32{0.5, -1, 3}, 3, 1), []float32{0.5, -1, 3}},
		{"float32 name", NDArray{Data: NewFloat32Array([]float32{7}).Data, DType: "float32", Shape: []int{1}}, []float32{7}},
		{"<f8", NDArray{Data: f64(le, 1.25, -2), DType: "<f8", Shape: []int{2}}, []float32{1.25, -2}},
		{">f8", NDArray{Data: f64(be, 4), DType: ">f8", Shape: []int{1, 1}}, []float32{4}},
		{"uint8", NDArray{Data: []byte{0, 255}, DType: "uint8", Shape: []int{2}}, []float32{0, 255}},
		{"|i1", NDArray{Data: []byte{0xfe}, DType: "|i1", Shape: []int{1}}, []float32{-2}},
		{"<i2", NDArray{Data: i16, DType: "<i2", Shape: []int{2}}, []float32{-1, 300}},
		{">i8", NDArray{Data: i64, DType: ">i8", Shape: []int{1}}, []float32{-7}},
		{"bool", NDArray{Data: []byte{1, 0}, DType: "|b1", Shape: []int{2}}, []float32{1, 0}},
		{"<f2", NDArray{Data: f16(le), DType: "<f2", Shape: []int{len(halfs)}}, halfVals},
		{">f2", NDArray{Data: f16(be), DType: ">f2", Shape: []int{len(halfs)}}, halfVals},
		{"float16 name", NDArray{Data: f16(le)[:2], DType: "float16", Shape: []int{1}}, []float32{1}},
		{"scalar", NDArray{Data: NewFloat32Array([]float32{9}).Data, DType: "<f4", Shape: []int{}}, []float32{9}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Decode(mustEncode(t, NewMessage(TypeAction, 1, map[string]any{"a": c.arr})))
			require.NoError(t, err)
			got, err := m.Payload["a"].(NDArray).Float32s()
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
			for i := range got {
				assert.Equal(t, math.Signbit(float64(c.want[i])), math.Signbit(float64(got[i])), "sign of %v", c.want[i])
			}
		})
	}
	// Infinities and NaN keep their meaning.
	inf := NDArray{Data: []byte{0x00, 0x7c, 0x00, 0xfc, 0x01, 0x7e}, DType: "<f2", Shape: []int{3}}
	got, err := inf.Float32s()
	require.NoError(t, err)
	assert.True(t, math.IsInf(float64(got[0]), 1) && math.IsInf(float64(got[1]), -1) && math.IsNaN(float64(got[2])), "%v", got)

	bad := []NDArray{
		{Data: []byte{1, 2, 3}, DType: "<f4", Shape: []int{1}},     // 3 bytes for 4
		{Data: make([]byte, 8), DType: "<f4", Shape: []int{3}},     // 8 bytes for 12
		{Data: make([]byte, 4), DType: "<c8", Shape: []int{1}},     // complex
		{Data: make([]byte, 4), DType: "object", Shape: []int{1}},  // not numeric
		{Data: make([]byte, 3), DType: "<f2", Shape: []int{1}},     // 3 bytes for 2
		{Data: make([]byte, 4), DType: "<f4", Shape: []int{-1, 1}}, // negative
	}
	for _, a := range bad {
		_, err := Decode(mustEncode(t, NewMessage(TypeAction, 1, map[string]any{"a": a})))
		assert.Error(t, err, "%+v", a)
	}
}

// Raw bytes directly under "__ndarray__" are accepted as well as the harness's form.
func TestNDArrayBytesUnderKey(t *testing.T) {
	data := mustEncode(t, NewMessage(TypeObservation, 3, map[string]any{
		"states": map[string]any{"__ndarray__": NewFloat32Array([]float32{1, 2}).Data, "dtype": "float32", "shape": []int{2}},
	}))
	m, err := Decode(data)
	require.NoError(t, err)
	got, err := m.Payload["states"].(NDArray).Float32s()
	require.NoError(t, err)
	assert.Equal(t, []float32{1, 2}, got)
}

func TestPNGRoundTrip(t *testing.T) {
	pix := testPixels(8, 3)
	im, err := EncodePNG(pix, 8, 8)
	require.NoError(t, err)
	require.Equal(t, []byte("\x89PNG"), im.Data[:4])
	got, h, w, err := im.RGB()
	require.NoError(t, err)
	assert.Equal(t, 8, h)
	assert.Equal(t, 8, w)
	assert.Equal(t, pix, got, "k/255 values round-trip exactly")

	// Values are clamped and rounded to 8 bits.
	im, err = EncodePNG([]float32{-1, 2, float32(math.NaN())}, 1, 1)
	require.NoError(t, err)
	got, _, _, err = im.RGB()
	require.NoError(t, err)
	assert.Equal(t, []float32{0, 1, 0}, got)

	_, err = EncodePNG(make([]float32, 10), 2, 2)
	assert.Error(t, err)
}

// Images from other encoders: a paletted PNG with alpha, grayscale raw, uint8 ndarray.
func TestImageVariants(t *testing.T) {
	pal := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.NRGBA{255, 0, 0, 128}, color.NRGBA{0, 51, 0, 255}})
	pal.Pix = []uint8{0, 1}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, pal))
	got, h, w, err := Image{Format: "png", Data: buf.Bytes()}.RGB()
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2}, []int{h, w})
	assert.Equal(t, []float32{1, 0, 0, 0, 0.2, 0}, got)

	got, _, _, err = Image{Format: "raw", Data: []byte{0, 255}, DType: "|u1", Shape: []int{1, 2, 1}}.RGB()
	require.NoError(t, err)
	assert.Equal(t, []float32{0, 0, 0, 1, 1, 1}, got)

	got, _, _, err = decodeImageValue(NewUint8Array([]uint8{255, 0, 51, 9}, 1, 1, 4))
	require.NoError(t, err)
	assert.Equal(t, []float32{1, 0, 0.2}, got)

	_, _, _, err = Image{Format: "png", Data: []byte("GIF89a....")}.RGB()
	assert.ErrorContains(t, err, "not a png image")
	_, _, _, err = Image{Format: "webp", Data: []byte{1}}.RGB()
	assert.ErrorContains(t, err, "webp")
}

func TestObservationPayloadRoundTrip(t *testing.T) {
	obs := policy.Observation{
		Images:      map[string]policy.Image{"scene": testImage(6, 1), "wrist": testImage(6, 2)},
		State:       []float32{0.1, -0.2, 0.3, 0.4},
		Instruction: "stack the blue block",
	}
	p, err := ObservationPayload(obs)
	require.NoError(t, err)
	m, err := Decode(mustEncode(t, NewMessage(TypeObservation, 5, p)))
	require.NoError(t, err)
	got, err := ParseObservation(m.Payload, testSpec(6, 4, 3, 1, "scene", "wrist"))
	require.NoError(t, err)
	assert.Equal(t, obs, got)

	// An image of another size is fitted to the spec's camera.
	got, err = ParseObservation(m.Payload, testSpec(8, 4, 3, 1, "scene", "wrist"))
	require.NoError(t, err)
	want, err := policy.Resize(obs.Images["wrist"], 8, 8, policy.ResizePad)
	require.NoError(t, err)
	assert.Equal(t, want, got.Images["wrist"])

	// Specs are enforced with messages naming the field.
	for _, c := range []struct {
		spec policy.Spec
		want string
	}{
		{testSpec(6, 3, 3, 1, "scene", "wrist"), "observation.states has shape [4], the policy reads [3]"},
		{testSpec(6, 4, 3, 1, "scene", "top"), `observation.images has no camera "top" for the policy's camera "top" (the observation has scene, wrist; map one to it, e.g. --camera scene=top)`},
	} {
		_, err := ParseObservation(m.Payload, c.spec)
		assert.ErrorContains(t, err, c.want)
	}
	// Cameras the policy does not read are ignored.
	got, err = ParseObservation(m.Payload, testSpec(6, 4, 3, 1, "scene"))
	require.NoError(t, err)
	assert.Equal(t, map[string]policy.Image{"scene": obs.Images["scene"]}, got.Images)
	_, err = ParseObservation(map[string]any{"states": []any{1.0, math.NaN()}}, policy.Spec{})
	assert.ErrorContains(t, err, "finite")
	_, err = ParseObservation(map[string]any{"task_description": 3}, policy.Spec{})
	assert.ErrorContains(t, err, "must be a string")
}

func TestParseActions(t *testing.T) {
	got, err := ParseActions(ActionPayload([]float32{1, 2, 3}))
	require.NoError(t, err)
	assert.Equal(t, [][]float32{{1, 2, 3}}, got)
	got, err = ParseActions(map[string]any{"actions": NewFloat32Array([]float32{1, 2, 3, 4, 5, 6}, 3, 2)})
	require.NoError(t, err)
	assert.Equal(t, [][]float32{{1, 2}, {3, 4}, {5, 6}}, got)
	_, err = ParseActions(map[string]any{"actions": NewFloat32Array(make([]float32, 8), 2, 2, 2)})
	assert.Error(t, err)
	_, err = ParseActions(map[string]any{})
	assert.Error(t, err)
}

func TestDecodeErrors(t *testing.T) {
	valid := mustEncode(t, NewMessage(TypeHello, 7, nil))
	enc := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		require.NoError(t, err)
		return b
	}
	deep := []byte{}
	for range 100000 {
		deep = append(deep, 0x91) // fixarray of one
	}
	deep = append(deep, 0xc0)
	cases := map[string][]byte{
		"empty":           {},
		"garbage":         []byte("this is not msgpack at all"),
		"truncated":       valid[:len(valid)-3],
		"trailing":        append(append([]byte{}, valid...), 0x01),
		"not a map":       enc([]int{1, 2}),
		"missing seq":     enc(map[string]any{"type": "hello", "payload": map[string]any{}, "timestamp": 1.0}),
		"unknown type":    enc(map[string]any{"type": "record", "payload": map[string]any{}, "seq": 1, "timestamp": 1.0}),
		"payload list":    enc(map[string]any{"type": "hello", "payload": []int{1}, "seq": 1, "timestamp": 1.0}),
		"seq string":      enc(map[string]any{"type": "hello", "payload": map[string]any{}, "seq": "1", "timestamp": 1.0}),
		"deep nesting":    deep,
		"huge array32":    {0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0},
		"huge bin32":      {0xc6, 0x7f, 0xff, 0xff, 0xff, 0x00},
		"invalid byte":    {0xc1},
		"bad ndarray":     enc(map[string]any{"type": "action", "payload": map[string]any{"a": map[string]any{"__ndarray__": true, "data": "str", "dtype": "<f4", "shape": []int{1}}}, "seq": 1, "timestamp": 1.0}),
		"non-string keys": enc(map[int]any{1: "x"}),
	}
	for name, data := range cases {
		_, err := Decode(data)
		assert.Error(t, err, name)
	}
	m, err := Decode(cases["unknown type"])
	assert.ErrorContains(t, err, `unknown message type "record"`)
	assert.Equal(t, int64(1), m.Seq, "the seq is kept for the error reply")
}

// Random corruptions of a valid observation never panic the decoder or the parser.
func TestDecodeCorruptedNeverPanics(t *testing.T) {
	p, err := ObservationPayload(policy.Observation{Images: map[string]policy.Image{"scene": testImage(4, 1)}, State: []float32{1, 2}})
	require.NoError(t, err)
	valid := mustEncode(t, NewMessage(TypeObservation, 9, p))
	r := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		data := append([]byte{}, valid...)
		switch r.IntN(3) {
		case 0:
			data = data[:r.IntN(len(data))]
		default:
			for range 1 + r.IntN(4) {
				data[r.IntN(len(data))] = byte(r.UintN(256))
			}
		}
		assert.NotPanics(t, func() {
			if m, err := Decode(data); err == nil {
				_, _ = ParseObservation(m.Payload, testSpec(4, 2, 3, 1, "scene"))
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	p, err := ObservationPayload(policy.Observation{Images: map[string]policy.Image{"scene": testImage(2, 1)}, State: []float32{1}})
	if err != nil {
		f.Fatal(err)
	}
	data, err := Encode(NewMessage(TypeObservation, 1, p))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte{0x81, 0xa1, 'a', 0xc0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := Decode(data); err == nil {
			_, _ = ParseObservation(m.Payload, policy.Spec{})
			_, _ = ParseActions(m.Payload)
		}
	})
}

// testPixels returns size×size×3 values that are multiples of 1/255, varying with seed.
func testPixels(size int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	pix := make([]float32, size*size*3)
	for i := range pix {
		pix[i] = float32(r.IntN(256)) / 255
	}
	return pix
}

func mustEncode(t testing.TB, m Message) []byte {
	t.Helper()
	data, err := Encode(m)
	require.NoError(t, err)
	return data
}

// A message as Python's msgpack.packb(..., use_bin_type=True) writes it for the vla-eval
// harness: compact integers, float64 timestamp, float64 state, raw-format uint8 image.
func TestDecodePythonStyle(t *testing.T) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	state := make([]byte, 16)
	binary.LittleEndian.PutUint64(state, math.Float64bits(0.25))
	binary.LittleEndian.PutUint64(state[8:], math.Float64bits(-1))
	pix := make([]byte, 2*2*3)
	for i := range pix {
		pix[i] = uint8(20 * i)
	}
	require.NoError(t, enc.Encode(map[string]any{
		"type": "observation",
		"payload": map[string]any{
			"images": map[string]any{
				"agentview": map[string]any{"__image__": true, "format": "raw", "data": pix, "dtype": "|u1", "shape": []any{2, 2, 3}},
			},
			"task_description": "open the drawer",
			"states":           map[string]any{"__ndarray__": true, "data": state, "dtype": "<f8", "shape": []any{2}},
		},
		"seq":       3,
		"timestamp": 1.7e9,
	}))
	m, err := Decode(buf.Bytes())
	require.NoError(t, err)
	assert.Equal(t, int64(3), m.Seq)
	obs, err := ParseObservation(m.Payload, testSpec(2, 2, 3, 1, "agentview"))
	require.NoError(t, err)
	assert.Equal(t, "open the drawer", obs.Instruction)
	assert.Equal(t, []float32{0.25, -1}, obs.State)
	assert.Equal(t, float32(40)/255, obs.Images["agentview"].Pix[2])
	assert.Equal(t, 2, obs.Images["agentview"].W)
}
