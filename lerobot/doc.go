// Package lerobot reads, writes, merges and samples robot datasets in the LeRobot format
// (https://github.com/huggingface/lerobot, src/lerobot/datasets/): codebase_version v3.0
// (LeRobot ≥ 0.4: many episodes per parquet and mp4 file, meta/episodes/*.parquet) and v2.1 (one
// parquet and one mp4 per episode, meta/*.jsonl) are read and written; v2.0 is read.
//
// The files follow LeRobot's datasets/ package:
//
//	dataset_metadata.go  meta/info.json (Info, Features), the path templates and layout constants
//	dataset_reader.go    Open / OpenWith → *Dataset: episodes, tasks, statistics, features
//	vectors.go, frames.go  an episode's state/action rows and its decoded camera frames
//	dataset_writer.go    Create → *Writer (v3.0 or v2.1; episodes in any order, laid out by Close)
//	aggregate.go         Merge: shards or versions joined into one v3.0 dataset (aggregate.py)
//	compute_stats.go     per-feature statistics, their aggregation and meta/stats.json
//	video_utils.go       the AV1/H.264 encoding and concatenation LeRobot does with ffmpeg
//	sampler.go           Sampler (seeded frame windows) and Loader (prefetching decoded batches)
//	report.go            StatsReport, what 'reel data stats' prints
//	episode.go           Episode, one recorded trajectory as the simulator produces it
//
// The exported surface: Open/OpenWith/Options and Dataset (Episode, Vectors, Frames, Stats,
// EpisodeMeta, NewSampler, NewLoader); Create/WriterConfig and Writer (Write an Episode, or
// WriteStored a StoredEpisode with CameraFrames); Merge/MergeConfig; Stats (one feature's
// statistics, as meta/stats.json holds them), VectorStats and AggregateStats; Info/Features
// (meta/info.json); Sampler/Loader; StatsReport. One episode type is what the simulator records
// (Episode), one is its storage form (StoredEpisode), and EpisodeMeta is the metadata of either.
//
// Parquet and ffmpeg (package mediaio) are used inside; neither is exposed. The package imports
// no other reel package but policy (camera images and feature names), mediaio and internal/.
package lerobot
