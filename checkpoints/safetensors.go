package checkpoints

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/reelml/reel/internal/atomicfile"
	"github.com/reelml/reel/internal/safeio"
	"github.com/reelml/reel/policy"
)

// The safetensors format (https://github.com/huggingface/safetensors):
//
//	8 bytes          N, the header size, unsigned little-endian
//	N bytes          JSON header: {"__metadata__": {"key": "value"},
//	                 "NAME": {"dtype": "F32", "shape": [2, 3], "data_offsets": [BEGIN, END]}, ...},
//	                 padded with spaces so that 8+N is a multiple of 8
//	rest             the byte buffer: every tensor's data, row-major little-endian, at
//	                 [BEGIN, END) relative to the buffer's start; tensors cover it exactly
//
// WriteSafetensors lays the tensors out in name order.

// safetensorsMaxHeader bounds the header size a reader accepts (the reference implementation's
// limit), so that a corrupt length never makes it allocate gigabytes.
const safetensorsMaxHeader = 100 << 20

// metadataKey is the header entry holding the free-form string metadata.
const metadataKey = "__metadata__"

// safetensorsDTypes maps GoMLX dtypes to safetensors dtype names.
var safetensorsDTypes = map[dtypes.DType]string{
	dtypes.Bool:     "BOOL",
	dtypes.Uint8:    "U8",
	dtypes.Int8:     "I8",
	dtypes.Uint16:   "U16",
	dtypes.Int16:    "I16",
	dtypes.Float16:  "F16",
	dtypes.BFloat16: "BF16",
	dtypes.Uint32:   "U32",
	dtypes.Int32:    "I32",
	dtypes.Float32:  "F32",
	dtypes.Uint64:   "U64",
	dtypes.Int64:    "I64",
	dtypes.Float64:  "F64",
}

// dtypeFromSafetensors is the inverse of safetensorsDTypes.
var dtypeFromSafetensors = func() map[string]dtypes.DType {
	m := make(map[string]dtypes.DType, len(safetensorsDTypes))
	for d, name := range safetensorsDTypes {
		m[name] = d
	}
	return m
}()

// hostLittleEndian reports whether this machine stores numbers little-endian, as safetensors does.
var hostLittleEndian = func() bool {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], 1)
	return b[0] == 1
}()

// safetensorsEntry is one tensor's header entry.
type safetensorsEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int   `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// WriteSafetensors writes the named tensors and string metadata to path in the safetensors
// format, tensor data in name order. Supported dtypes: F64, F32, F16, BF16, I64, I32, I16, I8,
// U64, U32, U16, U8 and BOOL. The file is written under a temporary name next to path and
// renamed, so path is never left half written. An empty name, the reserved name "__metadata__",
// a nil tensor or an unsupported dtype is an error naming the tensor.
func WriteSafetensors(path string, named map[string]*tensors.Tensor, metadata map[string]string) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("safetensors %s: %s", path, fmt.Sprintf(format, args...))
	}
	names := slices.Sorted(maps.Keys(named))
	entries := make([]safetensorsEntry, len(names))
	var offset int64
	for i, name := range names {
		t := named[name]
		switch {
		case name == "":
			return fail("empty tensor name")
		case name == metadataKey:
			return fail("tensor name %q is reserved for metadata", name)
		case t == nil:
			return fail("tensor %q is nil", name)
		}
		shape := t.Shape()
		dt, ok := safetensorsDTypes[shape.DType]
		if !ok {
			return fail("tensor %q: dtype %s is not supported by safetensors", name, shape.DType)
		}
		if shape.IsDynamic() || shape.IsTuple() {
			return fail("tensor %q: shape %s is not a plain array shape", name, shape)
		}
		size := shape.ByteSize()
		entries[i] = safetensorsEntry{DType: dt, Shape: slices.Clone(shape.Dimensions), DataOffsets: []int64{offset, offset + size}}
		if entries[i].Shape == nil {
			entries[i].Shape = []int{}
		}
		offset += size
	}
	header, err := safetensorsHeader(names, entries, metadata)
	if err != nil {
		return fail("%v", err)
	}

	err = atomicfile.Write(path, func(bw *bufio.Writer) error {
		var lenBytes [8]byte
		binary.LittleEndian.PutUint64(lenBytes[:], uint64(len(header)))
		bw.Write(lenBytes[:])
		bw.Write(header)
		for _, name := range names {
			if err := writeTensorData(bw, named[name]); err != nil {
				return fmt.Errorf("tensor %q: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fail("%v", err)
	}
	return nil
}

// safetensorsHeader builds the JSON header: "__metadata__" first (when there is metadata,
// keys sorted), then the tensors in name order, padded with spaces so that the data starts at
// an 8-byte aligned offset.
func safetensorsHeader(names []string, entries []safetensorsEntry, metadata map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	if len(metadata) > 0 {
		b.WriteString(`"` + metadataKey + `":{`)
		for i, k := range slices.Sorted(maps.Keys(metadata)) {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(&b, k)
			b.WriteByte(':')
			writeJSONString(&b, metadata[k])
		}
		b.WriteByte('}')
	}
	for i, name := range names {
		if i > 0 || len(metadata) > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, name)
		b.WriteByte(':')
		e, err := json.Marshal(entries[i])
		if err != nil {
			return nil, err
		}
		b.Write(e)
	}
	b.WriteByte('}')
	for (8+b.Len())%8 != 0 {
		b.WriteByte(' ')
	}
	return b.Bytes(), nil
}

// writeJSONString writes s as a JSON string literal, without HTML escaping.
func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)           // a string always encodes
	b.Truncate(b.Len() - 1) // Encode appends a newline
}

// writeTensorData writes t's data, little-endian, to w.
func writeTensorData(w io.Writer, t *tensors.Tensor) error {
	if t.Shape().Size() == 0 {
		return nil
	}
	var werr error
	err := t.ConstBytes(func(data []byte) {
		if !hostLittleEndian {
			data = swapBytes(slices.Clone(data), t.DType().Size())
		}
		_, werr = w.Write(data)
	})
	if err != nil {
		return err
	}
	return werr
}

// swapBytes reverses the bytes of every size-byte element of data, in place.
func swapBytes(data []byte, size int) []byte {
	if size > 1 {
		for i := 0; i+size <= len(data); i += size {
			slices.Reverse(data[i : i+size])
		}
	}
	return data
}

// ReadSafetensors reads a safetensors file written by WriteSafetensors (or any conforming
// writer) into local tensors by name, with its string metadata (empty when the file has none).
// A truncated file, a malformed header, an unsupported dtype or data offsets that do not match
// the shapes or do not cover the data exactly give a one-line error naming path.
func ReadSafetensors(path string) (map[string]*tensors.Tensor, map[string]string, error) {
	fail := func(format string, args ...any) (map[string]*tensors.Tensor, map[string]string, error) {
		return nil, nil, fmt.Errorf("safetensors %s: %s", path, fmt.Sprintf(format, args...))
	}
	f, items, metadata, dataStart, err := openSafetensors(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var total int64
	for _, it := range items {
		total += it.end - it.begin
	}
	if err := safeio.CheckMemory("its tensors", total); err != nil {
		return fail("%v", err)
	}
	out := make(map[string]*tensors.Tensor, len(items))
	for _, it := range items {
		t := tensors.FromShape(it.shape)
		var rerr error
		if it.end > it.begin {
			err := t.MutableBytes(func(data []byte) {
				_, rerr = f.ReadAt(data, dataStart+it.begin)
				switch {
				case rerr != nil:
				case it.shape.DType == dtypes.Bool && slices.ContainsFunc(data, func(b byte) bool { return b > 1 }):
					rerr = errors.New("BOOL data holds a byte other than 0 or 1")
				case !hostLittleEndian:
					swapBytes(data, it.shape.DType.Size())
				}
			})
			if err != nil {
				rerr = err
			}
		}
		if rerr != nil {
			return fail("tensor %q: reading data: %v", it.name, rerr)
		}
		out[it.name] = t
	}
	return out, metadata, nil
}

// SafetensorsShapes reads only the header of a safetensors file: every tensor's shape (with its
// dtype) by name, and the string metadata. It checks the header as ReadSafetensors does.
func SafetensorsShapes(path string) (map[string]shapes.Shape, map[string]string, error) {
	f, items, metadata, _, err := openSafetensors(path)
	if err != nil {
		return nil, nil, err
	}
	f.Close()
	out := make(map[string]shapes.Shape, len(items))
	for _, it := range items {
		out[it.name] = it.shape
	}
	return out, metadata, nil
}

// safetensorsItem is one tensor of a safetensors header.
type safetensorsItem struct {
	name       string
	shape      shapes.Shape
	begin, end int64
}

// openSafetensors opens path and validates its header: the open file, the tensors in name order,
// the metadata and the offset of the data buffer.
func openSafetensors(path string) (*os.File, []safetensorsItem, map[string]string, int64, error) {
	fail := func(format string, args ...any) (*os.File, []safetensorsItem, map[string]string, int64, error) {
		return nil, nil, nil, 0, fmt.Errorf("safetensors %s: %s", path, fmt.Sprintf(format, args...))
	}
	f, err := safeio.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fail("%v", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return fail("%v", err)
	}
	fileSize := st.Size()
	var lenBytes [8]byte
	if _, err := io.ReadFull(f, lenBytes[:]); err != nil {
		return fail("truncated file: %d bytes, need at least 8 for the header size", fileSize)
	}
	n := binary.LittleEndian.Uint64(lenBytes[:])
	if n > safetensorsMaxHeader {
		return fail("header size %d exceeds the %d-byte limit (corrupt file?)", n, safetensorsMaxHeader)
	}
	if int64(n) > fileSize-8 {
		return fail("truncated file: header size %d but only %d bytes follow", n, fileSize-8)
	}
	header := make([]byte, n)
	if _, err := io.ReadFull(f, header); err != nil {
		return fail("reading header: %v", err)
	}
	if !bytes.HasPrefix(header, []byte("{")) {
		return fail("header does not start with '{'")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(header, &raw); err != nil {
		return fail("invalid JSON header: %v", err)
	}
	metadata := map[string]string{}
	if m, ok := raw[metadataKey]; ok {
		delete(raw, metadataKey)
		if err := json.Unmarshal(m, &metadata); err != nil || metadata == nil {
			return fail("header field %q must be an object of strings", metadataKey)
		}
	}
	dataSize := fileSize - 8 - int64(n)

	items := make([]safetensorsItem, 0, len(raw))
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		var e safetensorsEntry
		dec := json.NewDecoder(bytes.NewReader(raw[name]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return fail("tensor %q: invalid header entry: %v", name, err)
		}
		dt, ok := dtypeFromSafetensors[e.DType]
		if !ok {
			return fail("tensor %q: unsupported dtype %q", name, e.DType)
		}
		if e.Shape == nil || len(e.DataOffsets) != 2 {
			return fail("tensor %q: header entry needs \"shape\" and two \"data_offsets\"", name)
		}
		numel := int64(1)
		for _, d := range e.Shape {
			if d < 0 || (d > 0 && numel > math.MaxInt64/int64(d)/8) {
				return fail("tensor %q: invalid shape %v", name, e.Shape)
			}
			numel *= int64(d)
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		if want := numel * int64(dt.Size()); begin < 0 || end-begin != want {
			return fail("tensor %q: data_offsets %v hold %d bytes, shape %v of %s needs %d", name, e.DataOffsets, end-begin, e.Shape, e.DType, want)
		}
		if end > dataSize {
			return fail("truncated file: tensor %q ends at data byte %d but the data has %d bytes", name, end, dataSize)
		}
		items = append(items, safetensorsItem{name, shapes.Make(dt, e.Shape...), begin, end})
	}
	// The tensors must cover the data buffer exactly, without holes or overlaps.
	byOffset := slices.Clone(items)
	slices.SortStableFunc(byOffset, func(a, b safetensorsItem) int {
		return cmp.Or(cmp.Compare(a.begin, b.begin), cmp.Compare(a.end, b.end))
	})
	var pos int64
	for _, it := range byOffset {
		if it.begin != pos {
			return fail("tensor %q: data_offsets start at %d, expected %d (holes or overlapping tensors)", it.name, it.begin, pos)
		}
		pos = it.end
	}
	if pos != dataSize {
		return fail("the tensors cover %d data bytes but the file has %d", pos, dataSize)
	}
	ok = true
	return f, items, metadata, 8 + int64(n), nil
}

// EMAScope is the scope of the weights' exponential moving average (train.ema): EMAScope + a
// weight's path holds its average, EMAScope/#steps/{count,decay} the number of updates and the
// decay.
const EMAScope = "/_ema"

// ApplyEMA returns vars with every weight that has an average replaced by the debiased average
// ema/(1 − decay^count) (the EMA starts from zero); it fails if vars hold no EMA.
func ApplyEMA(vars map[string]*tensors.Tensor) (map[string]*tensors.Tensor, error) {
	count, decay := vars[EMAScope+"/#steps/count"], vars[EMAScope+"/#steps/decay"]
	if count == nil || decay == nil {
		return nil, fmt.Errorf("the checkpoint has no EMA of its weights (train with train.ema > 0)")
	}
	n := float64(tensors.MustCopyFlatData[float32](count)[0])
	d := float64(tensors.MustCopyFlatData[float32](decay)[0])
	corr := 1 - math.Pow(d, n)
	if n < 1 || corr <= 0 {
		return nil, fmt.Errorf("the checkpoint's EMA has no updates yet")
	}
	out := maps.Clone(vars)
	for path, t := range vars {
		w, ok := strings.CutPrefix(path, EMAScope)
		if !ok || strings.HasPrefix(w, "/#steps/") {
			continue
		}
		if _, ok := vars[w]; !ok || t.DType() != dtypes.Float32 {
			continue
		}
		v := tensors.MustCopyFlatData[float32](t)
		for i := range v {
			v[i] = float32(float64(v[i]) / corr)
		}
		out[w] = tensors.FromFlatDataAndDimensions(v, t.Shape().Dimensions...)
	}
	return out, nil
}

// Weights keeps the model's weights of a checkpoint's variables, keyed by their exported name
// (the variable path without its leading "/"), and drops training state: the optimizer's moments
// and step counters, the global step, gradient accumulators, the RNG state, the EMA (scopes
// starting with "#" or "_").
func Weights(vars map[string]*tensors.Tensor) map[string]*tensors.Tensor {
	out := map[string]*tensors.Tensor{}
	for path, t := range vars {
		name := strings.TrimPrefix(path, "/")
		first, _, _ := strings.Cut(name, "/")
		if strings.HasPrefix(first, "#") || strings.HasPrefix(first, "_") || strings.Contains(strings.ToLower(first), "optimizer") ||
			strings.Contains(name, "rngstate") || name == "global_step" {
			continue
		}
		out[name] = t
	}
	return out
}

// ExportSafetensors writes the weights of the checkpoint in dir (Weights: no optimizer state) to
// one safetensors file at out. The metadata holds the recipe YAML, the step, the reel format
// version and, for a policy, its spec (policy.json); with ema the weights are their moving average
// (ApplyEMA). It returns the number of tensors and the checkpoint's step.
func ExportSafetensors(dir, out string, ema bool) (n int, step int64, err error) {
	vars, st, err := LoadVariables(dir)
	if err != nil {
		return 0, 0, err
	}
	if ema {
		if vars, err = ApplyEMA(vars); err != nil {
			return 0, 0, fmt.Errorf("%s: %w", dir, err)
		}
	}
	recipe, err := ReadRecipe(dir)
	if err != nil {
		return 0, 0, err
	}
	meta := map[string]string{"format": "reel-safetensors-1", "recipe": string(recipe), "step": strconv.FormatInt(st.Step, 10)}
	if spec, err := safeio.ReadFile(filepath.Join(dir, policy.SpecFile), safeio.JSONLimit); err == nil {
		meta["policy"] = string(spec)
	}
	weights := Weights(vars)
	if err := WriteSafetensors(out, weights, meta); err != nil {
		return 0, 0, fmt.Errorf("export: %w", err)
	}
	return len(weights), st.Step, nil
}
