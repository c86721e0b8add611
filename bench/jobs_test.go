package bench

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/internal/usage"
)

// The jobs of a sweep: the reference model at its batch, then one per swept value at the sweep's
// batch; bad settings are usage errors that name the flag.
func TestJobs(t *testing.T) {
	jobs, err := ViTJobs("tiny", 0, []int{16, 64}, 3)
	require.NoError(t, err)
	require.Len(t, jobs, 3)
	require.Equal(t, []int{32, 3, 3}, []int{jobs[0].Batch, jobs[1].Batch, jobs[2].Batch})
	require.Equal(t, []int{64, 16, 64}, []int{jobs[0].Tokens, jobs[1].Tokens, jobs[2].Tokens})
	require.Equal(t, "bench/vit_torch.py", jobs[0].Script)
	require.True(t, PerfectSquare(64))
	require.False(t, PerfectSquare(63))

	_, err = ViTJobs("huge", 0, nil, 1)
	require.True(t, usage.Is(err))
	_, err = VideoJobs("vivit", "tiny", 0.5, 0, "4,3", 1)
	require.True(t, usage.Is(err))
	require.EqualError(t, err, `bench video: --frames: "3" is not a frame count ≥ 2 divisible by the tubelet length 2`)
	_, err = VideoJobs("mamba", "tiny", 0.5, 0, "", 1)
	require.EqualError(t, err, `bench video: --arch "mamba" (want vivit, trajvit2 or stts)`)
	jobs, err = VideoJobs("stts", "tiny", 1, 2, "", 1)
	require.NoError(t, err)
	require.Equal(t, "none", jobs[0].Args[9], "keep 1: the unpruned model")
}
