package tasks

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/hf"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/text"
	"github.com/reelml/reel/train"
)

// TestQwenPatchRows: the graph's patch rows of a batch of images equal the processor's
// hf.QwenPatchify (verified against the PyTorch twin of Qwen2VLImageProcessor) of each image,
// concatenated.
func TestQwenPatchRows(t *testing.T) {
	backend, err := compute.NewWithConfig("go")
	require.NoError(t, err)
	defer backend.Finalize()
	cfg, err := recipes.Load("counting-finetune-qwen2.5vl-tiny", nil)
	require.NoError(t, err)
	task, err := NewVQA(cfg)
	require.NoError(t, err)
	v := task.hfc.QwenVL.Vision
	const b, c, s = 2, 3, 16
	rng := rand.New(rand.NewPCG(1, 2))
	px := make([]float32, b*c*s*s)
	for i := range px {
		px[i] = rng.Float32()
	}
	got := MustExecOnce(backend, func(x *Node) *Node { return QwenPatchRows(x, v) }, tensors.FromFlatDataAndDimensions(px, b, c, s, s))
	var want []float32
	for i := range b {
		one := px[i*c*s*s : (i+1)*c*s*s]
		rows, grid := hf.QwenPatchify([][]float32{one}, c, s, s, v.TemporalPatch, v.PatchSize, v.MergeSize)
		require.Equal(t, [3]int{1, s / v.PatchSize, s / v.PatchSize}, [3]int{grid.T, grid.H, grid.W})
		want = append(want, tensors.MustCopyFlatData[float32](rows)...)
	}
	require.Equal(t, []int{b * (s / v.PatchSize) * (s / v.PatchSize), v.PatchDim()}, got.Shape().Dimensions)
	require.Equal(t, want, tensors.MustCopyFlatData[float32](got))
}

// qwenChatDir is a Qwen2.5-VL directory for the chat-prompt tests: the tiny Qwen2.5-VL fixture's
// config, weights and processor, Qwen2.5-VL-7B-Instruct's chat template (text/testdata) and a
// word-level tokenizer over reel's scene words, the template's words and Qwen's special tokens
// (at the fixture config's vision ids 120–123).
func qwenChatDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	copyFile := func(src, name string) {
		b, err := os.ReadFile(src)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	fix := filepath.Join("..", "hf", "testdata", "qwen2.5vl-tiny")
	for _, f := range []string{"config.json", "model.safetensors", "preprocessor_config.json"} {
		copyFile(filepath.Join(fix, f), f)
	}
	copyFile(filepath.Join("..", "text", "testdata", "templates", "qwen2.5-vl-7b-instruct.jinja"), "chat_template.jinja")
	vocab := map[string]int{}
	sv := data.SceneVocab()
	for i := range sv.Size() {
		vocab[sv.Word(i)] = i
	}
	next := sv.Size()
	for _, w := range []string{"system", "You", "are", "a", "helpful", "assistant", ".", "user", "<unk>"} {
		if _, ok := vocab[w]; !ok {
			vocab[w] = next
			next++
		}
	}
	require.Less(t, next, 120)
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
	return dir
}

// TestQwenVLChatPrompt: counting-finetune-qwen2.5vl's prompt on a directory with Qwen2.5-VL's chat
// template. The prefix (fixed), the question, the assistant header, the answer and <|im_end|>
// that the task builds from pieces equal the tokens of the template's own rendering of the whole
// conversation (user: image + question; assistant: answer) with the image block expanded to one
// pad per merged token; the loss mask covers the answer and <|im_end|>; the M-RoPE positions are
// get_rope_index's closed form for one image (text counting up, the image at (s, s+row, s+col),
// the text after it from s + max(rows, cols)); and the fine-tune's loss falls.
func TestQwenVLChatPrompt(t *testing.T) {
	dir := qwenChatDir(t)
	r, err := recipes.Load("counting-finetune-qwen2.5vl-tiny", []string{"model.pretrained=" + dir, "model.hf_config=",
		"model.image_size=16", "model.max_text_len=24", "train.steps=25", "train.lr=3e-3", "train.warmup_steps=0",
		"train.eval_every=0", "checkpoint.every=0", "eval.examples=16", "eval.batch_size=16", "train.batch_size=8"})
	require.NoError(t, err)
	task, err := NewVQA(r)
	require.NoError(t, err)
	q := task.pre.qwen
	require.NotNil(t, q)
	require.Equal(t, 4, q.imageTokens(), "a 4×4 patch grid merged 2×2")

	tok, err := text.Load(dir)
	require.NoError(t, err)
	tmpl, err := text.LoadChatTemplate(dir, "")
	require.NoError(t, err)
	question, answer := "how many circles are there ?", "3"
	conv := `[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "` + question + `"}]}, {"role": "assistant", "content": "` + answer + `"}]`
	rendered, err := tmpl.RenderJSON([]byte(conv), false, nil)
	require.NoError(t, err)
	want := tok.Encode(strings.Replace(rendered, "<|image_pad|>", strings.Repeat("<|image_pad|>", q.imageTokens()), 1))

	x, y, mask, err := task.encode(question, answer, r.Model.MaxTextLen)
	require.NoError(t, err)
	eos := tok.Special().EOS
	require.Equal(t, 125, eos)
	var got []int
	for _, id := range q.prefix {
		got = append(got, id)
	}
	end := -1
	for i, id := range x {
		if int(id) == tok.Special().Pad { // the padding after the answer's <|im_end|>
			break
		}
		got, end = append(got, int(id)), i
	}
	require.Equal(t, want, got, "rendered: %q", rendered)
	var masked []int
	for i, m := range mask {
		if m > 0 {
			masked = append(masked, int(y[i]))
		}
	}
	require.Equal(t, append(tok.Encode(answer), eos), masked)
	require.Greater(t, end, 0)

	// get_rope_index for one 1×4×4 image (2×2 merged): closed form.
	l := 5
	pos := q.positions(l)
	s := 0
	for q.prefix[s] != 122 {
		s++
	}
	for i := range len(q.prefix) + l {
		var w [3]int
		switch {
		case i < s:
			w = [3]int{i, i, i}
		case i < s+4:
			k := i - s
			w = [3]int{s, s + k/2, s + k%2}
		default:
			p := s + 2 + (i - s - 4)
			w = [3]int{p, p, p}
		}
		require.Equal(t, w, [3]int{pos[0][i], pos[1][i], pos[2][i]}, "token %d", i)
	}

	if testing.Short() {
		return
	}
	backend, err := compute.NewWithConfig("go")
	require.NoError(t, err)
	defer backend.Finalize()
	var log strings.Builder
	out := t.TempDir()
	res, err := train.Run(t.Context(), task, train.Options{Recipe: r, OutDir: out, Backend: backend, Log: &log})
	require.NoError(t, err, log.String())
	require.Regexp(t, `initialised \d+ variables from `+dir, log.String())
	rows, err := train.ReadMetrics(filepath.Join(out, train.MetricsFile))
	require.NoError(t, err)
	first := rows[0]["loss"].(float64)
	t.Logf("loss %.3f → %.3f", first, res.FinalLoss)
	require.Less(t, res.FinalLoss, 0.7*first)
}
