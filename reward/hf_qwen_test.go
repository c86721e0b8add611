package reward

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/backends"
)

// qwenRewardDir is a tiny random Qwen3-VL directory for TOPReward: hf/testdata/qwen3vl-tiny's
// config, weights and processor, Qwen2.5-VL-Instruct's chat template (text/testdata) and a
// word-level tokenizer knowing "True" and Qwen's special tokens (at the config's ids 120–123).
func qwenRewardDir(t *testing.T) (dir string, trueID int) {
	t.Helper()
	dir = t.TempDir()
	cp := func(src, name string) {
		b, err := os.ReadFile(src)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	fix := filepath.Join("..", "hf", "testdata", "qwen3vl-tiny")
	for _, f := range []string{"config.json", "model.safetensors", "preprocessor_config.json"} {
		cp(filepath.Join(fix, f), f)
	}
	cp(filepath.Join("..", "text", "testdata", "templates", "qwen2.5-vl-7b-instruct.jinja"), "chat_template.jinja")
	vocab := map[string]int{"<unk>": 0, "True": 7, "False": 8, "task": 9, "video": 10, "robot": 11, "cube": 12, "pick": 13}
	var added []any
	for id, w := range map[int]string{120: "<|vision_start|>", 121: "<|vision_end|>", 122: "<|image_pad|>", 123: "<|video_pad|>",
		124: "<|im_start|>", 125: "<|im_end|>", 126: "<|endoftext|>"} {
		vocab[w] = id
		added = append(added, map[string]any{"id": id, "content": w, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true})
	}
	tj, err := json.Marshal(map[string]any{"version": "1.0", "model": map[string]any{"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"},
		"pre_tokenizer": map[string]any{"type": "Whitespace"}, "added_tokens": added})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), tj, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer_config.json"),
		[]byte(`{"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "unk_token": "<unk>"}`), 0o644))
	return dir, vocab["True"]
}

// TestHFQwenLogPTrue: TOPReward on a tiny random Qwen3-VL directory, as LeRobot's port lays it out.
// The prompt is the chat template's user turn (video, then the port's prefix) cut at the <|im_end|>
// closing it, then the instruction and the port's suffix ending in "True"; a clip longer than 16
// frames is its last 16 (8 temporal patches), a short one is padded to the temporal patch; and the
// score equals the log-softmax of the full forward pass (hf.Model.Run, checked against PyTorch in
// package hf) at the second-to-last position, read at the last token, "True".
func TestHFQwenLogPTrue(t *testing.T) {
	b, _, err := backends.Select("go")
	require.NoError(t, err)
	dir, trueID := qwenRewardDir(t)
	m, err := OpenPretrained(b, dir)
	require.NoError(t, err)
	defer m.Close()
	h := m.(*HFQwen)
	require.Equal(t, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>"+
		"The above video shows a robot manipulation trajectory that completes the following task: pick the red cube Decide whether the above statement is True or not. The answer is: True",
		h.Prompt("pick the red cube"))

	frames := testFrames(20, 16, 0.1)
	clips := []Clip{{Instruction: "pick the red cube", Frames: frames[:3]}, {Instruction: "pick the red cube", Frames: frames}}
	got, err := m.LogPTrue(clips)
	require.NoError(t, err)
	require.Len(t, got, 2)
	for i, c := range clips {
		in, err := h.Inputs(c)
		require.NoError(t, err)
		require.Equal(t, []int{2, 8}[i], in.VideoGrids[0].T, "clip %d: temporal patches", i)
		last := in.Tokens[0]
		require.Equal(t, trueID, last[len(last)-1])
		if i == 1 { // the last 16 frames: the same video as frames[4:]
			tail, err := h.Inputs(Clip{Instruction: c.Instruction, Frames: frames[4:]})
			require.NoError(t, err)
			require.Equal(t, in.Tokens, tail.Tokens)
			require.Equal(t, in.VideoPixels.Value(), tail.VideoPixels.Value())
		}
		res, err := h.m.Run(b, in)
		require.NoError(t, err)
		logits := res.Logits[0][len(last)-2]
		mx := math.Inf(-1)
		for _, x := range logits {
			mx = math.Max(mx, float64(x))
		}
		sum := 0.0
		for _, x := range logits {
			sum += math.Exp(float64(x) - mx)
		}
		want := float64(logits[trueID]) - mx - math.Log(sum)
		require.InDelta(t, want, got[i], 1e-5, "clip %d", i)
	}
	require.NotEqual(t, got[0], got[1])
}
