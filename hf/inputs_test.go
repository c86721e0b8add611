package hf

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/internal/usage"
	"github.com/reelml/reel/text"
)

// TestReadInputs: pixel values are read from the file as ReadNPY reads them; files a model cannot
// take are usage errors naming the flag, a file that cannot be read is not.
func TestReadInputs(t *testing.T) {
	backend := testBackend(t)
	dir := filepath.Join("testdata", "llava-clip-llama")
	m, err := Inspect(backend, dir)
	require.NoError(t, err)
	npy := filepath.Join(dir, "pixels.npy")
	in, err := m.ReadInputs(RunInputs{Tokens: [][]int{{1, 2}}}, InputFiles{Pixels: npy})
	require.NoError(t, err)
	want, err := ReadNPY(npy)
	require.NoError(t, err)
	require.Equal(t, want.Shape(), in.Pixels.Shape())
	require.Equal(t, [][]int{{1, 2}}, in.Tokens)

	_, err = m.ReadInputs(RunInputs{}, InputFiles{Pixels: npy, Image: "x.png"})
	require.True(t, usage.Is(err))
	require.EqualError(t, err, "give --pixels or --image, not both")
	_, err = m.ReadInputs(RunInputs{}, InputFiles{Video: "v.mp4"})
	require.True(t, usage.Is(err))
	require.ErrorContains(t, err, "--video: LlavaForConditionalGeneration takes no videos")
	_, err = m.ReadInputs(RunInputs{}, InputFiles{Pixels: filepath.Join(dir, "missing.npy")})
	require.ErrorContains(t, err, "--pixels: ")
	require.False(t, usage.Is(err))

	q, err := Inspect(backend, filepath.Join("testdata", "qwen2vl-tiny"))
	require.NoError(t, err)
	_, err = q.ReadInputs(RunInputs{}, InputFiles{Pixels: npy})
	require.True(t, usage.Is(err))
	require.ErrorContains(t, err, "its patches need their grid")
}

// TestPrompt: without --chat, Prompt is the processor's layout (PromptIDs) for as many images as
// the inputs hold; --var needs --chat; --chat needs the model's chat template; Qwen-VL's chat
// turn is refused.
func TestPrompt(t *testing.T) {
	backend := testBackend(t)
	dir := filepath.Join("testdata", "llava-clip-llama")
	m, err := Inspect(backend, dir)
	require.NoError(t, err)
	in, err := m.ReadInputs(RunInputs{}, InputFiles{Pixels: filepath.Join(dir, "pixels.npy")})
	require.NoError(t, err)
	tok := text.Words{V: data.SceneVocab()}
	ids, chat, err := m.Prompt(tok, "how many", in, PromptOptions{})
	wantIDs, wantErr := m.PromptIDs(tok, "how many", in.Pixels.Shape().Dimensions[0])
	require.Equal(t, wantErr, err)
	require.Equal(t, wantIDs, ids)
	require.Empty(t, chat)

	_, _, err = m.Prompt(tok, "how many", in, PromptOptions{Vars: []string{"a=1"}})
	require.EqualError(t, err, "--var sets chat template variables: it needs --chat")
	_, _, err = m.Prompt(tok, "how many", in, PromptOptions{Chat: true, Vars: []string{"bad"}})
	require.ErrorContains(t, err, "--var ")
	_, _, err = m.Prompt(tok, "how many", in, PromptOptions{Chat: true})
	require.ErrorContains(t, err, "--chat: ")

	q, err := Inspect(backend, filepath.Join("testdata", "qwen2vl-tiny"))
	require.NoError(t, err)
	_, _, err = q.Prompt(tok, "how many", RunInputs{}, PromptOptions{Chat: true})
	require.ErrorContains(t, err, "--chat does not lay out Qwen-VL vision placeholders yet")
}
