// Package data is the generic data side of training: the synthetic generators (counting / VQA
// scenes, moving-object videos and their captions, video question answering, out-of-distribution
// shifts), question/answer encoding into fixed-length token rows, loaders for real image folders
// and captioned video files (ffmpeg through package mediaio), the reporting-bias audit of text
// corpora and the ordered prefetching Stream the trainer overlaps example generation with.
//
// Robot datasets in the LeRobot format live in package lerobot; the simulator that records
// robot episodes is package sim. data imports no graph or model code.
package data
