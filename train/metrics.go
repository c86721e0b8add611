package train

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// MetricsFile is the per-run JSON-lines metrics log: one object per training step
// ({"split":"train","step",...,"loss","lr","grad_norm","step_time_s","examples_per_s"}) and one per
// evaluation ({"split":"eval","step",..., "<set>/<metric>": value}).
const MetricsFile = "metrics.jsonl"

// MetricsLog appends rows to RUN/metrics.jsonl.
type MetricsLog struct {
	f *os.File
	w *bufio.Writer
}

// OpenMetrics opens the run's metrics log. When resuming from step, rows after step (written by
// the interrupted run past its last checkpoint) are dropped so the log matches the run exactly.
func OpenMetrics(runDir string, step int64, resume bool) (*MetricsLog, error) {
	p := filepath.Join(runDir, MetricsFile)
	if resume {
		rows, err := ReadMetrics(p)
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		var keep []string
		for _, r := range rows {
			if s, _ := r["step"].(float64); int64(s) <= step {
				b, _ := json.Marshal(r)
				keep = append(keep, string(b))
			}
		}
		body := strings.Join(keep, "\n")
		if body != "" {
			body += "\n"
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return nil, err
		}
	}
	flags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	if !resume {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(p, flags, 0o644)
	if err != nil {
		return nil, err
	}
	return &MetricsLog{f: f, w: bufio.NewWriter(f)}, nil
}

// Write appends one row and flushes it (so a crash loses nothing already logged).
func (m *MetricsLog) Write(row map[string]any) error {
	b, err := json.Marshal(row)
	if err != nil {
		return err
	}
	if _, err := m.w.Write(append(b, '\n')); err != nil {
		return err
	}
	return m.w.Flush()
}

// Close closes the log.
func (m *MetricsLog) Close() error {
	if m == nil {
		return nil
	}
	m.w.Flush()
	return m.f.Close()
}

// ReadMetrics reads a metrics.jsonl file.
func ReadMetrics(p string) ([]map[string]any, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rows []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	line := 0
	for sc.Scan() {
		line++
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", p, line, err)
		}
		rows = append(rows, r)
	}
	return rows, sc.Err()
}

// FormatMetrics renders metrics as "k=v" pairs in key order.
func FormatMetrics(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%.4g", k, m[k])
	}
	return strings.Join(parts, " ")
}
