package hf

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestQwen3Config: Qwen3Config's defaults and sliding-window rules (configuration_qwen3.py:
// sliding_window only with use_sliding_window, on the layers from max_window_layers on), and the
// fixture's window matters: the same weights without it give other logits.
func TestQwen3Config(t *testing.T) {
	c, err := ParseConfig(map[string]any{"architectures": []any{"Qwen3ForCausalLM"}})
	require.NoError(t, err)
	d := c.Decoder
	require.Equal(t, "qwen3", c.ModelType)
	require.Equal(t, 128, d.HeadDim, "head_dim 128, not hidden/heads")
	require.True(t, d.QKNorm)
	require.False(t, d.AttnBias || d.OBias || d.TieEmbeddings || d.OffsetNorm)
	require.Zero(t, d.SlidingWindow)
	c, err = ParseConfig(map[string]any{"model_type": "qwen3", "num_hidden_layers": 3.0, "use_sliding_window": true,
		"max_window_layers": 1.0, "attention_bias": true})
	require.NoError(t, err)
	require.Equal(t, []string{"full_attention", "sliding_attention", "sliding_attention"}, c.Decoder.LayerTypes)
	require.Equal(t, 4096, c.Decoder.SlidingWindow)
	require.True(t, c.Decoder.AttnBias && c.Decoder.OBias, "attention_bias puts biases on all four projections")
	c, err = ParseConfig(map[string]any{"model_type": "qwen3", "num_hidden_layers": 2.0, "use_sliding_window": true,
		"sliding_window": nil, "max_window_layers": 0.0})
	require.NoError(t, err)
	require.Equal(t, []string{"full_attention", "full_attention"}, c.Decoder.LayerTypes, "sliding_window null: no window")

	backend := testBackend(t)
	src := filepath.Join("testdata", "qwen3")
	e := readExpected(t, src)
	dir := t.TempDir()
	for _, f := range []string{"model.safetensors", "generation_config.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	var cfg map[string]any
	b, err := os.ReadFile(filepath.Join(src, "config.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &cfg))
	cfg["use_sliding_window"] = false
	b, err = json.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644))
	m, err := Load(backend, dir)
	require.NoError(t, err)
	res, err := m.Run(backend, RunInputs{Tokens: [][]int{e.Tokens}})
	require.NoError(t, err)
	require.Greater(t, maxRelErr(t, flatten3(res.Logits), flatten3f(e.Logits)), 1e-3, "the fixture's sliding window changes the logits")
}
