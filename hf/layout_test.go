package hf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/checkpoints"
)

// TestFlatVisionLayout: a VLM saved with its vision tower directly under model.vision_tower
// (transformers 5's PaliGemma and LLaVA, no vision_model level) loads: the fixtures renamed to that
// layout give the same logits as under their own names, and the checkpoint names are kept for
// export.
func TestFlatVisionLayout(t *testing.T) {
	backend := testBackend(t)
	for _, name := range []string{"paligemma", "paligemma2", "llava-siglip-qwen2", "llava-clip-llama"} {
		t.Run(name, func(t *testing.T) {
			src := filepath.Join("testdata", name)
			orig, err := Load(backend, src)
			require.NoError(t, err)
			ts, _, err := checkpoints.ReadSafetensors(filepath.Join(src, "model.safetensors"))
			require.NoError(t, err)
			flat := map[string]*tensors.Tensor{}
			for n, v := range ts {
				if orig.Layout == Layout4 {
					n = layout4To5(n)
				}
				flat[Layout5ToFlat(n)] = v
			}
			require.Contains(t, flat, "model.vision_tower.embeddings.patch_embedding.weight")
			dir := t.TempDir()
			for _, f := range []string{"config.json", "generation_config.json", "pixels.npy"} {
				if b, err := os.ReadFile(filepath.Join(src, f)); err == nil {
					require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
				}
			}
			require.NoError(t, checkpoints.WriteSafetensors(filepath.Join(dir, "model.safetensors"), flat, nil))
			m, err := Load(backend, dir)
			require.NoError(t, err)
			require.Equal(t, Layout5Flat, m.Layout)
			vision := 0
			for _, p := range m.Params {
				require.Equal(t, Layout5ToFlat(p.Name), p.Source)
				if strings.HasPrefix(p.Name, "model.vision_tower.vision_model.") {
					vision++
					require.False(t, strings.HasPrefix(p.Source, "model.vision_tower.vision_model."))
				}
			}
			require.Greater(t, vision, 10)

			e := readExpected(t, src)
			px, err := ReadNPY(filepath.Join(src, "pixels.npy"))
			require.NoError(t, err)
			in := RunInputs{Tokens: [][]int{e.Tokens}, Pixels: px}
			if e.TokenTypes != nil {
				in.TokenTypes = [][]int{e.TokenTypes}
			}
			want, err := orig.Run(backend, in)
			require.NoError(t, err)
			got, err := m.Run(backend, in)
			require.NoError(t, err)
			require.Equal(t, want.Logits, got.Logits, "identical logits under both layouts")
			require.Less(t, maxRelErr(t, flatten3(got.Logits), flatten3f(e.Logits)), 1e-4)
		})
	}
}
