package models

// Graph-wide options of a model's graphs (the recipe's train section says which): the precision of
// matrix products, LoRA adapters on selected Linear layers, and activation checkpointing of
// transformer blocks. Every training and inference graph is configured with Configure, so they
// all compute the same function.

import (
	"math"
	"path"
	"strings"

	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// GraphOptions configure a graph (see Configure).
type GraphOptions struct {
	Precision string     // "f32" (default) or "bf16" (SetPrecision)
	LoRA      LoRAConfig // Rank 0: none
	Remat     bool       // recompute each transformer block's activations in the backward pass
}

// Configure attaches opts to g; the layers read them while the graph is built.
func Configure(g *Graph, opts GraphOptions) {
	SetPrecision(g, opts.Precision)
	if opts.LoRA.Rank > 0 {
		g.AttachState(loraKey{}, opts.LoRA)
	} else {
		g.AttachState(loraKey{}, nil)
	}
	g.AttachState(rematKey{}, opts.Remat)
}

type loraKey struct{}
type rematKey struct{}

// LoRAConfig adds low-rank adapters to Linear layers ("LoRA: Low-Rank Adaptation of Large
// Language Models", Hu et al., arXiv:2106.09685; as PEFT's LoraConfig): y = x·W + b +
// (Alpha/Rank)·dropout(x)·A·B, with A [in, Rank] ~ N(0, 1/in)·… (Kaiming-style, as PEFT's
// default), B [Rank, out] = 0 (so a fresh adapter changes nothing), and W, b frozen.
type LoRAConfig struct {
	Rank    int
	Alpha   float64 // scale numerator; 0 means 2·Rank
	Dropout float64 // on the adapter's input, in training only
	// Targets select the Linear layers by the last element of their scope path ("q_proj",
	// "qkv", "fc1") or by a glob over the whole path ("*/vision/*/attn/*"); empty selects
	// DefaultLoRATargets.
	Targets []string
}

// DefaultLoRATargets are every attention and MLP projection of reel's models and of the
// Hugging Face architectures (Llama/Qwen2/Gemma/SigLIP names).
var DefaultLoRATargets = []string{"q_proj", "k_proj", "v_proj", "o_proj", "out_proj", "gate_proj", "up_proj", "down_proj",
	"fc1", "fc2", "qkv", "q", "kv", "out"}

// Matches reports whether the Linear layer at scope path p gets an adapter.
func (c LoRAConfig) Matches(p string) bool {
	targets := c.Targets
	if len(targets) == 0 {
		targets = DefaultLoRATargets
	}
	p = strings.TrimSuffix(p, "/")
	last := path.Base(p)
	for _, t := range targets {
		if t == last {
			return true
		}
		if ok, _ := path.Match(t, p); ok {
			return true
		}
		if ok, _ := path.Match("/"+strings.TrimPrefix(t, "/"), p); ok {
			return true
		}
	}
	return false
}

// scale is Alpha/Rank.
func (c LoRAConfig) scale() float64 {
	a := c.Alpha
	if a == 0 {
		a = 2 * float64(c.Rank)
	}
	return a / float64(c.Rank)
}

// loraOf returns g's LoRA configuration, if any.
func loraOf(g *Graph) (LoRAConfig, bool) {
	c, ok := g.State(loraKey{}).(LoRAConfig)
	return c, ok && c.Rank > 0
}

// rematOn reports whether g checkpoints its transformer blocks.
func rematOn(g *Graph) bool {
	on, _ := g.State(rematKey{}).(bool)
	return on
}

// LoRAScope is the sub-scope of a Linear layer's scope that holds its adapter ("lora").
const LoRAScope = "lora"

// loraDelta returns, for the Linear layer at scope, the adapter's down-projection
// (Alpha/Rank)·dropout(x)·A [..., Rank] and its up-projection B [Rank, out] (the caller adds
// h·B to the output), or nils if the layer has no adapter. It freezes the layer's base variables.
func loraDelta(scope *model.Scope, x *Node, out int, base ...*model.Variable) (h, b *Node) {
	g := x.Graph()
	cfg, ok := loraOf(g)
	if !ok || !cfg.Matches(scope.Scope()) {
		return nil, nil
	}
	for _, v := range base {
		if v != nil {
			v.SetTrainable(false)
		}
	}
	in := x.Shape().Dimensions[x.Rank()-1]
	ls := scope.In(LoRAScope)
	a := ls.WithInitializer(normalInit(scope.Store(), 1/math.Sqrt(float64(in)))).
		VariableWithShape("a", shapeOfDims(x, in, cfg.Rank)).NodeValue(g)
	b = ls.WithInitializer(zeroInit).VariableWithShape("b", shapeOfDims(x, cfg.Rank, out)).NodeValue(g)
	h = x
	if cfg.Dropout > 0 && scope.IsTraining(g) {
		keep := 1 - cfg.Dropout
		mask := ConvertDType(LessThan(scope.RandomUniform(g, x.Shape()), Scalar(g, x.DType(), keep)), x.DType())
		h = DivScalar(Mul(x, mask), keep)
	}
	return MulScalar(matmulWeight(h, a), cfg.scale()), b
}

func zeroInit(g *Graph, s shapes.Shape) *Node { return Zeros(g, s) }

func shapeOfDims(x *Node, dims ...int) shapes.Shape { return shapes.Make(x.DType(), dims...) }
