package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHFInitCLI(t *testing.T) {
	work := t.TempDir()
	cfg := filepath.Join(hfFixture(t, "qwen3"), "config.json")
	out := filepath.Join(work, "tiny-qwen3")
	r := reel(t, work, "hf", "init", cfg, "--out", out, "--seed", "3")
	requireOK(t, r)
	var res struct {
		Architecture string
		Tensors      int
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	require.Equal(t, "Qwen3ForCausalLM", res.Architecture)
	require.Equal(t, 36, res.Tensors)
	requireOK(t, reel(t, work, "hf", "run", out, "--tokens", "1,2,3"))

	require.NoError(t, os.WriteFile(filepath.Join(out, "keep.txt"), nil, 0o644))
	msg := requireUserError(t, reel(t, work, "hf", "init", cfg, "--out", out), 1)
	require.Contains(t, msg, "keep.txt")
	requireUserError(t, reel(t, work, "hf", "init", cfg), 2)
	bad := filepath.Join(work, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"architectures": ["Qwen3ForCausalLM"], "num_attention_heads": 3, "num_key_value_heads": 2}`), 0o644))
	msg = requireUserError(t, reel(t, work, "hf", "init", bad, "--out", filepath.Join(work, "x")), 1)
	require.Contains(t, msg, "num_key_value_heads")
	_, err := os.Stat(filepath.Join(work, "x"))
	require.True(t, os.IsNotExist(err))
}
