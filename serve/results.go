package serve

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/reelml/reel/internal/atomicfile"
	"github.com/reelml/reel/internal/safeio"
)

// Evaluation results in the vla-evaluation-harness's layout (src/vla_eval/results/collector.py
// and merge.py): one JSON line per episode, and an aggregate JSON grouping the episodes by task
// with {agg}_{metric} summaries (mean_success) per task and overall.

// EpisodeRecord is one episode's result, a row of the harness's per-episode results.
type EpisodeRecord struct {
	Benchmark     string         `json:"benchmark,omitempty"`
	Task          string         `json:"task"`
	EpisodeID     int            `json:"episode_id"`
	Metrics       map[string]any `json:"metrics"` // e.g. {"success": true}
	Steps         int            `json:"steps"`
	ElapsedSec    float64        `json:"elapsed_sec"`
	FailureReason string         `json:"failure_reason,omitempty"` // one of the Reason constants
	FailureDetail string         `json:"failure_detail,omitempty"`
	// Extra holds the row's other keys (the task's context: instruction, seed, ...), written
	// flat beside the fields above as the harness writes the task's keys.
	Extra map[string]any `json:"-"`
}

var recordKeys = []string{"benchmark", "task", "episode_id", "metrics", "steps", "elapsed_sec", "failure_reason", "failure_detail"}

// MarshalJSON writes the record with its Extra keys flat.
func (r EpisodeRecord) MarshalJSON() ([]byte, error) {
	m := maps.Clone(r.Extra)
	if m == nil {
		m = map[string]any{}
	}
	type plain EpisodeRecord
	b, err := json.Marshal(plain(r))
	if err != nil {
		return nil, err
	}
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, err
	}
	maps.Copy(m, fields)
	if m["metrics"] == nil {
		m["metrics"] = map[string]any{}
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads a record, keeping keys other than its fields in Extra.
func (r *EpisodeRecord) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	type plain EpisodeRecord
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	if _, ok := m["episode_id"]; !ok {
		return fmt.Errorf(`missing field "episode_id"`)
	}
	if p.Task == "" {
		return fmt.Errorf(`field "task" is missing or empty`)
	}
	*r = EpisodeRecord(p)
	for _, k := range recordKeys {
		delete(m, k)
	}
	if len(m) > 0 {
		r.Extra = map[string]any{}
		for k, raw := range m {
			var v any
			if err := json.Unmarshal(raw, &v); err != nil {
				return fmt.Errorf("field %q: %w", k, err)
			}
			r.Extra[k] = v
		}
	}
	return nil
}

// Success reports the record's metrics.success (false when absent or not a boolean or number).
func (r EpisodeRecord) Success() bool {
	switch v := r.Metrics["success"].(type) {
	case bool:
		return v
	case float64:
		return v != 0
	case int:
		return v != 0
	}
	return false
}

// ShardInfo says which part of an evaluation a result holds: shard ID of Total.
type ShardInfo struct {
	ID    int `json:"id"`
	Total int `json:"total"`
}

// ResultMeta describes an evaluation for its aggregate.
type ResultMeta struct {
	Benchmark      string            // e.g. "reel-sim"
	Mode           string            // "sync" (default)
	HarnessVersion string            // the evaluator's version
	Config         map[string]any    // the evaluation's settings ("seed" is also promoted to the top)
	ServerInfo     map[string]any    // the policy server's hello payload, if any
	MetricKeys     map[string]string // metric → aggregation: mean, sum, max, min (default {"success": "mean"})
	Shard          *ShardInfo        // this result's shard, if sharded
	Partial        bool              // the evaluation stopped before every episode ran
}

// ShardEpisodes returns the work items of shard id of total among n, round-robin as the
// harness's orchestrator assigns (task, episode) items: item i belongs to shard i mod total.
func ShardEpisodes(n, id, total int) ([]int, error) {
	switch {
	case total < 1:
		return nil, fmt.Errorf("number of shards must be ≥ 1, got %d", total)
	case id < 0 || id >= total:
		return nil, fmt.Errorf("shard id must be in [0, %d), got %d", total, id)
	}
	var out []int
	for i := id; i < n; i += total {
		out = append(out, i)
	}
	return out, nil
}

// Aggregate summarises records in the harness's aggregate layout: benchmark, mode,
// harness_version, created_at, tasks (per task: task, episodes, num_episodes, num_errors,
// avg_steps, {agg}_{metric}), config, server_info, seed, metric_keys, {agg}_{metric} over all
// episodes and num_episodes_total (plus shard and partial when set). Tasks are sorted by name and
// episodes by id. Failed episodes count as failures, and num_errors counts them.
func Aggregate(meta ResultMeta, records []EpisodeRecord) map[string]any {
	metricKeys := meta.MetricKeys
	if len(metricKeys) == 0 {
		metricKeys = map[string]string{"success": "mean"}
	}
	mode := meta.Mode
	if mode == "" {
		mode = "sync"
	}
	byTask := map[string][]EpisodeRecord{}
	for _, r := range records {
		byTask[r.Task] = append(byTask[r.Task], r)
	}
	var tasks []map[string]any
	for _, name := range slices.Sorted(maps.Keys(byTask)) {
		eps := byTask[name]
		sort.SliceStable(eps, func(i, j int) bool { return eps[i].EpisodeID < eps[j].EpisodeID })
		steps, errs := 0, 0
		for _, e := range eps {
			steps += e.Steps
			if e.FailureReason != "" {
				errs++
			}
		}
		t := map[string]any{"task": name, "episodes": eps, "num_episodes": len(eps), "avg_steps": float64(steps) / float64(len(eps))}
		if errs > 0 {
			t["num_errors"] = errs
		}
		aggregateMetrics(t, eps, metricKeys)
		tasks = append(tasks, t)
	}
	if tasks == nil {
		tasks = []map[string]any{}
	}
	config := meta.Config
	if config == nil {
		config = map[string]any{}
	}
	out := map[string]any{
		"benchmark":          meta.Benchmark,
		"mode":               mode,
		"harness_version":    meta.HarnessVersion,
		"created_at":         time.Now().UTC().Format("2006-01-02T15:04:05.000000-07:00"),
		"tasks":              tasks,
		"config":             config,
		"metric_keys":        metricKeys,
		"num_episodes_total": len(records),
	}
	if meta.ServerInfo != nil {
		out["server_info"] = meta.ServerInfo
	}
	if seed, ok := config["seed"]; ok {
		out["seed"] = seed
	}
	if meta.Shard != nil {
		out["shard"] = *meta.Shard
	}
	if meta.Partial {
		out["partial"] = true
	}
	aggregateMetrics(out, records, metricKeys)
	return out
}

// aggregateMetrics adds {agg}_{key} for each metric key to m, over the records whose metrics
// hold a number or boolean for it (rounded to 4 decimals, as the harness does).
func aggregateMetrics(m map[string]any, records []EpisodeRecord, metricKeys map[string]string) {
	for key, agg := range metricKeys {
		var vals []float64
		for _, r := range records {
			switch v := r.Metrics[key].(type) {
			case bool:
				vals = append(vals, map[bool]float64{false: 0, true: 1}[v])
			case float64:
				vals = append(vals, v)
			case int:
				vals = append(vals, float64(v))
			}
		}
		if len(vals) == 0 {
			continue
		}
		var x float64
		switch agg {
		case "mean", "sum":
			for _, v := range vals {
				x += v
			}
			if agg == "mean" {
				x /= float64(len(vals))
			}
		case "max":
			x = slices.Max(vals)
		case "min":
			x = slices.Min(vals)
		default:
			continue
		}
		m[agg+"_"+key] = math.Round(x*1e4) / 1e4
	}
}

var (
	unsafeName = regexp.MustCompile(`[^\w\-.]`)
	shardName  = regexp.MustCompile(`_shard(\d+)of(\d+)\.jsonl$`)
)

// ResultStem is the file stem of a benchmark's results, as the harness names them: the
// benchmark's name with characters other than letters, digits, _, - and . replaced by _, and
// _shard{id}of{total} for a shard.
func ResultStem(benchmark string, shard *ShardInfo) string {
	s := unsafeName.ReplaceAllString(benchmark, "_")
	if shard != nil {
		s += fmt.Sprintf("_shard%dof%d", shard.ID, shard.Total)
	}
	return s
}

// WriteResults writes records as DIR/STEM.jsonl, one per line, and their aggregate as
// DIR/STEM_aggregate.json (STEM = ResultStem), atomically, and returns both paths.
func WriteResults(dir string, meta ResultMeta, records []EpisodeRecord) (jsonl, aggregate string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	stem := filepath.Join(dir, ResultStem(meta.Benchmark, meta.Shard))
	jsonl, aggregate = stem+".jsonl", stem+"_aggregate.json"
	sorted := slices.Clone(records)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].EpisodeID < sorted[j].EpisodeID })
	if err := atomicfile.Write(jsonl, func(w *bufio.Writer) error {
		enc := json.NewEncoder(w)
		for _, r := range sorted {
			if r.Benchmark == "" {
				r.Benchmark = meta.Benchmark
			}
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return "", "", err
	}
	if err := WriteAggregate(aggregate, Aggregate(meta, records)); err != nil {
		return "", "", err
	}
	return jsonl, aggregate, nil
}

// WriteAggregate writes an aggregate as indented JSON, atomically.
func WriteAggregate(path string, agg map[string]any) error {
	b, err := json.MarshalIndent(agg, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, func(w *bufio.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// ReadResults reads one result file: a JSONL of episode records, or an aggregate JSON (whose
// episodes are read from its tasks, and whose description becomes meta; nil for a JSONL).
func ReadResults(path string) (records []EpisodeRecord, meta *ResultMeta, err error) {
	b, err := safeio.ReadFile(path, safeio.MetaLimit)
	if err != nil {
		return nil, nil, err
	}
	if !strings.HasSuffix(path, ".jsonl") && json.Valid(b) {
		var probe map[string]json.RawMessage
		if json.Unmarshal(b, &probe) == nil && probe["tasks"] != nil || strings.HasSuffix(path, ".json") {
			return readAggregate(path, b)
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r EpisodeRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, nil, fmt.Errorf("%s:%d: not an episode record: %w", path, line, err)
		}
		records = append(records, r)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return records, nil, nil
}

func readAggregate(path string, b []byte) ([]EpisodeRecord, *ResultMeta, error) {
	var agg struct {
		Benchmark      string            `json:"benchmark"`
		Mode           string            `json:"mode"`
		HarnessVersion string            `json:"harness_version"`
		Config         map[string]any    `json:"config"`
		ServerInfo     map[string]any    `json:"server_info"`
		MetricKeys     map[string]string `json:"metric_keys"`
		Shard          *ShardInfo        `json:"shard"`
		Partial        bool              `json:"partial"`
		Tasks          []struct {
			Task     string          `json:"task"`
			Episodes []EpisodeRecord `json:"episodes"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal(b, &agg); err != nil {
		return nil, nil, fmt.Errorf("%s: not an aggregate result (JSON object with benchmark and tasks): %w", path, err)
	}
	if agg.Tasks == nil {
		return nil, nil, fmt.Errorf("%s: not an aggregate result: no \"tasks\" list", path)
	}
	var records []EpisodeRecord
	for _, t := range agg.Tasks {
		for _, e := range t.Episodes {
			e.Task = t.Task
			if e.Benchmark == "" {
				e.Benchmark = agg.Benchmark
			}
			records = append(records, e)
		}
	}
	meta := &ResultMeta{Benchmark: agg.Benchmark, Mode: agg.Mode, HarnessVersion: agg.HarnessVersion, Config: agg.Config,
		ServerInfo: agg.ServerInfo, MetricKeys: agg.MetricKeys, Shard: agg.Shard, Partial: agg.Partial}
	return records, meta, nil
}

// MergeResults reads the result files of an evaluation's shards (JSONL or aggregate JSON, as
// WriteResults and the harness write them; a JSONL's shard is read from its name,
// NAME_shard{id}of{total}.jsonl) and returns their episodes with a description of the
// whole: the first aggregate's settings, no shard. It refuses files of different benchmarks, an
// episode (task, episode_id) that appears twice and shards of different totals, and warns about
// missing shards and episode counts that do not match the configured one.
func MergeResults(paths []string) (ResultMeta, []EpisodeRecord, []string, error) {
	var meta ResultMeta
	var all []EpisodeRecord
	var warnings []string
	type key struct {
		task string
		id   int
	}
	seen := map[key]string{}
	shards := map[int]string{}
	total := 0
	haveMeta := false
	for _, p := range paths {
		recs, m, err := ReadResults(p)
		if err != nil {
			return meta, nil, nil, err
		}
		bench := ""
		if m != nil {
			bench = m.Benchmark
		}
		for _, r := range recs {
			if bench == "" {
				bench = r.Benchmark
			}
			if r.Benchmark != "" && r.Benchmark != bench {
				return meta, nil, nil, fmt.Errorf("%s: holds episodes of benchmarks %q and %q", p, bench, r.Benchmark)
			}
		}
		switch {
		case meta.Benchmark == "":
			meta.Benchmark = bench
		case bench != "" && bench != meta.Benchmark:
			return meta, nil, nil, fmt.Errorf("%s: benchmark %q, but %s is %q", p, bench, paths[0], meta.Benchmark)
		}
		if m == nil { // a JSONL: its shard, if any, is in its name (ResultStem)
			if sm := shardName.FindStringSubmatch(filepath.Base(p)); sm != nil {
				var id, n int
				fmt.Sscan(sm[1], &id)
				fmt.Sscan(sm[2], &n)
				m = &ResultMeta{Benchmark: bench, Shard: &ShardInfo{ID: id, Total: n}}
			}
		}
		if m != nil {
			if !haveMeta && m.Config != nil {
				meta.Mode, meta.HarnessVersion, meta.Config, meta.ServerInfo, meta.MetricKeys = m.Mode, m.HarnessVersion, m.Config, m.ServerInfo, m.MetricKeys
				haveMeta = true
			}
			meta.Partial = meta.Partial || m.Partial
			if s := m.Shard; s != nil {
				if total != 0 && s.Total != total {
					return meta, nil, nil, fmt.Errorf("%s: shard %d of %d, but other files are shards of %d", p, s.ID, s.Total, total)
				}
				total = s.Total
				if prev, dup := shards[s.ID]; dup {
					return meta, nil, nil, fmt.Errorf("%s and %s are both shard %d of %d", prev, p, s.ID, s.Total)
				}
				shards[s.ID] = p
			}
		}
		for _, r := range recs {
			k := key{r.Task, r.EpisodeID}
			if prev, dup := seen[k]; dup {
				return meta, nil, nil, fmt.Errorf("episode %d of task %q is in both %s and %s", r.EpisodeID, r.Task, prev, p)
			}
			seen[k] = p
			r.Benchmark = meta.Benchmark
			all = append(all, r)
		}
	}
	for id := range total {
		if _, ok := shards[id]; !ok {
			warnings = append(warnings, fmt.Sprintf("shard %d of %d is missing", id, total))
		}
	}
	if want, ok := meta.Config["episodes"].(float64); ok && int(want) != len(all) {
		warnings = append(warnings, fmt.Sprintf("%d episodes merged, the evaluation was configured for %d", len(all), int(want)))
	}
	if meta.Config != nil {
		meta.Config = maps.Clone(meta.Config)
		delete(meta.Config, "shard_id")
		delete(meta.Config, "num_shards")
	}
	return meta, all, warnings, nil
}
