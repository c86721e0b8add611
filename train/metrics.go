package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/reelml/reel/internal/safeio"
)

// MetricsFile is the per-run JSON-lines metrics log: one object per training step
// ({"split":"train","step",...,"loss","lr","grad_norm","step_time_s","examples_per_s"}) and one per
// evaluation ({"split":"eval","step",..., "<set>/<metric>": value}).
const MetricsFile = "metrics.jsonl"

// MetricsLog appends rows to RUN/metrics.jsonl and, as scalars, to a TensorBoard event file in
// RUN/tensorboard/ ("train/loss", "train/lr", …, "eval/<set>/<metric>").
type MetricsLog struct {
	f  *os.File
	w  *bufio.Writer
	tb *EventWriter
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
	resumeStep := int64(-1)
	if resume {
		resumeStep = step
	}
	tb, err := OpenEventWriter(filepath.Join(runDir, TensorBoardDir), resumeStep)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	return &MetricsLog{f: f, w: bufio.NewWriter(f), tb: tb}, nil
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
	if err := m.w.Flush(); err != nil {
		return err
	}
	split, _ := row["split"].(string)
	step, _ := row["step"].(int64)
	if f, ok := row["step"].(float64); ok {
		step = int64(f)
	}
	scalars := map[string]float64{}
	for k, v := range row {
		if k == "split" || k == "step" {
			continue
		}
		if x, ok := toFloat(v); ok && !math.IsNaN(x) && !math.IsInf(x, 0) {
			scalars[split+"/"+k] = x
		}
	}
	if len(scalars) == 0 {
		return nil
	}
	return m.tb.Scalars(step, scalars)
}

// Images adds every PNG in dir (the run's plots) to TensorBoard at step, as "plots/<name>".
func (m *MetricsLog) Images(step int64, dir string) error {
	files, _ := filepath.Glob(filepath.Join(dir, "*.png"))
	sort.Strings(files)
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if err := m.tb.Image(step, "plots/"+strings.TrimSuffix(filepath.Base(p), ".png"), b, cfg.Width, cfg.Height); err != nil {
			return err
		}
	}
	return nil
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	}
	return 0, false
}

// Close closes the log.
func (m *MetricsLog) Close() error {
	if m == nil {
		return nil
	}
	m.w.Flush()
	m.tb.Close()
	return m.f.Close()
}

// ReadMetrics reads a metrics.jsonl file.
func ReadMetrics(p string) ([]map[string]any, error) {
	f, err := safeio.Open(p)
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
			return nil, fmt.Errorf("%s:%d: %w", p, line, err)
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
