package lerobot

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"

	"github.com/parquet-go/parquet-go"

	"github.com/reelml/reel/internal/atomicfile"
)

// MergeConfig configures Merge.
type MergeConfig struct {
	Overwrite bool // replace an existing dataset at the destination
	// ChunksSize, DataFilesSizeInMB and VideoFilesSizeInMB lay out the result (defaults 1000,
	// 100, 200).
	ChunksSize, DataFilesSizeInMB, VideoFilesSizeInMB int
}

// lrSourceRows says where a merged episode's rows are: episode pos of dataset ds.
type lrSourceRows struct {
	ds  *Dataset
	pos int
}

// Merge joins the datasets srcs (any readable version; in the order given) into one
// v3.0 dataset at dst, with LeRobot's aggregate semantics (huggingface/lerobot
// src/lerobot/datasets/aggregate.py): the sources must have the same fps, robot_type and
// features (video encoder settings aside); episodes are renumbered in order, frames get new
// global indices, tasks are unified by text and renumbered by first appearance, parquet rows
// are copied with their episode_index, index and task_index rewritten, video files are joined
// by stream copy with every episode's time range moved by the frames before it, and the
// statistics are aggregated. The per-episode statistics of the index columns are recomputed
// and the dataset statistics aggregated from every episode's, so merging the shards of a
// dataset gives the dataset that one writer would have written.
//
// The merged dataset is built beside dst and swapped in only once complete: a merge that fails
// (a damaged source, a full disk) leaves an existing dataset at dst byte for byte as it was.
func Merge(dst string, srcs []string, cfg MergeConfig) error {
	if _, err := checkLeRobotDirReplaceable(dst, cfg.Overwrite); err != nil {
		return err
	}
	return atomicfile.ReplaceDir(dst, func(tmp string) error { return mergeInto(tmp, dst, srcs, cfg) })
}

// mergeInto is Merge writing into the empty directory build; errors name dst.
func mergeInto(build, dst string, srcs []string, cfg MergeConfig) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("lerobot merge into %s: %s", dst, fmt.Sprintf(format, args...))
	}
	if len(srcs) == 0 {
		return fail("no source datasets")
	}
	absDst, _ := filepath.Abs(dst)
	var sets []*Dataset
	for _, s := range srcs {
		if abs, _ := filepath.Abs(s); abs == absDst {
			return fail("the destination %s is also a source", s)
		}
		ds, err := Open(s)
		if err != nil {
			return err
		}
		sets = append(sets, ds)
	}
	first := sets[0]
	fps, ok := frameAligned(1, first.info.FPS) // an integer fps
	if !ok {
		return fail("%s: fps %g is not an integer (v3.0 needs one)", first.path(lerobotInfo), first.info.FPS)
	}
	for _, ds := range sets[1:] {
		switch {
		case ds.info.FPS != first.info.FPS:
			return fail("%s: fps %g, but %s has %g", ds.path(lerobotInfo), ds.info.FPS, first.dir, first.info.FPS)
		case ds.info.RobotType != first.info.RobotType:
			return fail("%s: robot_type %q, but %s has %q", ds.path(lerobotInfo), ds.info.RobotType, first.dir, first.info.RobotType)
		}
		if err := sameFeatures(first.info.Features, ds.info.Features); err != nil {
			return fail("%s: %v (%s differs)", ds.path(lerobotInfo), err, first.dir)
		}
	}
	if err := prepareLeRobotDir(build, false); err != nil {
		return err
	}
	b := &lrBuild{dir: build, fps: int(fps), stateDim: first.stateDim, actionDim: first.actionDim,
		cfg: WriterConfig{RobotType: first.info.RobotType, ChunksSize: cmp.Or(cfg.ChunksSize, defaultChunksSize),
			DataFilesSizeInMB:  cmp.Or(cfg.DataFilesSizeInMB, lerobotDefaultDataFileMB),
			VideoFilesSizeInMB: cmp.Or(cfg.VideoFilesSizeInMB, lerobotDefaultVideoFileMB)},
		features: mergedFeatures(sets)}
	if b.cfg.RobotType == "" {
		b.cfg.RobotType = lerobotRobotType
	}
	for _, c := range first.cams {
		if !c.video {
			continue
		}
		f, _ := first.info.Features.Get(c.key)
		b.cams = append(b.cams, lrBuildCamera{key: c.key, w: c.w, h: c.h, codec: lrCodec{name: fmt.Sprint(f.Info["video.codec"])}})
	}
	allStats := true
	for _, ds := range sets {
		for i, e := range ds.episodes {
			for _, t := range e.tasks {
				b.taskIndex(t)
			}
			stats := map[string]Stats{}
			for k, s := range e.stats {
				if k != "episode_index" && k != "index" && k != "task_index" {
					stats[k] = s.clone()
				}
			}
			if e.stats == nil {
				allStats = false
			}
			out := lrBuildEpisode{ep: lrEpisode{length: e.length, tasks: slices.Clone(e.tasks), success: e.success, family: e.family,
				seed: e.seed, kind: e.kind, decision: e.decision, stats: stats}, rows: &lrSourceRows{ds: ds, pos: i}}
			for c, cam := range ds.cams {
				if cam.video {
					ref := e.videos[c]
					ref.file = ds.path(ref.file)
					out.videoSrc = append(out.videoSrc, ref)
				}
			}
			b.add(out)
		}
	}
	if err := b.writeV3(); err != nil {
		return fail("%v", err)
	}
	if !allStats { // some source has no per-episode statistics: aggregate the sources' own
		var each []map[string]Stats
		for _, ds := range sets {
			m, err := ds.Stats()
			if err != nil {
				return err
			}
			each = append(each, m)
		}
		stats, err := aggregateStatsMaps(each)
		if err != nil {
			return fail("%v", err)
		}
		raw, err := marshalStatsJSON(stats, b.featureOrder())
		if err != nil {
			return fail("%v", err)
		}
		if err := atomicfile.WriteFile(filepath.Join(build, filepath.FromSlash(lerobotStats)), raw); err != nil {
			return fail("%v", err)
		}
	}
	return nil
}

// videoEncoderKeys are the info keys that describe how a video was encoded rather than what it
// holds (LeRobot's VIDEO_ENCODER_INFO_KEYS); they may differ between merged datasets.
var videoEncoderKeys = []string{"video.g", "video.crf", "video.preset", "video.fast_decode", "video.extra_options", "video.video_backend"}

// sameFeatures compares two datasets' features as LeRobot's features_equal_for_merge does.
func sameFeatures(a, b Features) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d features, want %d", len(b), len(a))
	}
	for _, fa := range a {
		fb, ok := b.Get(fa.Key)
		if !ok {
			return fmt.Errorf("no feature %q", fa.Key)
		}
		norm := func(f Feature) string {
			f.Info = maps.Clone(f.Info)
			for _, k := range videoEncoderKeys {
				delete(f.Info, k)
			}
			raw, _ := json.Marshal(f)
			return string(raw)
		}
		if norm(fa) != norm(fb) {
			return fmt.Errorf("feature %q is %s, want %s", fa.Key, norm(fb), norm(fa))
		}
	}
	return nil
}

// mergedFeatures are the first dataset's features with each video encoder key kept only when
// every source agrees on it (null otherwise), as LeRobot's
// merge_video_feature_info_for_aggregate does.
func mergedFeatures(sets []*Dataset) Features {
	out := slices.Clone(sets[0].info.Features)
	for i, f := range out {
		if f.DType != "video" {
			continue
		}
		info := maps.Clone(f.Info)
		if info == nil {
			info = map[string]any{}
		}
		for _, k := range videoEncoderKeys {
			v, has := info[k]
			for _, ds := range sets[1:] {
				o, _ := ds.info.Features.Get(f.Key)
				ov, ohas := o.Info[k]
				if has != ohas || fmt.Sprint(v) != fmt.Sprint(ov) {
					info[k] = nil
				}
			}
		}
		out[i].Info = info
	}
	return out
}

// copyDataRows writes the data file at path holding the episodes file (indices into
// b.episodes, all merged ones), copying their source rows with episode_index, index and
// task_index rewritten, one row group per episode.
func (b *lrBuild) copyDataRows(path string, file []int) error {
	var schema *parquet.Schema
	var kv []string
	var out bytes.Buffer
	var w *parquet.Writer
	cache := map[string]map[int64][]parquet.Row{} // source file → rows by episode_index
	for _, i := range file {
		e := &b.episodes[i]
		src := e.rows.ds
		se := src.episodes[e.rows.pos]
		srcPath := src.path(se.dataFile)
		byEp, ok := cache[srcPath]
		if !ok {
			var s *parquet.Schema
			var err error
			byEp, s, kv, err = readSourceRows(srcPath, !src.v3)
			if err != nil {
				return err
			}
			if schema == nil {
				schema = s
				opts := []parquet.WriterOption{schema, parquet.Compression(&parquet.Snappy)}
				for k := 0; k+1 < len(kv); k += 2 {
					opts = append(opts, parquet.KeyValueMetadata(kv[k], kv[k+1]))
				}
				w = parquet.NewWriter(&out, opts...)
			} else if s.String() != schema.String() {
				return fmt.Errorf("%s: parquet schema differs from the first source's:\n%s", srcPath, s)
			}
			cache = map[string]map[int64][]parquet.Row{srcPath: byEp} // one source file at a time
		}
		key := int64(se.index)
		if !src.v3 {
			key = -1 // v2 files hold one episode
		}
		rows := byEp[key]
		if len(rows) != e.ep.length {
			return fmt.Errorf("%s: %d rows of episode %d, want %d", srcPath, len(rows), se.index, e.ep.length)
		}
		role := map[int]string{} // leaf column → the index column it holds
		for _, name := range []string{"episode_index", "index", "task_index"} {
			if leaf, ok := schema.Lookup(name); ok && leaf.Node != nil && leaf.Node.Leaf() {
				role[leaf.ColumnIndex] = name
			}
		}
		tasks := make([][]int64, len(rows))
		for t, row := range rows {
			for k, v := range row {
				var x int64
				switch role[v.Column()] {
				case "episode_index":
					x = int64(e.ep.index)
				case "index":
					x = e.ep.from + int64(t)
				case "task_index":
					text, known := src.tasks[int(v.Int64())]
					if !known {
						return fmt.Errorf("%s: row of episode %d: task_index %d is not in the tasks file", srcPath, se.index, v.Int64())
					}
					x = int64(b.taskIndex(text))
					tasks[t] = []int64{x}
				default:
					continue
				}
				nv := parquet.Int64Value(x)
				if v.Kind() == parquet.Int32 {
					nv = parquet.Int32Value(int32(x))
				}
				row[k] = nv.Level(v.RepetitionLevel(), v.DefinitionLevel(), v.Column())
			}
		}
		if tasks[0] != nil {
			e.ep.stats["task_index"] = vectorFeatureStats(tasks)
		}
		if _, err := w.WriteRows(rows); err != nil {
			return fmt.Errorf("%s: %s", path, firstLineOf(err.Error()))
		}
		if err := w.Flush(); err != nil {
			return fmt.Errorf("%s: %s", path, firstLineOf(err.Error()))
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("%s: %s", path, firstLineOf(err.Error()))
	}
	if err := atomicfile.WriteFile(path, out.Bytes()); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// readSourceRows reads every row of a data file, by episode_index (by -1 for a v2 file, which
// holds one episode), with its schema and key-value metadata.
func readSourceRows(path string, single bool) (byEp map[int64][]parquet.Row, schema *parquet.Schema, kv []string, err error) {
	p, err := openParquet(path)
	if err != nil {
		return nil, nil, nil, err
	}
	defer p.Close()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: corrupt parquet file: %v", path, firstLineOf(fmt.Sprint(r)))
		}
	}()
	schema = p.pf.Schema()
	for _, m := range p.pf.Metadata().KeyValueMetadata {
		kv = append(kv, m.Key, m.Value)
	}
	epCol := -1
	if leaf, ok := schema.Lookup("episode_index"); ok && !single {
		epCol = leaf.ColumnIndex
	}
	byEp = map[int64][]parquet.Row{}
	buf := make([]parquet.Row, 256)
	for _, rg := range p.pf.RowGroups() {
		rows := rg.Rows()
		for {
			n, err := rows.ReadRows(buf)
			for _, r := range buf[:n] {
				key := int64(-1)
				if epCol >= 0 {
					for _, v := range r {
						if v.Column() == epCol {
							key = v.Int64()
							break
						}
					}
				}
				byEp[key] = append(byEp[key], r.Clone())
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				rows.Close()
				return nil, nil, nil, fmt.Errorf("%s: %s", path, firstLineOf(err.Error()))
			}
		}
		rows.Close()
	}
	return byEp, schema, kv, nil
}
