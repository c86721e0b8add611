package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHFTokenize encodes and decodes with a fixture tokenizer as a user would, against the ids
// huggingface/tokenizers gave for the same text (text/testdata/llama3.golden.json).
func TestHFTokenize(t *testing.T) {
	fixture, err := filepath.Abs("../../text/testdata/llama3.json")
	require.NoError(t, err)
	b, err := os.ReadFile("../../text/testdata/llama3.golden.json")
	require.NoError(t, err)
	var g struct {
		Cases []struct {
			Text       string `json:"text"`
			IDs        []int  `json:"ids"`
			IDsSpecial []int  `json:"ids_special"`
		} `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(b, &g))
	var c = g.Cases[0]
	for _, x := range g.Cases {
		if x.Text == "Hello, world!" {
			c = x
		}
	}
	require.Equal(t, "Hello, world!", c.Text)
	dir := t.TempDir()
	var out struct {
		IDs  []int  `json:"ids"`
		Text string `json:"text"`
	}
	r := reel(t, dir, "hf", "tokenize", fixture, "--text", c.Text)
	requireOK(t, r)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
	require.Equal(t, c.IDs, out.IDs)

	r = reel(t, dir, "hf", "tokenize", fixture, "--text", c.Text, "--special")
	requireOK(t, r)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
	require.Equal(t, c.IDsSpecial, out.IDs)

	ids, _ := json.Marshal(c.IDs)
	r = reel(t, dir, "hf", "tokenize", fixture, "--decode", string(ids[1:len(ids)-1]))
	requireOK(t, r)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
	require.Equal(t, c.Text, out.Text)

	bad := filepath.Join(dir, "tokenizer.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}`), 0o644))
	line := requireUserError(t, reel(t, dir, "hf", "tokenize", dir, "--text", "x"), 1)
	require.Contains(t, line, bad)
	require.Contains(t, line, "model: merges[0]")
	requireUserError(t, reel(t, dir, "hf", "tokenize", fixture), 2)
	requireUserError(t, reel(t, dir, "hf", "frobnicate"), 2)
}
