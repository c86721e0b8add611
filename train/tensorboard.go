package train

// TensorBoard event files: what `tensorboard --logdir runs/` reads. An event file is a sequence of
// TFRecords (uint64 length, masked CRC-32C of the length, the bytes, masked CRC-32C of the bytes;
// tensorflow/core/lib/io/record_writer.cc), each holding one Event protocol buffer
// (tensorflow/core/util/event.proto; Summary and its Value in
// tensorflow/core/framework/summary.proto). The messages are encoded with the protobuf module's
// wire-format package (google.golang.org/protobuf/encoding/protowire): the few fields written
// here need no generated code.

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"sort"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// TensorBoardDir is the run subdirectory holding the event files.
const TensorBoardDir = "tensorboard"

// Field numbers of event.proto and summary.proto.
const (
	eventWallTime    = 1 // double
	eventStep        = 2 // int64
	eventFileVersion = 3 // string
	eventSummary     = 5 // Summary
	eventSessionLog  = 7 // SessionLog

	summaryValue = 1 // repeated Value

	valueTag         = 1 // string
	valueSimpleValue = 2 // float
	valueImage       = 4 // Image

	imageHeight     = 1 // int32
	imageWidth      = 2 // int32
	imageColorspace = 3 // int32
	imageEncoded    = 4 // bytes

	sessionLogStatus = 1 // enum Status
	sessionStart     = 1 // SessionLog.START
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// maskedCRC is TFRecord's masked CRC-32C.
func maskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, crc32c)
	return ((c >> 15) | (c << 17)) + 0xa282ead8
}

// EventWriter appends events to one TensorBoard event file.
type EventWriter struct {
	f *os.File
	w *bufio.Writer
}

// OpenEventWriter creates a new event file in dir (events.out.tfevents.<unix time>.<host>.reel).
// A run that resumes after step resumeStep (≥ 0) marks it with a SessionLog START at
// resumeStep+1, which tells TensorBoard to discard the earlier files' events from that step on
// (those an interrupted run logged past its last checkpoint).
func OpenEventWriter(dir string, resumeStep int64) (*EventWriter, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	now := time.Now()
	name := fmt.Sprintf("events.out.tfevents.%d.%s.%d.reel", now.Unix(), host, now.Nanosecond())
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return nil, err
	}
	e := &EventWriter{f: f, w: bufio.NewWriter(f)}
	var ev []byte
	ev = protowire.AppendTag(ev, eventWallTime, protowire.Fixed64Type)
	ev = protowire.AppendFixed64(ev, math.Float64bits(float64(now.UnixNano())/1e9))
	ev = protowire.AppendTag(ev, eventFileVersion, protowire.BytesType)
	ev = protowire.AppendString(ev, "brain.Event:2")
	if err := e.record(ev); err != nil {
		f.Close()
		return nil, err
	}
	if resumeStep >= 0 {
		var sl []byte
		sl = protowire.AppendTag(sl, sessionLogStatus, protowire.VarintType)
		sl = protowire.AppendVarint(sl, sessionStart)
		if err := e.record(event(resumeStep+1, eventSessionLog, sl)); err != nil {
			f.Close()
			return nil, err
		}
	}
	return e, e.w.Flush()
}

// event encodes an Event at step whose payload field is field.
func event(step int64, field protowire.Number, payload []byte) []byte {
	var ev []byte
	ev = protowire.AppendTag(ev, eventWallTime, protowire.Fixed64Type)
	ev = protowire.AppendFixed64(ev, math.Float64bits(float64(time.Now().UnixNano())/1e9))
	ev = protowire.AppendTag(ev, eventStep, protowire.VarintType)
	ev = protowire.AppendVarint(ev, uint64(step))
	ev = protowire.AppendTag(ev, field, protowire.BytesType)
	return protowire.AppendBytes(ev, payload)
}

// record writes one TFRecord.
func (e *EventWriter) record(data []byte) error {
	var hdr [12]byte
	binary.LittleEndian.PutUint64(hdr[:8], uint64(len(data)))
	binary.LittleEndian.PutUint32(hdr[8:], maskedCRC(hdr[:8]))
	var tail [4]byte
	binary.LittleEndian.PutUint32(tail[:], maskedCRC(data))
	for _, b := range [][]byte{hdr[:], data, tail[:]} {
		if _, err := e.w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// Scalars writes one Summary of simple values (tag → value, in tag order) at step and flushes.
func (e *EventWriter) Scalars(step int64, values map[string]float64) error {
	tags := make([]string, 0, len(values))
	for k := range values {
		tags = append(tags, k)
	}
	sort.Strings(tags)
	var sum []byte
	for _, tag := range tags {
		var v []byte
		v = protowire.AppendTag(v, valueTag, protowire.BytesType)
		v = protowire.AppendString(v, tag)
		v = protowire.AppendTag(v, valueSimpleValue, protowire.Fixed32Type)
		v = protowire.AppendFixed32(v, math.Float32bits(float32(values[tag])))
		sum = protowire.AppendTag(sum, summaryValue, protowire.BytesType)
		sum = protowire.AppendBytes(sum, v)
	}
	if err := e.record(event(step, eventSummary, sum)); err != nil {
		return err
	}
	return e.w.Flush()
}

// Image writes a PNG (its bytes, width and height) as an image summary under tag at step.
func (e *EventWriter) Image(step int64, tag string, png []byte, width, height int) error {
	var im []byte
	im = protowire.AppendTag(im, imageHeight, protowire.VarintType)
	im = protowire.AppendVarint(im, uint64(height))
	im = protowire.AppendTag(im, imageWidth, protowire.VarintType)
	im = protowire.AppendVarint(im, uint64(width))
	im = protowire.AppendTag(im, imageColorspace, protowire.VarintType)
	im = protowire.AppendVarint(im, 4) // RGBA
	im = protowire.AppendTag(im, imageEncoded, protowire.BytesType)
	im = protowire.AppendBytes(im, png)
	var v []byte
	v = protowire.AppendTag(v, valueTag, protowire.BytesType)
	v = protowire.AppendString(v, tag)
	v = protowire.AppendTag(v, valueImage, protowire.BytesType)
	v = protowire.AppendBytes(v, im)
	var sum []byte
	sum = protowire.AppendTag(sum, summaryValue, protowire.BytesType)
	sum = protowire.AppendBytes(sum, v)
	if err := e.record(event(step, eventSummary, sum)); err != nil {
		return err
	}
	return e.w.Flush()
}

// Close flushes and closes the file.
func (e *EventWriter) Close() error {
	if e == nil {
		return nil
	}
	e.w.Flush()
	return e.f.Close()
}
