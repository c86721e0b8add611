package train

import (
	"fmt"
	"math"
	"sort"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
	gtrain "github.com/gomlx/gomlx/ml/train"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/recipes"
)

// accumScope holds the gradient accumulators (non-trainable, zero between optimizer steps).
const accumScope = "/_grad_accum"

// LearningRate returns the learning rate of optimizer step (0-based): linear warmup to the peak,
// then constant or cosine decay to min_lr_ratio·peak at the last step.
func LearningRate(c recipes.TrainConfig, step int64) float64 {
	peak := c.LR
	if c.WarmupSteps > 0 && step < int64(c.WarmupSteps) {
		return peak * float64(step+1) / float64(c.WarmupSteps)
	}
	if c.Schedule != "cosine" {
		return peak
	}
	span := float64(c.Steps - c.WarmupSteps)
	if span <= 0 {
		return peak
	}
	frac := math.Min(1, float64(step-int64(c.WarmupSteps))/span)
	minLR := peak * c.MinLRRatio
	return minLR + (peak-minLR)*0.5*(1+math.Cos(math.Pi*frac))
}

// newOptimizer returns GoMLX's Adam without weight decay: stepGraph applies AdamW's decoupled
// decay itself, to matrices only (see decayWeights).
func newOptimizer(c recipes.TrainConfig) gtrain.OptimizeWithGradients {
	opt := optimizer.Adam().Betas(c.Beta1, c.Beta2).Epsilon(1e-8).Done()
	withGrads, ok := opt.(gtrain.OptimizeWithGradients)
	if !ok {
		panic(fmt.Sprintf("optimizer %T cannot apply precomputed gradients", opt))
	}
	return withGrads
}

// trainableVars lists the trainable variables the graph uses, in Store order (the order of
// BuildTrainableVariablesGradientsGraph).
func trainableVars(scope *model.Scope, g *Graph) []*model.Variable {
	var vars []*model.Variable
	for v := range scope.IterVariables() {
		if v.Trainable && v.InUseByGraph(g) {
			vars = append(vars, v)
		}
	}
	return vars
}

func accumulator(store *model.Store, v *model.Variable) *model.Variable {
	return store.Scope(model.JoinPath(accumScope, v.Scope())).
		WithInitializer(initializer.Zero).
		VariableWithShape(v.Name(), v.Shape()).
		SetTrainable(false)
}

// decayWeights applies AdamW's decoupled weight decay (Loshchilov & Hutter, 2019),
// w ← w·(1 − lr·λ), to the variables of rank ≥ 2 (dense weights, embeddings) before the Adam
// step reads them. Biases and LayerNorm gains/shifts are not decayed, as in GPT/ViT/torchtune:
// pulling a LayerNorm gain towards 0 only fights the normalisation. (GoMLX's Adam decays all.)
func decayWeights(vars []*model.Variable, g *Graph, lr *Node, wd float64) {
	if wd <= 0 {
		return
	}
	for _, v := range vars {
		if v.Shape().Rank() < 2 || !v.Shape().DType.IsFloat() {
			continue
		}
		w := v.NodeValue(g)
		factor := OneMinus(MulScalar(ConvertDType(lr, w.DType()), wd))
		v.SetNodeValue(Mul(w, factor))
	}
}

// globalNorm is √(Σ‖g‖²) over all gradients.
func globalNorm(grads []*Node) *Node {
	var total *Node
	for _, gr := range grads {
		s := ReduceAllSum(Square(gr))
		if total == nil {
			total = s
		} else {
			total = Add(total, s)
		}
	}
	return Sqrt(total)
}

// stepGraph builds one training micro-step. inputs[0] is the learning rate (scalar float32),
// the rest the micro-batch. With accumulate set it only adds the gradients to the accumulators;
// otherwise it averages accumulated + current gradients over accumSteps, clips them to the
// recipe's global norm and applies AdamW. Outputs: loss and (on apply steps) the gradient norm.
func stepGraph(task Task, c recipes.TrainConfig, opt gtrain.OptimizeWithGradients, accumulate bool) model.CanonicalExecGraphFn {
	return func(scope *model.Scope, g *Graph, inputs []*Node) []*Node {
		scope.SetTraining(g, true)
		models.Configure(g, GraphOptions(c))
		lr := inputs[0]
		loss := task.Loss(scope, inputs[1:])
		vars := trainableVars(scope, g)
		grads := scope.BuildTrainableVariablesGradientsGraph(loss)
		store := scope.Store()
		if accumulate {
			for i, v := range vars {
				acc := accumulator(store, v)
				acc.SetNodeValue(Add(acc.NodeValue(g), grads[i]))
			}
			return []*Node{loss, ZerosLike(loss)}
		}
		if c.GradAccum > 1 {
			for i, v := range vars {
				acc := accumulator(store, v)
				grads[i] = DivScalar(Add(acc.NodeValue(g), grads[i]), float64(c.GradAccum))
				acc.SetNodeValue(ZerosLike(grads[i]))
			}
		}
		// Sum the squared norms in variable-path order: the Store's order differs between a fresh
		// and a resumed run, and float32 addition is not associative (resume must be bit-exact).
		order := make([]int, len(vars))
		for i := range order {
			order[i] = i
		}
		sort.Slice(order, func(a, b int) bool { return vars[order[a]].Path() < vars[order[b]].Path() })
		sorted := make([]*Node, len(order))
		for i, j := range order {
			sorted[i] = grads[j]
		}
		norm := globalNorm(sorted)
		if c.GradClip > 0 {
			// Scale all gradients by min(1, clip/‖g‖): the direction is kept, the step bounded.
			scale := MinScalar(Div(Scalar(g, norm.DType(), c.GradClip), AddScalar(norm, 1e-6)), 1.0)
			for i := range grads {
				grads[i] = Mul(grads[i], scale)
			}
		}
		optimizer.LearningRateVar(scope, loss.DType(), c.LR).SetNodeValue(ConvertDType(lr, loss.DType()))
		decayWeights(vars, g, lr, c.WeightDecay)
		opt.UpdateGraphWithGradients(scope, grads, loss.DType())
		if c.EMA > 0 {
			updateEMA(store, vars, g, c.EMA)
		}
		return []*Node{loss, norm}
	}
}

// lrTensorShape is the shape of the learning-rate input.
var lrTensorShape = shapes.Make(dtypes.Float32)

// EMAScope holds the exponential moving average of the weights (train.ema), beside the weights:
// for each trainable variable v, ema(v) ← d·ema(v) + (1 − d)·v after every optimizer step,
// starting from zero; EMAScope/#steps/count counts the updates, so that the debiased average
// ema(v)/(1 − d^count) weighs every step's weights by d^(age) exactly (checkpoints.ApplyEMA).
const EMAScope = checkpoints.EMAScope

func updateEMA(store *model.Store, vars []*model.Variable, g *Graph, d float64) {
	count := store.Scope(EMAScope+"/#steps").WithInitializer(initializer.Zero).
		VariableWithShape("count", shapes.Make(dtypes.Float32)).SetTrainable(false)
	count.SetNodeValue(AddScalar(count.NodeValue(g), 1))
	decay := store.Scope(EMAScope+"/#steps").VariableWithValue("decay", float32(d)).SetTrainable(false)
	_ = decay.NodeValue(g)
	for _, v := range vars {
		e := store.Scope(model.JoinPath(EMAScope, v.Scope())).WithInitializer(initializer.Zero).
			VariableWithShape(v.Name(), v.Shape()).SetTrainable(false)
		w := v.NodeValue(g) // the updated weights
		e.SetNodeValue(Add(MulScalar(e.NodeValue(g), d), MulScalar(w, 1-d)))
	}
}
