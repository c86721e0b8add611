package serve

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
)

// NDArray is a numpy array on the wire: raw element bytes, a numpy dtype string and a shape.
// It is encoded as the map {"__ndarray__": true, "data": bin, "dtype": str, "shape": [..]},
// the vla-eval numpy codec's format, and Decode turns such maps back into NDArray values.
type NDArray struct {
	Data  []byte
	DType string // numpy dtype: "<f4", "float32", "|u1", "uint8", ">f8", ...
	Shape []int
}

// dtype is a parsed numpy dtype string.
type dtype struct {
	kind  byte // 'f' float, 'i' signed int, 'u' unsigned int, 'b' bool
	size  int  // bytes per element
	order binary.ByteOrder
}

// dtypeNames maps numpy's dtype names to their little-endian dtype strings.
var dtypeNames = map[string]string{
	"float16": "<f2", "float32": "<f4", "float64": "<f8",
	"int8": "|i1", "int16": "<i2", "int32": "<i4", "int64": "<i8",
	"uint8": "|u1", "uint16": "<u2", "uint32": "<u4", "uint64": "<u8",
	"bool": "|b1",
}

// parseDType parses a numpy dtype string such as "<f4", "|u1", ">i8" or a name such as "float32".
func parseDType(s string) (dtype, error) {
	str := s
	if full, ok := dtypeNames[s]; ok {
		str = full
	}
	bad := fmt.Errorf("dtype %q is not supported (expected a numpy bool/int/uint/float dtype such as \"<f4\", \"<f2\", \"float32\" or \"uint8\")", s)
	if len(str) < 2 {
		return dtype{}, bad
	}
	d := dtype{order: binary.LittleEndian}
	switch str[0] {
	case '<', '|', '=':
		str = str[1:]
	case '>':
		d.order = binary.BigEndian
		str = str[1:]
	}
	if len(str) != 2 {
		return dtype{}, bad
	}
	d.kind, d.size = str[0], int(str[1]-'0')
	switch {
	case d.kind == 'f' && (d.size == 2 || d.size == 4 || d.size == 8),
		(d.kind == 'i' || d.kind == 'u') && (d.size == 1 || d.size == 2 || d.size == 4 || d.size == 8),
		d.kind == 'b' && d.size == 1:
		return d, nil
	}
	return dtype{}, bad
}

// NewFloat32Array returns a little-endian float32 ("<f4") array holding v. Without a shape it is
// one-dimensional.
func NewFloat32Array(v []float32, shape ...int) NDArray {
	data := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(x))
	}
	return NDArray{Data: data, DType: "<f4", Shape: defaultShape(len(v), shape)}
}

// NewUint8Array returns a uint8 ("|u1") array holding a copy of v. Without a shape it is
// one-dimensional.
func NewUint8Array(v []uint8, shape ...int) NDArray {
	return NDArray{Data: append([]byte(nil), v...), DType: "|u1", Shape: defaultShape(len(v), shape)}
}

func defaultShape(n int, shape []int) []int {
	if len(shape) == 0 {
		return []int{n}
	}
	return append([]int(nil), shape...)
}

// Len is the number of elements the shape describes (1 for a scalar, zero-dimensional array).
func (a NDArray) Len() int {
	n := 1
	for _, d := range a.Shape {
		n *= d
	}
	return n
}

// Validate checks that the dtype is supported, the shape has no negative dimension and the data
// holds exactly as many bytes as dtype and shape call for.
func (a NDArray) Validate() error {
	d, err := parseDType(a.DType)
	if err != nil {
		return err
	}
	n := 1
	for _, s := range a.Shape {
		if s < 0 {
			return fmt.Errorf("shape %v has a negative dimension", a.Shape)
		}
		if s > 0 && n > math.MaxInt32/s {
			return fmt.Errorf("shape %v is too large", a.Shape)
		}
		n *= s
	}
	if len(a.Data) != n*d.size {
		return fmt.Errorf("%d data bytes do not match dtype %s and shape %v (expected %d)", len(a.Data), a.DType, a.Shape, n*d.size)
	}
	return nil
}

// Float32s returns the elements, in row-major order, converted to float32 from any supported
// dtype (bool as 0/1).
func (a NDArray) Float32s() ([]float32, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	d, _ := parseDType(a.DType)
	out := make([]float32, len(a.Data)/d.size)
	for i := range out {
		b := a.Data[i*d.size : (i+1)*d.size]
		switch d.kind {
		case 'f':
			switch d.size {
			case 2:
				out[i] = halfToFloat32(d.order.Uint16(b))
			case 4:
				out[i] = math.Float32frombits(d.order.Uint32(b))
			default:
				out[i] = float32(math.Float64frombits(d.order.Uint64(b)))
			}
		case 'u', 'b':
			out[i] = float32(readUint(d, b))
		case 'i':
			out[i] = float32(signExtend(readUint(d, b), d.size))
		}
	}
	return out, nil
}

// Uint8s returns the elements of a uint8 array.
func (a NDArray) Uint8s() ([]uint8, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	if d, _ := parseDType(a.DType); d.kind != 'u' || d.size != 1 {
		return nil, fmt.Errorf("dtype %s is not uint8", a.DType)
	}
	return append([]uint8(nil), a.Data...), nil
}

// halfToFloat32 converts an IEEE 754 binary16 value (numpy's float16, "<f2") to float32 exactly:
// subnormals are normalised, infinities and NaNs keep their sign (and NaN payload bits).
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf, NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp != 0: // normal: rebias the exponent from 15 to 127
		return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
	case frac == 0:
		return math.Float32frombits(sign) // ±0
	}
	// subnormal: frac × 2⁻²⁴, shifted until the leading bit is the implicit one
	e := uint32(127 - 15 + 1)
	for frac&0x400 == 0 {
		frac <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (frac&0x3ff)<<13)
}

func readUint(d dtype, b []byte) uint64 {
	switch d.size {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(d.order.Uint16(b))
	case 4:
		return uint64(d.order.Uint32(b))
	default:
		return d.order.Uint64(b)
	}
}

func signExtend(u uint64, size int) int64 {
	shift := 64 - 8*size
	return int64(u<<shift) >> shift
}

// EncodeMsgpack writes the array in the vla-eval numpy codec's map form.
func (a NDArray) EncodeMsgpack(enc *msgpack.Encoder) error {
	shape := a.Shape
	if shape == nil {
		shape = []int{}
	}
	return enc.Encode(map[string]any{
		ndarrayKey: true,
		"data":     a.Data,
		"dtype":    a.DType,
		"shape":    shape,
	})
}

// ndarrayKey marks a map as an encoded NDArray.
const ndarrayKey = "__ndarray__"

// ndarrayFromMap interprets a decoded {"__ndarray__": ...} map. Besides the vla-eval form
// ("__ndarray__": true plus "data") it accepts the raw bytes under "__ndarray__" itself.
func ndarrayFromMap(m map[string]any) (NDArray, error) {
	data, ok := m[ndarrayKey].([]byte)
	if !ok {
		if data, ok = m["data"].([]byte); !ok {
			return NDArray{}, fmt.Errorf("ndarray: \"data\" must be binary bytes, got %s", typeName(m["data"]))
		}
	}
	dt, ok := m["dtype"].(string)
	if !ok {
		return NDArray{}, fmt.Errorf("ndarray: \"dtype\" must be a string, got %s", typeName(m["dtype"]))
	}
	shape, err := intList(m["shape"])
	if err != nil {
		return NDArray{}, fmt.Errorf("ndarray: \"shape\": %w", err)
	}
	a := NDArray{Data: data, DType: dt, Shape: shape}
	if err := a.Validate(); err != nil {
		return NDArray{}, fmt.Errorf("ndarray: %w", err)
	}
	return a, nil
}

// intList converts a decoded msgpack array of integers.
func intList(v any) ([]int, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("expected a list of integers, got %s", typeName(v))
	}
	out := make([]int, len(list))
	for i, x := range list {
		n, ok := asInt(x)
		if !ok || n < 0 || n > math.MaxInt32 {
			return nil, fmt.Errorf("element %d is %v, expected a non-negative integer", i, x)
		}
		out[i] = int(n)
	}
	return out, nil
}

// asInt converts any decoded msgpack integer to int64.
func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	case int:
		return int64(x), true
	}
	return 0, false
}

// asFloat converts any decoded msgpack number to float64.
func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	if n, ok := asInt(v); ok {
		return float64(n), true
	}
	if x, ok := v.(uint64); ok {
		return float64(x), true
	}
	return 0, false
}

// typeName names a decoded msgpack value's type for error messages.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "nothing"
	case map[string]any:
		return "a map"
	case []any:
		return "a list"
	case string:
		return "a string"
	case []byte:
		return "binary bytes"
	case bool:
		return "a boolean"
	case NDArray:
		return "an ndarray"
	case Image:
		return "an encoded image"
	}
	if _, ok := asFloat(v); ok {
		return "a number"
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", v), "*")
}
