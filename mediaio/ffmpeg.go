// Package mediaio runs the ffmpeg and ffprobe programs (no cgo) for every part of reel that
// reads or writes real video: the synthetic video datasets of package data and the LeRobot
// format of package lerobot. It knows programs, arguments, time limits and error messages, not
// frames or datasets: decoding pipes raw rgb24 frames out of ffmpeg, encoding pipes them in,
// and the callers own the pixel layout.
package mediaio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Timeout bounds every ffmpeg or ffprobe run, so that a damaged file or a stuck pipe never
// hangs. Tests lower it.
var Timeout = 60 * time.Second

// FFmpeg returns the path of the ffmpeg program, or an error saying how to install it.
func FFmpeg() (string, error) {
	p, err := exec.LookPath("ffmpeg")
	if err != nil {
		return "", errors.New("ffmpeg not found on PATH: install it (Debian: apt-get install ffmpeg)")
	}
	return p, nil
}

// FFprobe returns the path of the ffprobe program (installed with ffmpeg).
func FFprobe() (string, error) {
	p, err := exec.LookPath("ffprobe")
	if err != nil {
		return "", errors.New("ffprobe not found on PATH: install ffmpeg (Debian: apt-get install ffmpeg)")
	}
	return p, nil
}

// Run runs ffmpeg with args, stdin and stdout, within Timeout. Its error is one line: the
// first line of ffmpeg's stderr (without the "[demuxer @ 0x...] " prefix and without a leading
// "file:NAME: " naming the input), or how it failed.
func Run(args []string, stdin *bytes.Reader, stdout *bytes.Buffer, input string) error {
	bin, err := FFmpeg()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	if stdout != nil {
		cmd.Stdout = stdout
	}
	stderr := &CappedBuffer{Max: 64 << 10}
	cmd.Stderr = stderr
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("ffmpeg timed out after %v", Timeout)
	}
	if err == nil {
		return nil
	}
	if msg := Message(stderr.String(), input); msg != "" {
		return errors.New("ffmpeg: " + msg)
	}
	return fmt.Errorf("ffmpeg: %w", err)
}

// RunTool runs another program (ffprobe) with args within Timeout and returns its stdout; its
// error is the first line of its stderr.
func RunTool(bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout bytes.Buffer
	stderr := &CappedBuffer{Max: 64 << 10}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Run(); err != nil {
		if msg := Message(stderr.String(), ""); msg != "" {
			return "", errors.New(msg)
		}
		return "", err
	}
	return stdout.String(), nil
}

// Message returns the first non-empty line of ffmpeg's stderr, cleaned up (see Run).
func Message(stderr, input string) string {
	for line := range strings.Lines(stderr) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			if i := strings.Index(line, "] "); i > 0 && strings.Contains(line[:i], " @ 0x") {
				line = strings.TrimSpace(line[i+2:])
			}
		}
		if input != "" {
			line = strings.TrimPrefix(line, input+": ")
		}
		if strings.HasPrefix(line, "Svt[info]") || strings.HasPrefix(line, "Svt[warn]") {
			continue // SVT-AV1 prints its banner whatever ffmpeg's log level
		}
		if line != "" {
			return line
		}
	}
	return ""
}

// CappedBuffer keeps the first Max bytes written to it and discards the rest (a bounded
// stderr).
type CappedBuffer struct {
	bytes.Buffer
	Max int
}

func (b *CappedBuffer) Write(p []byte) (int, error) {
	if room := b.Max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

var (
	encodersOnce sync.Once
	encoders     string
)

// HasEncoder reports whether ffmpeg lists the encoder, e.g. "libx264" or "libsvtav1" (ffmpeg
// is asked once).
func HasEncoder(name string) bool {
	encodersOnce.Do(func() {
		var out bytes.Buffer
		if Run([]string{"-hide_banner", "-nostdin", "-encoders"}, nil, &out, "") == nil {
			encoders = out.String()
		}
	})
	return strings.Contains(encoders, " "+name+" ")
}

// DecodeRate measures ffmpeg's own decoding of the first video stream of path as
// `ffmpeg -benchmark -i PATH [-vf FILTER] -f null -` does (ffmpeg's default threads, every frame
// decoded, filtered when filter is not "", and discarded) and returns the process's wall time
// and the CPU time ffmpeg reports (user + system).
func DecodeRate(path, filter string) (wall, cpu time.Duration, err error) {
	bin, err := FFmpeg()
	if err != nil {
		return 0, 0, err
	}
	args := []string{"-nostdin", "-hide_banner", "-nostats", "-benchmark", "-i", "file:" + path, "-map", "0:v:0"}
	if filter != "" {
		args = append(args, "-vf", filter)
	}
	args = append(args, "-f", "null", "-")
	ctx, cancel := context.WithTimeout(context.Background(), 10*Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	stderr := &CappedBuffer{Max: 1 << 20}
	cmd.Stderr = stderr
	start := time.Now()
	err = cmd.Run()
	wall = time.Since(start)
	if err != nil {
		if msg := Message(stderr.String(), "file:"+path); msg != "" {
			return 0, 0, fmt.Errorf("ffmpeg: %s", msg)
		}
		return 0, 0, fmt.Errorf("ffmpeg: %w", err)
	}
	for line := range strings.Lines(stderr.String()) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "bench: utime="); ok {
			var u, s, r float64
			if _, err := fmt.Sscanf(rest, "%fs stime=%fs rtime=%fs", &u, &s, &r); err == nil {
				cpu = time.Duration((u + s) * float64(time.Second))
			}
		}
	}
	return wall, cpu, nil
}

// FormatFPS writes a frame rate as ffmpeg's arguments take it (shortest exact decimal).
func FormatFPS(fps float64) string { return strconv.FormatFloat(fps, 'g', -1, 64) }

// MaxFPS bounds every frame rate reel reads or writes (a dataset's fps, a recipe's): far above
// any camera or control rate, far below rates whose frame times (1/fps) lose their meaning.
const MaxFPS = 1000
