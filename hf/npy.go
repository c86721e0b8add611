package hf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"
)

// ReadNPY reads a NumPy .npy file (format versions 1–3, C order, little-endian float32 or
// float64) as a float32 tensor: how `reel hf run --pixels` takes pixel_values.
func ReadNPY(path string) (*tensors.Tensor, error) {
	fail := func(format string, args ...any) (*tensors.Tensor, error) {
		return nil, fmt.Errorf("npy %s: %s", path, fmt.Sprintf(format, args...))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fail("%v", err)
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
		dims = append(dims, d)
		n *= d
	}
	out := make([]float32, n)
	switch strings.Trim(descr, "'\"") {
	case "<f4":
		if len(body) != 4*n {
			return fail("%d data bytes for %d float32 values", len(body), n)
		}
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(body[4*i:]))
		}
	case "<f8":
		if len(body) != 8*n {
			return fail("%d data bytes for %d float64 values", len(body), n)
		}
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(body[8*i:])))
		}
	default:
		return fail("dtype %s is not supported (want little-endian float32 '<f4' or float64 '<f8')", descr)
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
