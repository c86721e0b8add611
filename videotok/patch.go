package videotok

import (
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/models"
)

// TubeletConfig sizes the ViViT baseline tokenizer (Arnab et al., 2021, "tubelet embedding").
type TubeletConfig struct {
	Frames, ImageSize int
	Tubelet, Patch    int // temporal and spatial extent of a tubelet
	Dim               int // token width
}

// NumTokens is the (fixed) number of tubelets of a video.
func (c TubeletConfig) NumTokens() int {
	g := c.ImageSize / c.Patch
	return (c.Frames / c.Tubelet) * g * g
}

// Tubelets embeds non-overlapping t×p×p space-time patches of video [B, T, S, S, 3] linearly and
// adds a learned position embedding: [B, (T/t)·(S/p)², Dim].
func Tubelets(scope *model.Scope, cfg TubeletConfig, video *Node) *Node {
	scope = models.WithInit(scope)
	d := video.Shape().Dimensions
	b, t, s := d[0], d[1], d[2]
	tt, p := cfg.Tubelet, cfg.Patch
	x := Reshape(video, b, t/tt, tt, s/p, p, s/p, p, 3)
	x = TransposeAllAxes(x, 0, 1, 3, 5, 2, 4, 6, 7) // [B, T/t, S/p, S/p, t, p, p, 3]
	x = Reshape(x, b, cfg.NumTokens(), tt*p*p*3)
	x = AddScalar(MulScalar(x, 2), -1)
	x = models.Linear(scope.In("embed"), x, cfg.Dim, true)
	return models.PositionEmbedding(scope.In("pos_embed"), x)
}
