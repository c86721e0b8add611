package models

// Graph-wide options of a model's graphs (the recipe's train section says which): the precision of
// matrix products, LoRA adapters on selected Linear layers, and activation checkpointing of
// transformer blocks. Every training and inference graph is configured with Configure, so they
// all compute the same function.

import (
	"fmt"
	"maps"
	"math"
	"path"
	"slices"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
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

// Scale is Alpha/Rank, the factor of the adapter's product.
func (c LoRAConfig) Scale() float64 {
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
	return MulScalar(matmulWeight(h, a), cfg.Scale()), b
}

func zeroInit(g *Graph, s shapes.Shape) *Node { return Zeros(g, s) }

func shapeOfDims(x *Node, dims ...int) shapes.Shape { return shapes.Make(x.DType(), dims...) }

// LoRAPaths returns, for the variable path of an adapter's A ("…/q_proj/lora/a", with or
// without the leading "/"), the paths of its B and of the adapted layer's weights, and whether
// the path is an adapter's A at all.
func LoRAPaths(aPath string) (bPath, weights string, ok bool) {
	layer, ok := strings.CutSuffix(aPath, "/"+LoRAScope+"/a")
	if !ok {
		return "", "", false
	}
	return layer + "/" + LoRAScope + "/b", layer + "/weights", true
}

// MergeLoRA folds the adapters of a model's variables (keyed by path, as a checkpoint holds them)
// into the adapted layers' weights: W [in, out] becomes W + (Alpha/Rank)·A·B for A [in, Rank]
// and B [Rank, out] (PEFT's merge_and_unload, W + scale·B·A in its [out, in] layout), and the
// adapter variables are dropped. It returns the new map (the input is not modified) and the
// merged layers' weight paths in order. An adapter whose weights are missing or do not match
// its shapes is an error naming it.
func MergeLoRA(vars map[string]*tensors.Tensor, cfg LoRAConfig) (map[string]*tensors.Tensor, []string, error) {
	out := maps.Clone(vars)
	var merged []string
	for _, p := range slices.Sorted(maps.Keys(vars)) {
		bp, wp, ok := LoRAPaths(p)
		if !ok {
			continue
		}
		a, b, w := vars[p], vars[bp], vars[wp]
		if b == nil || w == nil {
			return nil, nil, fmt.Errorf("LoRA adapter %s: no %s or no %s", p, bp, wp)
		}
		ad, bd, wd := a.Shape().Dimensions, b.Shape().Dimensions, w.Shape().Dimensions
		if len(ad) != 2 || len(bd) != 2 || len(wd) != 2 || ad[0] != wd[0] || bd[1] != wd[1] || ad[1] != bd[0] {
			return nil, nil, fmt.Errorf("LoRA adapter %s: A %v and B %v do not factor the weights %v", p, ad, bd, wd)
		}
		if a.DType() != dtypes.Float32 || b.DType() != dtypes.Float32 || w.DType() != dtypes.Float32 {
			return nil, nil, fmt.Errorf("LoRA adapter %s: merging needs float32 variables, got %s, %s, %s", p, a.DType(), b.DType(), w.DType())
		}
		av, bv, wv := tensors.MustCopyFlatData[float32](a), tensors.MustCopyFlatData[float32](b), tensors.MustCopyFlatData[float32](w)
		in, r, o := wd[0], ad[1], wd[1]
		s := cfg.Scale()
		for i := range in {
			for j := range o {
				d := 0.0
				for k := range r {
					d += float64(av[i*r+k]) * float64(bv[k*o+j])
				}
				wv[i*o+j] = float32(float64(wv[i*o+j]) + s*d)
			}
		}
		out[wp] = tensors.FromFlatDataAndDimensions(wv, wd...)
		delete(out, p)
		delete(out, bp)
		merged = append(merged, wp)
	}
	return out, merged, nil
}
