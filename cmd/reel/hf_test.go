package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func hfFixture(t *testing.T, name string) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "hf", "testdata", name))
	require.NoError(t, err)
	return dir
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// TestHFRunCLI: `reel hf run` prints the logits of a PaliGemma fixture (image, prefix and suffix
// token types) that the PyTorch reference computed, within 1e-4 relative; `reel hf generate`
// continues its prompt as the reference's greedy decoding does.
func TestHFRunCLI(t *testing.T) {
	dir := hfFixture(t, "paligemma")
	var e struct {
		Tokens     []int         `json:"tokens"`
		TokenTypes []int         `json:"token_types"`
		Prompt     []int         `json:"prompt"`
		Generated  []int         `json:"generated"`
		Logits     [][][]float64 `json:"logits"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &e))
	r := reel(t, t.TempDir(), "hf", "run", dir, "--tokens", joinInts(e.Tokens), "--token-types", joinInts(e.TokenTypes),
		"--pixels", filepath.Join(dir, "pixels.npy"))
	requireOK(t, r)
	var out struct{ Logits [][][]float64 }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	var diff, scale float64
	for i := range e.Logits[0] {
		for j, want := range e.Logits[0][i] {
			diff = math.Max(diff, math.Abs(out.Logits[0][i][j]-want))
			scale = math.Max(scale, math.Abs(want))
		}
	}
	require.Less(t, diff/scale, 1e-4)

	r = reel(t, t.TempDir(), "hf", "generate", dir, "--tokens", joinInts(e.Prompt), "--pixels", filepath.Join(dir, "pixels.npy"),
		"--max-new-tokens", strconv.Itoa(len(e.Generated)))
	requireOK(t, r)
	var gen struct{ Generated []int }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &gen))
	require.Equal(t, e.Generated, gen.Generated)

	r = reel(t, t.TempDir(), "hf", "inspect", dir)
	requireOK(t, r)
	require.Contains(t, r.stdout, "PaliGemmaForConditionalGeneration")
	require.Contains(t, r.stdout, "16 tokens per image at placeholder id 255")
}

// TestHFCLIErrors: bad input is one line "reel: …" and a non-zero exit.
func TestHFCLIErrors(t *testing.T) {
	dir := hfFixture(t, "paligemma")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"hf", "run", dir, "--tokens", "1,2,x"}, `--tokens: "x" is not an integer`},
		{[]string{"hf", "run", dir, "--tokens", "255,2,3", "--pixels", filepath.Join(dir, "pixels.npy")}, "1 image placeholders (id 255) for 1 image(s) of 16 tokens each (want 16)"},
		{[]string{"hf", "run", filepath.Join(dir, "missing")}, "config.json: no such file or directory"},
		{[]string{"hf", "run", dir, "--tokens", "1,2", "--pixels", filepath.Join(dir, "config.json")}, "not a .npy file"},
	} {
		r := reel(t, t.TempDir(), c.args...)
		require.NotEqual(t, 0, r.code, c.args)
		require.Contains(t, r.stderr, c.want)
		require.Equal(t, 1, strings.Count(strings.TrimSpace(r.stderr), "\n")+1, r.stderr)
		require.True(t, strings.HasPrefix(r.stderr, "reel: "), r.stderr)
	}
}
