// Package videotok turns videos into token sets for the video encoders: TrajTok's learned
// trajectory tokens (trajtok.go), ViViT's space-time tubelets (patch.go) and the named sizes of
// both (variants.go). Dropping tokens once a video is tokenized is package pruning.
package videotok

// TrajTok, the end-to-end trajectory tokenizer co-trained in TrajViT2 ("TrajTok: Learning
// Trajectory Tokens enables better Video Understanding", Zheng et al., arXiv:2602.22779).
//
//  1. Backbone: per-frame conv features F ∈ R^{T·G·G × C} (G = image_size/stride), flattened
//     over time.
//  2. Grouping: a Perceiver with K learned latents reads the *detached* features (the grouping is
//     trained by the mask losses, not by the contrastive loss through F). Latents and pixels go
//     through MLPs and are L2-normalised; logits_kp = s·cos(e_k, u_p) with the learned, clamped
//     scale s = min(softplus(log_scale) + 1, 20), log_scale initialised to ln 16.
//  3. Soft masks M = softmax_k(logits) (each pixel's masses over the K trajectories sum to 1).
//     Trajectory token z_k = Σ_p M_kp F_p / Σ_p M_kp (gradient reaches F through z).
//  4. Hard assignment = argmax_k; trajectory k is *active* iff it owns ≥ 1 pixel. Only active
//     trajectories are tokens: the count adapts to the video; inside a batch the K slots are padded
//     and an Active mask goes to the encoder.
//
// reel's one addition: a token also gets a motion descriptor — per frame, the trajectory's pixel
// share and its mask-weighted centroid (x, y) — through a linear layer, since mask-averaged
// appearance alone cannot say where a trajectory goes (TrajViT encodes trajectory positions too).

import (
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/layers/activation"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/models"
)

// TrajTokConfig sizes the tokenizer.
type TrajTokConfig struct {
	Frames, ImageSize int
	Stride            int // backbone stride: the mask grid is (ImageSize/Stride)² per frame
	FeatDim           int // backbone channels C
	Latents           int // K, the most trajectories a video can have
	GroupDim          int // dimension of the normalised grouping embeddings (paper: 64)
	Heads             int // Perceiver heads
	Layers            int // Perceiver depth (paper: 2)
}

// Grid is the side of the per-frame feature / mask grid.
func (c TrajTokConfig) Grid() int { return c.ImageSize / c.Stride }

// Pixels is the number of feature-grid cells of a video (N = T·G·G).
func (c TrajTokConfig) Pixels() int { g := c.Grid(); return c.Frames * g * g }

// TrajTokOutput holds the tokenizer's results.
type TrajTokOutput struct {
	Tokens   *Node // [B, K, C] trajectory tokens (appearance + motion)
	Active   *Node // [B, K] bool: the trajectory owns at least one pixel
	Masks    *Node // [B, K, N] soft masks, softmax over K
	Logits   *Node // [B, K, N] grouping logits
	Features *Node // [B, N, C] backbone features
}

// InitLogScale is log_scale's initial value, ln 16.
var InitLogScale = math.Log(16)

// Backbone returns per-frame conv features [B, T·G·G, C] of video [B, T, S, S, 3] (values in [0,1]):
// a stride-s 3×3 conv stem, GELU, a residual 3×3 conv and LayerNorm.
func Backbone(scope *model.Scope, cfg TrajTokConfig, video *Node) *Node {
	d := video.Shape().Dimensions
	b, t, s := d[0], d[1], d[2]
	x := Reshape(video, b*t, s, s, 3)
	x = AddScalar(MulScalar(x, 2), -1)
	x = activation.Apply(activation.TypeGelu, models.Conv2D(scope.In("stem"), x, cfg.FeatDim, 3, cfg.Stride))
	x = Add(x, models.Conv2D(scope.In("conv"), activation.Apply(activation.TypeGelu, x), cfg.FeatDim, 3, 1))
	g := cfg.Grid()
	x = Reshape(x, b, t*g*g, cfg.FeatDim)
	return models.LayerNorm(scope.In("ln"), x)
}

// crossAttention lets queries q [B, Q, D] attend to keys/values kv [B, N, D].
func crossAttention(scope *model.Scope, q, kv *Node, heads int) *Node {
	b, nq, d := q.Shape().Dimensions[0], q.Shape().Dimensions[1], q.Shape().Dimensions[2]
	nk := kv.Shape().Dimensions[1]
	hd := d / heads
	qq := Reshape(models.Linear(scope.In("q"), q, d, true), b, nq, heads, hd)
	kk := Reshape(models.Linear(scope.In("k"), kv, d, true), b, nk, heads, hd)
	vv := Reshape(models.Linear(scope.In("v"), kv, d, true), b, nk, heads, hd)
	out := Reshape(models.AttentionCore(qq, kk, vv, nil), b, nq, d)
	return models.Linear(scope.In("out"), out, d, true)
}

// mlpTo is Linear(in→hidden) → GELU → Linear(hidden→out).
func mlpTo(scope *model.Scope, x *Node, hidden, out int) *Node {
	h := activation.Apply(activation.TypeGelu, models.Linear(scope.In("fc1"), x, hidden, true))
	return models.Linear(scope.In("fc2"), h, out, true)
}

// GroupingScale is s = min(softplus(log_scale) + 1, 20).
func GroupingScale(logScale *Node) *Node {
	return MinScalar(AddScalar(Softplus(logScale), 1), 20)
}

// TrajTok tokenizes video [B, T, S, S, 3].
func TrajTok(scope *model.Scope, cfg TrajTokConfig, video *Node) TrajTokOutput {
	scope = models.WithInit(scope)
	g := video.Graph()
	F := Backbone(scope.In("backbone"), cfg, video) // [B, N, C]
	b, c := F.Shape().Dimensions[0], F.Shape().Dimensions[2]
	k := cfg.Latents
	fd := StopGradient(F)

	// Perceiver over the detached features.
	per := scope.In("perceiver")
	lat := per.VariableWithShape("latents", shapes.Make(F.DType(), k, c)).NodeValue(g)
	x := BroadcastToDims(InsertAxes(lat, 0), b, k, c)
	kv := models.LayerNorm(per.In("ln_kv"), fd)
	for i := range cfg.Layers {
		l := per.In("layer_%d", i)
		x = Add(x, crossAttention(l.In("cross"), models.LayerNorm(l.In("ln_q"), x), kv, cfg.Heads))
		x = models.Block(l.In("self"), x, cfg.Heads, 2, nil)
	}

	// Normalised embeddings and cosine logits with the learned, clamped scale.
	e := L2Normalize(mlpTo(scope.In("latent_mlp"), x, 2*cfg.GroupDim, cfg.GroupDim), -1) // [B, K, Dg]
	u := L2Normalize(mlpTo(scope.In("pixel_mlp"), fd, 2*cfg.GroupDim, cfg.GroupDim), -1) // [B, N, Dg]
	logScale := scope.VariableWithValue("log_scale", float32(InitLogScale)).NodeValue(g)
	logits := Mul(Einsum("bkd,bnd->bkn", e, u), ConvertDType(GroupingScale(logScale), e.DType())) // [B, K, N]
	masks := Softmax(logits, 1)                                                                   // over K

	// Tokens: mask-weighted feature means (+ motion descriptor).
	z := TokenMeans(masks, F) // [B, K, C]
	z = Add(z, models.Linear(scope.In("motion"), motion(cfg, masks), c, true))

	assign := ArgMax(logits, 1, dtypes.Int32)           // [B, N]
	owned := ReduceMax(OneHot(assign, k, F.DType()), 1) // [B, K]
	active := GreaterThan(owned, ScalarZero(g, F.DType()))
	return TrajTokOutput{Tokens: z, Active: active, Masks: masks, Logits: logits, Features: F}
}

// TokenMeans returns Σ_p M_kp F_p / Σ_p M_kp, the appearance part of the trajectory tokens (for
// tests and tools).
func TokenMeans(masks, F *Node) *Node {
	mass := ReduceSum(masks, -1)
	return Div(Einsum("bkn,bnc->bkc", masks, F), InsertAxes(AddScalar(mass, 1e-6), -1))
}

// motion describes each trajectory per frame: its share of the frame's pixels and the
// mask-weighted centroid (x, y) in [-1, 1] → [B, K, 3·T].
func motion(cfg TrajTokConfig, masks *Node) *Node {
	d := masks.Shape().Dimensions
	b, k := d[0], d[1]
	gs := cfg.Grid()
	m := Reshape(masks, b, k, cfg.Frames, gs*gs) // [B, K, T, G²]
	coords := make([]float32, 0, 2*gs*gs)
	for y := range gs {
		for x := range gs {
			coords = append(coords, 2*(float32(x)+0.5)/float32(gs)-1, 2*(float32(y)+0.5)/float32(gs)-1)
		}
	}
	cxy := Const(masks.Graph(), coords)
	cxy = ConvertDType(Reshape(cxy, gs*gs, 2), masks.DType())
	mass := ReduceSum(m, -1)                                                              // [B, K, T]
	centre := Div(Einsum("bktp,pc->bktc", m, cxy), InsertAxes(AddScalar(mass, 1e-6), -1)) // [B, K, T, 2]
	share := InsertAxes(DivScalar(mass, float64(gs*gs)), -1)                              // [B, K, T, 1]
	return Reshape(Concatenate([]*Node{share, centre}, -1), b, k, 3*cfg.Frames)
}
