package main

import (
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/checkpoints"
)

// SmolVLA from the CLI: the tiny LeRobot-layout smolvla directory (tasks/testdata/lerobot_smolvla,
// written by a PyTorch twin of LeRobot's modeling_smolvla.py) is served as it is; smolvla-tiny
// (random weights, the VLM frozen) fine-tunes on the real G1 dataset fixture, exports with
// --format lerobot (checked by an independent standard-library reader written from LeRobot's
// code, check_smolvla_export.py), and the export serves (the G1 spec) and loads again as model.pretrained: at
// lr 0 with the export's own statistics its evaluation is the run's.
func TestSmolVLAFineTunesServesExports(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes video and trains")
	}
	dir, tiny, args := lerobotPolicyRoundTrip(t, lerobotPolicyCase{recipe: "smolvla-tiny", tiny: "../../tasks/testdata/lerobot_smolvla/tiny",
		checker: "../../tasks/testdata/lerobot_smolvla/check_smolvla_export.py", image: 16, state: make([]float32, 6),
		marker: "(LeRobot smolvla)"})

	// The twin's directory fine-tuned 3 steps exports under exactly the names and shapes of its
	// model.safetensors (written from LeRobot's module tree by gen_smolvla_twin.py); the SmolVLM2
	// is frozen (train_expert_only: train.freeze model.*), so its tensors come back unchanged,
	// while the expert and the projections moved.
	r := reel(t, dir, args("twin", "--set", "model.pretrained="+tiny, "--set", "model.hf_config=", "--set", "model.image_size=16",
		"--set", "train.steps=3", "--set", "train.lr=1e-2", "--set", "train.warmup_steps=0", "--set", "train.eval_every=0")...)
	requireOK(t, r)
	require.Contains(t, r.stderr, "(LeRobot smolvla)")
	requireOK(t, reel(t, dir, "export", "twin", "--format", "lerobot", "--out", "twin-lerobot"))
	want, _, err := checkpoints.ReadSafetensors(filepath.Join(tiny, "model.safetensors"))
	require.NoError(t, err)
	got, _, err := checkpoints.ReadSafetensors(filepath.Join(dir, "twin-lerobot", "model.safetensors"))
	require.NoError(t, err)
	require.ElementsMatch(t, slices.Collect(maps.Keys(want)), slices.Collect(maps.Keys(got)))
	moved := 0
	for name, w := range want {
		require.Equal(t, w.Shape().Dimensions, got[name].Shape().Dimensions, name)
		if name == "model.vlm_with_expert.vlm.lm_head.weight" { // never run; written as the embeddings
			continue
		}
		wv, gv := tensors.MustCopyFlatData[float32](w), tensors.MustCopyFlatData[float32](got[name])
		if strings.HasPrefix(name, "model.vlm_with_expert.vlm.") {
			require.Equal(t, wv, gv, "frozen: %s", name)
		} else if !slices.Equal(wv, gv) {
			moved++
		}
	}
	require.Greater(t, moved, 30, "the expert and the projections trained")
}
