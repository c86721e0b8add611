package tasks

import (
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/text"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/recipes"
)

func TestGridMasks(t *testing.T) {
	// 1 frame of 4×4, stride 2: labels per pixel → label fractions per 2×2 cell.
	v := data.Video{T: 1, Size: 4, Masks: []uint8{
		0, 0, 1, 1,
		0, 1, 1, 1,
		2, 2, 0, 0,
		2, 2, 0, 3,
	}}
	n := 4
	gt := make([]float32, gtSlots*n)
	valid := make([]float32, gtSlots)
	gridMasks(v, 2, gt, valid)
	require.Equal(t, []float32{0.75, 0, 0, 0.75}, gt[0:n])  // background
	require.Equal(t, []float32{0.25, 1, 0, 0}, gt[n:2*n])   // object 0
	require.Equal(t, []float32{0, 0, 1, 0}, gt[2*n:3*n])    // object 1
	require.Equal(t, []float32{0, 0, 0, 0.25}, gt[3*n:4*n]) // object 2
	require.Equal(t, []float32{1, 1, 1, 1, 0, 0, 0, 0, 0}, valid)
}

// TestHungarianPrepare: trajectories are matched to ground truth by −IoU, exactly: a prediction
// that is a permutation of the ground truth gets each mask as the target of its own latent.
func TestHungarianPrepare(t *testing.T) {
	r, err := recipes.Load("trajvit2-tiny", nil)
	require.NoError(t, err)
	task, err := NewVideoCLIP(r)
	require.NoError(t, err)
	tc := task.(*trajCLIP)
	k, n := tc.traj.Latents, tc.traj.Pixels()
	gt := make([]float32, gtSlots*n)
	valid := make([]float32, gtSlots)
	// Three ground-truth trajectories partitioning the pixels in thirds.
	for p := range n {
		gt[(p%3)*n+p] = 1
	}
	valid[0], valid[1], valid[2] = 1, 1, 1
	// Latent 7 predicts label 0, latent 2 label 1, latent 11 label 2 (soft: 0.9 / rest spread).
	owner := map[int]int{0: 7, 1: 2, 2: 11}
	pred := make([]float32, k*n)
	for p := range n {
		for kk := range k {
			pred[kk*n+p] = 0.1 / float32(k-1)
		}
		pred[owner[p%3]*n+p] = 0.9
	}
	batch := []*tensors.Tensor{nil, nil, tensors.FromFlatDataAndDimensions(gt, 1, gtSlots, n), tensors.FromFlatDataAndDimensions(valid, 1, gtSlots)}
	out, err := tc.Prepare(batch, []*tensors.Tensor{tensors.FromFlatDataAndDimensions(pred, 1, k, n)})
	require.NoError(t, err)
	targets := tensors.MustCopyFlatData[float32](out[4])
	weights := tensors.MustCopyFlatData[float32](out[5])
	for kk := range k {
		label := -1
		for l, o := range owner {
			if o == kk {
				label = l
			}
		}
		if label < 0 {
			require.Zero(t, weights[kk], "latent %d is unmatched", kk)
			require.Equal(t, make([]float32, n), targets[kk*n:(kk+1)*n])
			continue
		}
		require.Equal(t, float32(1), weights[kk])
		require.Equal(t, gt[label*n:(label+1)*n], targets[kk*n:(kk+1)*n], "latent %d ↔ label %d", kk, label)
	}
}

func TestSpearman(t *testing.T) {
	rho, ok := Spearman([]float64{1, 2, 3, 4, 5}, []float64{2, 4, 6, 8, 10})
	require.True(t, ok)
	require.InDelta(t, 1, rho, 1e-12)
	rho, _ = Spearman([]float64{1, 2, 3, 4, 5}, []float64{5, 4, 3, 2, 1})
	require.InDelta(t, -1, rho, 1e-12)
	// Ties get average ranks: x ranks 1.5 1.5 3 4, y ranks 1 2 3 4 → ρ = 0.9486832980505138.
	rho, _ = Spearman([]float64{1, 1, 2, 3}, []float64{1, 2, 3, 4})
	require.InDelta(t, 0.9486832980505138, rho, 1e-12)
	_, ok = Spearman([]float64{1, 1, 1}, []float64{1, 2, 3})
	require.False(t, ok, "constant input has no rank correlation")
}

func TestEncodeText(t *testing.T) {
	v := data.VideoVocab()
	got := EncodeText(v, "a red circle rises", 8)
	require.Equal(t, []int32{text.BOSID, int32(v.ID("a")), int32(v.ID("red")), int32(v.ID("circle")), int32(v.ID("rises")), text.EOSID, 0, 0}, got)
	got = EncodeText(v, "a red circle rises while a blue square falls", 5)
	require.Equal(t, []int32{text.BOSID, int32(v.ID("a")), int32(v.ID("red")), int32(v.ID("circle")), text.EOSID}, got, "truncated, EOS kept")
}

// With model.tokenizer the captions are [BOS tokens… EOS PAD…] of the tokenizer's ids shifted
// past PAD, BOS and EOS, and the text tower's table grows to fit them.
func TestVideoCLIPTokenizer(t *testing.T) {
	tokPath, err := filepath.Abs("../text/testdata/gpt2.json")
	require.NoError(t, err)
	r, err := recipes.Load("vivit-baseline-tiny", []string{"model.tokenizer=" + tokPath, "model.max_text_len=16"})
	require.NoError(t, err)
	task, err := NewVideoCLIP(r)
	require.NoError(t, err)
	vc := task.(*VideoCLIP)
	tok, err := text.Load(tokPath)
	require.NoError(t, err)
	caption := "A red circle moves to the upper left."
	want := tok.Encode(caption)
	got := vc.encodeCaption(caption, 16)
	require.Equal(t, int32(captionBOS), got[0])
	for i, id := range want {
		require.Equal(t, int32(id+3), got[1+i])
	}
	require.Equal(t, int32(captionEOS), got[1+len(want)])
	require.Equal(t, tok.VocabSize()+3, vc.clip.VocabSize)
	files, err := vc.CheckpointFiles()
	require.NoError(t, err)
	require.Contains(t, files, "tokenizer.json")
}
