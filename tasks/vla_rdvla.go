package tasks

import (
	"math"

	"github.com/reelml/reel/models"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/recipes"
)

// The RD-VLA family (model.arch rdvla, models.RDVLAPolicy): the MolmoBot backbone and instruction
// codec with the recurrent-depth action head. Its trained policy iterates the core adaptively
// (recurrentPolicy, vla_policy.go), because models.RDVLAPolicy implements models.Recurrent.

func init() { registerVLAFamily("rdvla", openRDVLA) }

type rdvlaFamily struct{ molmoBotFamily }

func openRDVLA(r *recipes.Recipe, ckpt string) (vlaFamily, error) {
	codec, err := molmoBotText(r, ckpt)
	if err != nil {
		return nil, err
	}
	return &rdvlaFamily{molmoBotFamily{r: r, codec: codec}}, nil
}

func (f *rdvlaFamily) network(spec policy.Spec, norm models.Normalization, focus bool) (models.Policy, error) {
	net := molmoBotNet(f.r, spec, f.codec.size())
	p := f.r.Policy
	head := models.RecurrentDepthHead{RDConfig: models.RDConfig{Net: net, CoreLayers: p.CoreLayers, BPTT: p.BPTT},
		MeanDepth: p.MeanDepth, EvalDepth: int(math.Round(p.MeanDepth))}
	pol := models.RDVLAPolicy{Net: net, Head: head, PointWeight: p.PointWeight, Norm: norm}
	if !focus {
		pol.PointWeight = 0
	}
	return pol, nil
}
