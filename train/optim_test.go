package train

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/recipes"
)

func TestLearningRateSchedule(t *testing.T) {
	c := recipes.TrainConfig{LR: 1e-3, Steps: 110, WarmupSteps: 10, Schedule: "cosine", MinLRRatio: 0.1}
	require.InDelta(t, 1e-4, LearningRate(c, 0), 1e-12)  // warmup: (0+1)/10 of the peak
	require.InDelta(t, 1e-3, LearningRate(c, 9), 1e-12)  // end of warmup
	require.InDelta(t, 1e-3, LearningRate(c, 10), 1e-12) // cosine starts at the peak
	mid := 1e-4 + (1e-3-1e-4)*0.5*(1+math.Cos(math.Pi*0.5))
	require.InDelta(t, mid, LearningRate(c, 60), 1e-12)
	require.InDelta(t, 1e-4, LearningRate(c, 110), 1e-12) // ends at min_lr_ratio·peak
	c.Schedule = "constant"
	require.InDelta(t, 1e-3, LearningRate(c, 100), 1e-12)
}
