package tasks

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/recipes"
)

func TestExeVRMKeyframes(t *testing.T) {
	require.Equal(t, []int{0, 3, 6, 9}, keyframes(9, 4))
	require.Equal(t, []int{0, 1, 1, 2}, keyframes(2, 4)) // round(2/3)=1, round(4/3)=1
	require.Equal(t, []int{5}, keyframes(5, 1))
	require.Equal(t, []int{0, 0, 0}, keyframes(0, 3))
}

// flatEpisode is a T-frame episode of s×s images whose frame f has every pixel equal to
// level(f).
func flatEpisode(T, s int, success bool, decision int, level func(f int) float32) rewardEpisode {
	fs := s * s * 3
	e := rewardEpisode{T: T, frames: make([]uint8, T*fs), success: success, decision: decision, kind: "expert", family: "pick"}
	for f := range T {
		for p := range fs {
			e.frames[f*fs+p] = toByte(level(f))
		}
	}
	return e
}

// TestExeVRMFrameDiffBaseline: on episodes whose last frame differs from the first by 0.5
// (successes) or 0.1 (failures) the tuned rule separates them perfectly with a threshold
// between the two, and attributes each success to the keyframe where its one jump happens.
func TestExeVRMFrameDiffBaseline(t *testing.T) {
	const k, s = 4, 2
	var eps []rewardEpisode
	for i := range 6 {
		ok := i%2 == 0
		jump := 3 + i // the frame the level changes at
		d := float32(0.1)
		if ok {
			d = 0.5
		}
		eps = append(eps, flatEpisode(10, s, ok, 9, func(f int) float32 {
			if f >= jump {
				return 0.2 + d
			}
			return 0.2
		}))
	}
	rule := tuneFrameDiff(eps, k, s)
	require.Equal(t, 0, rule.From)
	require.Greater(t, rule.Threshold, 0.1)
	require.Less(t, rule.Threshold, 0.5)
	m := frameDiffBaseline(eps, k, s, rule)
	require.Equal(t, 1.0, m["accuracy"])
	require.Equal(t, 1.0, m["precision"])
	require.Equal(t, 1.0, m["recall"])
	// Keyframes of 10 frames: 0 3 6 9. Successes jump at frames 3, 5, 7: the keyframes that
	// first show it are 3, 6, 9; |attr − 9| / 10 = 0.6, 0.3, 0.
	require.InDelta(t, (0.6+0.3+0)/3, m["attribution_error"], 1e-12)
}

// TestExeVRMRewardMetrics checks the metrics against counts done by hand.
func TestExeVRMRewardMetrics(t *testing.T) {
	eps := []rewardEpisode{
		{T: 10, success: true, decision: 9, kind: "expert", family: "pick"},
		{T: 10, success: true, decision: 9, kind: "expert", family: "push"},
		{T: 10, success: false, kind: "failed:drift", family: "pick"},
		{T: 10, success: false, kind: "adversarial:colour", family: "place"},
		{T: 10, success: false, kind: "adversarial:object", family: "place"},
	}
	pred := []bool{true, false, false, true, false}
	attr := []int{7, 9, 0, 0, 0}
	m := rewardMetrics(eps, pred, attr)
	require.InDelta(t, 3.0/5, m["accuracy"], 1e-12)
	require.InDelta(t, 1.0/2, m["precision"], 1e-12) // tp 1, fp 1
	require.InDelta(t, 1.0/2, m["recall"], 1e-12)    // tp 1, fn 1
	require.InDelta(t, 1.0/2, m["f1"], 1e-12)
	require.InDelta(t, 0.5, m["accuracy_kind_adversarial"], 1e-12)
	require.InDelta(t, 0.5, m["accuracy_kind_expert"], 1e-12)
	require.InDelta(t, 1.0, m["accuracy_kind_failed"], 1e-12)
	require.InDelta(t, 0.5, m["accuracy_family_place"], 1e-12)
	require.InDelta(t, (0.2+0)/2, m["attribution_error"], 1e-12)
}

func TestExeVRMJumpFrameAndLogSigmoid(t *testing.T) {
	require.Equal(t, 2, jumpFrame([]float64{-3, -2.5, 1, 1.2}))
	for _, x := range []float64{-800, -3, 0, 2, 800} {
		want := math.Log(1 / (1 + math.Exp(-x)))
		if math.IsInf(want, 0) {
			want = x // the exact value's limit
		}
		require.InDelta(t, want, logSigmoid(x), 1e-9, "x=%g", x)
	}
}

// TestExeVRMPositiveShare: with data.positive_share the share of "true" answers in training
// batches follows it, whatever the pool's balance (here one success in ten episodes); without it,
// the batches follow the pool.
func TestExeVRMPositiveShare(t *testing.T) {
	count := func(share float64) float64 {
		r, err := recipes.Load("exevrm-tiny", []string{"data.prefix_share=0", "train.batch_size=64"})
		require.NoError(t, err)
		r.Data.PositiveShare = share
		task, err := NewExeVRM(r)
		require.NoError(t, err)
		s := r.Model.ImageSize
		for i := range 10 {
			task.pool = append(task.pool, flatEpisode(4, s, i == 0, 3, func(int) float32 { return 0.5 }))
			task.pool[i].task = "pick up the red circle"
		}
		task.once.Do(func() {})
		pos, n := 0.0, 0.0
		for step := range int64(8) {
			in, err := task.MicroBatch(step)
			require.NoError(t, err)
			tgt, mask := tensors.MustCopyFlatData[int32](in[2]), tensors.MustCopyFlatData[float32](in[3])
			l := r.Model.MaxTextLen
			for b := range len(tgt) / l {
				for p := range l { // the first masked position holds the answer
					if mask[b*l+p] == 1 {
						if int(tgt[b*l+p]) == task.yes {
							pos++
						} else {
							require.Equal(t, task.no, int(tgt[b*l+p]))
						}
						n++
						break
					}
				}
			}
		}
		return pos / n
	}
	require.InDelta(t, 0.1, count(0), 0.05)
	require.InDelta(t, 0.5, count(0.5), 0.07)
	require.Equal(t, 1.0, count(1))
}

// TestExeVRMQwen3VLSetup: model.pretrained must be a Qwen3-VL with spatiotemporal or no pruning
// (one error naming the field); the spatiotemporal rules keep a different number of merged
// tokens per clip (a flat clip keeps what its first frame has beside the uniform background, a
// clip changing everywhere keeps more), none keeps all; the prompt is one vision block per
// temporal patch.
func TestExeVRMQwen3VLSetup(t *testing.T) {
	r, err := recipes.Load("exevrm-qwen3vl-tiny", []string{"pruning.method=stts"})
	require.NoError(t, err)
	_, err = NewExeVRM(r)
	require.ErrorContains(t, err, "pruning.method: \"stts\" with a Qwen3-VL reward model")
	r, err = recipes.Load("exevrm-qwen3vl-tiny", nil)
	require.NoError(t, err)
	q25, err := recipes.Load("stts-videoqa-qwen2.5vl-tiny", nil)
	require.NoError(t, err)
	r.Model.HFConfig = strings.ReplaceAll(q25.Model.HFConfig, "123, \"vision_end_token_id\": 124, \"image_token_id\": 125, \"video_token_id\": 126", "124, \"vision_end_token_id\": 125, \"image_token_id\": 126, \"video_token_id\": 127")
	_, err = NewExeVRM(r)
	require.ErrorContains(t, err, "model.pretrained: task exevrm runs a Qwen3-VL reward model")

	for _, method := range []string{"spatiotemporal", "none"} {
		r, err = recipes.Load("exevrm-qwen3vl-tiny", []string{"pruning.method=" + method})
		require.NoError(t, err)
		task, err := NewExeVRM(r)
		require.NoError(t, err)
		q := task.qwen
		require.NotNil(t, q)
		s, f := r.Model.ImageSize, r.Model.Frames
		require.Equal(t, 3*(1+16+1), len(q.prompt.prefix)) // 3 temporal patches of 4×4 tokens
		flat := make([]float32, f*s*s*3)
		for i := range flat {
			flat[i] = 0.5
		}
		for y := range 8 { // an 8×8 square (one merged token) in the first frame's corner
			for x := range 8 {
				for c := range 3 {
					flat[(y*s+x)*3+c] = 0.9
				}
			}
		}
		noisy := make([]float32, len(flat))
		for i := range noisy {
			noisy[i] = float32((i*7919)%251) / 251
		}
		keep := q.keep([][]float32{flat, noisy})
		count := func(k []bool) (n int) {
			for _, x := range k {
				if x {
					n++
				}
			}
			return n
		}
		require.Len(t, keep[0], 48)
		if method == "none" {
			require.Equal(t, []int{48, 48}, []int{count(keep[0]), count(keep[1])})
			continue
		}
		// The flat clip: the grey background is one component of 15 tokens (> 10: dropped), the
		// corner token kept in frame 0 and then unchanged (cosine 1): 1 token.
		require.Equal(t, 1, count(keep[0]))
		require.True(t, keep[0][0])
		require.Equal(t, 48, count(keep[1]))
	}
}

// The frame-difference judge's attribution (largestChange) on episodes that go on after success
// (data.success_tail 10), on exevrm-tiny's 600 held-out episodes: the figures docs/reward-models.md
// gives for why it still beats the model there. Its attribution error is the one `reel eval`
// reports (0.114), the nearest keyframe is 0.049 of an episode from the decision step on average
// (the floor at 6 keyframes), and its keyframe of largest change comes after the decision step
// in 65% of successes, on it in 14%, before it in 21%. Without a tail it is never after.
func TestFrameDiffAttributionOnTails(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		tail                          int
		err, floor, before, at, after float64
	}{{0, 0.102, 0, 0.29, 0.71, 0}, {10, 0.114, 0.049, 0.21, 0.14, 0.65}} {
		r, err := recipes.Load("exevrm-tiny", []string{"eval.episodes=600", "data.success_tail=" + fmt.Sprint(c.tail)})
		require.NoError(t, err)
		task, err := NewExeVRM(r)
		require.NoError(t, err)
		eps, err := task.record(r.Eval.Episodes, true)
		require.NoError(t, err)
		k, s := r.Model.Frames, r.Model.ImageSize
		var n, floor, before, at, after float64
		for _, ep := range eps {
			if !ep.success {
				continue
			}
			n++
			kf := keyframes(ep.T-1, k)
			near := math.Inf(1)
			for _, f := range kf {
				near = min(near, math.Abs(float64(f-ep.decision))/float64(ep.T))
			}
			floor += near
			switch a := kf[largestChange(ep.clip(ep.T-1, k, s), k, s)]; {
			case a < ep.decision:
				before++
			case a == ep.decision:
				at++
			default:
				after++
			}
		}
		m := frameDiffBaseline(eps, k, s, frameDiffRule{})
		require.Equal(t, 248.0, n, "tail %d: successes", c.tail)
		require.InDelta(t, c.err, m["attribution_error"], 0.0005, "tail %d", c.tail)
		require.InDelta(t, c.floor, floor/n, 0.0005, "tail %d", c.tail)
		require.InDelta(t, c.before, before/n, 0.005, "tail %d", c.tail)
		require.InDelta(t, c.at, at/n, 0.005, "tail %d", c.tail)
		require.InDelta(t, c.after, after/n, 0.005, "tail %d", c.tail)
	}
}
