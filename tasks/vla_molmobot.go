package tasks

import (
	"fmt"

	"github.com/reelml/reel/losses"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/recipes"
)

// The MolmoBot-style policy family (model.arch policy, models.MolmoBotPolicy): the recipe's ViT
// and instruction backbone with a flow-matching (policy.head flow) or chunk-regression (mse)
// action head.

func init() { registerVLAFamily("policy", openMolmoBot) }

type molmoBotFamily struct {
	r     *recipes.Recipe
	codec *textCodec
}

func openMolmoBot(r *recipes.Recipe, ckpt string) (vlaFamily, error) {
	codec, err := molmoBotText(r, ckpt)
	if err != nil {
		return nil, err
	}
	return &molmoBotFamily{r: r, codec: codec}, nil
}

// molmoBotText is the instruction codec of the MolmoBot backbone (and RD-VLA's): model.tokenizer
// with its ids shifted past the padding id 0 — the checkpoint's copy when reopening one — or
// reel's word vocabulary.
func molmoBotText(r *recipes.Recipe, ckpt string) (*textCodec, error) {
	path := r.Model.Tokenizer
	if path != "" && ckpt != "" && hasTokenizer(ckpt) {
		path = ckpt // the tokenizer travels in the checkpoint
	}
	return instructionText(path, 1)
}

func (f *molmoBotFamily) text() *textCodec { return f.codec }

// molmoBotNet sizes the MolmoBot backbone and action expert of recipe r for spec.
func molmoBotNet(r *recipes.Recipe, spec policy.Spec, vocab int) models.VLAConfig {
	m, p := r.Model, r.Policy
	return models.VLAConfig{
		Vision: models.ViTConfig{ImageSize: m.ImageSize, PatchSize: m.PatchSize, Dim: m.VisionDim, Layers: m.VisionLayers,
			Heads: m.VisionHeads, MLPRatio: m.MLPRatio, SinCos: m.SinCosPos, ConvStem: m.ConvStem},
		Cameras: len(spec.Cameras), Dim: m.TextDim, Layers: m.TextLayers, Heads: m.TextHeads, MLPRatio: m.MLPRatio,
		MaxTextLen: m.MaxTextLen, VocabSize: vocab, StateDim: spec.StateDim, ActionDim: spec.ActionDim,
		Horizon: p.Horizon, ExpertDim: p.ExpertDim, ExpertHeads: p.ExpertHeads,
	}
}

func (f *molmoBotFamily) network(spec policy.Spec, norm models.Normalization, focus bool) (models.Policy, error) {
	net := molmoBotNet(f.r, spec, f.codec.size())
	p := f.r.Policy
	var head models.ActionHead
	if p.Head == "mse" {
		head = models.ChunkRegressionHead{Net: net}
	} else {
		conv, err := losses.ParseFlowConvention(p.Flow)
		if err != nil {
			return nil, fmt.Errorf("policy.flow: %w", err)
		}
		head = models.FlowMatchingHead{Net: net, Convention: conv, TimeSamples: p.TimeSamples, EulerSteps: p.EulerSteps}
	}
	pol := models.MolmoBotPolicy{Net: net, Head: head, PointWeight: p.PointWeight, Norm: norm}
	if !focus {
		pol.PointWeight = 0
	}
	return pol, nil
}
