package hf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"

	"github.com/reelml/reel/internal/safeio"
)

// ReadNPY reads a NumPy .npy file (format versions 1–3, C order, little-endian float32 or
// float64) as a float32 tensor: how `reel hf run --pixels` takes pixel_values. The declared
// shape must match the data bytes (checked before allocating) and every value must be finite.
func ReadNPY(path string) (*tensors.Tensor, error) {
	fail := func(format string, args ...any) (*tensors.Tensor, error) {
		return nil, fmt.Errorf("npy %s: %s", path, fmt.Sprintf(format, args...))
	}
	data, err := safeio.ReadFile(path, safeio.ArrayLimit)
	if err != nil {
		return fail("%v", safeio.Cause(err))
	}
	if len(data) < 10 || !bytes.HasPrefix(data, []byte("\x93NUMPY")) {
		return fail("not a .npy file (no \\x93NUMPY magic)")
	}
	var hlen, off int
	switch data[6] {
	case 1:
		hlen, off = int(binary.LittleEndian.Uint16(data[8:10])), 10
	case 2, 3:
		if len(data) < 12 {
			return fail("truncated header")
		}
		hlen, off = int(binary.LittleEndian.Uint32(data[8:12])), 12
	default:
		return fail("unsupported format version %d", data[6])
	}
	if off+hlen > len(data) {
		return fail("truncated header")
	}
	header := string(data[off : off+hlen])
	body := data[off+hlen:]
	descr := npyField(header, "descr")
	if npyField(header, "fortran_order") == "True" {
		return fail("Fortran-order arrays are not supported (save with np.ascontiguousarray)")
	}
	m := regexp.MustCompile(`'shape'\s*:\s*\(([^)]*)\)`).FindStringSubmatch(header)
	if m == nil {
		return fail("header has no shape")
	}
	var esize int
	switch strings.Trim(descr, "'\"") {
	case "<f4":
		esize = 4
	case "<f8":
		esize = 8
	default:
		return fail("dtype %s is not supported (want little-endian float32 '<f4' or float64 '<f8')", descr)
	}
	// The declared shape is checked against the bytes that are there before anything is
	// allocated from it: a small file declaring 10^10 values is an error, not an allocation.
	var dims []int
	n := 1
	for _, s := range strings.Split(m[1], ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		d, err := strconv.Atoi(s)
		if err != nil || d < 0 {
			return fail("invalid shape (%s)", m[1])
		}
		if d > 0 && n > len(body)/esize/d {
			return fail("shape (%s) declares more values than the file's %d data bytes hold", m[1], len(body))
		}
		dims = append(dims, d)
		n *= d
	}
	if len(body) != esize*n {
		return fail("%d data bytes for %d %s values (shape (%s))", len(body), n, map[int]string{4: "float32", 8: "float64"}[esize], m[1])
	}
	out := make([]float32, n)
	if esize == 4 {
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(body[4*i:]))
		}
	} else {
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(body[8*i:])))
		}
	}
	for i, v := range out {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fail("value %d is %v (pixel values must be finite)", i, v)
		}
	}
	return tensors.FromFlatDataAndDimensions(out, dims...), nil
}

// npyField returns the raw value of a key of the header dict.
func npyField(header, key string) string {
	m := regexp.MustCompile(`'` + key + `'\s*:\s*('[^']*'|[A-Za-z]+)`).FindStringSubmatch(header)
	if m == nil {
		return ""
	}
	return m[1]
}
