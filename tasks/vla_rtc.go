package tasks

// Real-time chunking for a trained policy: a flow network (models.Inpainter) gets a second
// sampling graph, guided toward the actions already committed (policy.Inpainter), which
// policy.Ensemble and the server call under chunking rtc.

import (
	"fmt"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/models"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/train"
)

var _ policy.Inpainter = (*chunkPolicy)(nil)

// guidedSampler is the guided graph of a network that inpaints (nil otherwise): the observation
// and noise inputs of layout, then the committed actions [B, H, A] (raw), their weights [B, H] and
// β (scalar). It compiles on first use.
func (t *VLA) guidedSampler(backend compute.Backend, store *model.Store, layout models.BatchLayout) (*train.Inference, error) {
	ip, ok := t.net.(models.Inpainter)
	if !ok || !ip.Inpaints() {
		return nil, nil
	}
	return train.NewInference(backend, store, t.r.Train, func(scope *model.Scope, in []*Node) []*Node {
		k := len(layout)
		return []*Node{ip.SampleInpainting(scope, layout.Bind(in[:k]), models.Inpainting{Prev: in[k], Weights: in[k+1], MaxGuidance: in[k+2]})}
	})
}

// Close implements Policy.
func (p *chunkPolicy) Close() {
	p.trained.Close()
	if p.guided != nil {
		p.guided.Finalize()
	}
}

// Inpaints implements policy.Inpainter: whether the network samples by flow.
func (p *chunkPolicy) Inpaints() bool { return p.guided != nil }

// ActInpainting implements policy.Inpainter: one call of the guided graph per batch, guides[i]
// continuing observation i (raw units), the guidance weight clipped at maxGuidance.
func (p *chunkPolicy) ActInpainting(obs []policy.Observation, guides []policy.Guide, maxGuidance float64) ([][][]float32, error) {
	if p.guided == nil {
		return nil, fmt.Errorf("policy %s is not a flow-matching policy: it cannot be guided (real-time chunking)", p.task.spec.Name)
	}
	if len(guides) != len(obs) {
		return nil, fmt.Errorf("real-time chunking: %d guides for %d observations", len(guides), len(obs))
	}
	h, a := p.task.spec.Horizon, p.task.spec.ActionDim
	return p.act(obs, func(in []*tensors.Tensor, b, n int) ([]float32, error) {
		for _, x := range p.task.net.Noise(p.rng, b, false) {
			in = append(in, x.Value)
		}
		prev, w := make([]float32, b*h*a), make([]float32, b*h) // padded rows: unguided
		for i, g := range guides {
			if len(g.Weights) > h {
				return nil, fmt.Errorf("real-time chunking: %d weights for a horizon of %d", len(g.Weights), h)
			}
			copy(w[i*h:], g.Weights)
			for k, act := range g.Prev[:min(len(g.Prev), h)] {
				if len(act) != a {
					return nil, fmt.Errorf("real-time chunking: committed action %d has %d values, expected %d", k, len(act), a)
				}
				copy(prev[(i*h+k)*a:], act)
			}
			for k := len(g.Prev); k < min(len(g.Weights), h); k++ {
				w[i*h+k] = 0 // nothing committed there
			}
		}
		in = append(in, tensors.FromFlatDataAndDimensions(prev, b, h, a), tensors.FromFlatDataAndDimensions(w, b, h),
			tensors.FromScalar(float32(maxGuidance)))
		out, err := p.guided.Call(in...)
		if err != nil {
			return nil, err
		}
		defer finalize(out)
		return tensors.MustCopyFlatData[float32](out[0]), nil
	})
}
