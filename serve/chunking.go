package serve

import (
	"fmt"
	"slices"

	"github.com/reelml/reel/policy"
)

// Chunking modes of Config.Chunking (policy.Chunking: the vla-eval harness's action_ensemble).
const (
	ChunkNewest      = policy.ChunkNewest
	ChunkAverage     = policy.ChunkAverage
	ChunkEMA         = policy.ChunkEMA
	ChunkRTC         = policy.ChunkRTC
	DefaultEMAWeight = policy.DefaultEMAWeight
)

// checkChunking vets Config.Chunking against the spec's chunks and, under rtc, the policy.
func (s *Server) checkChunking() error {
	c, spec := s.cfg.Chunking, s.cfg.Spec
	if spec.Horizon > 0 {
		if err := c.CheckChunks(spec.Horizon, max(1, spec.Execute)); err != nil {
			return err
		}
	} else if err := c.Check(); err != nil {
		return err
	}
	if c.Mode == ChunkRTC {
		if ip, ok := s.policy.(policy.Inpainter); !ok || !ip.Inpaints() {
			return fmt.Errorf("chunking rtc: the policy is not a flow-matching policy (it cannot be guided); use newest, average or ema")
		}
	}
	return nil
}

// actGuided is one batch's policy call under rtc: guided by each request's buffer when any has
// actions to continue, else plain.
func (s *Server) actGuided(obs []policy.Observation, guides []policy.Guide) ([][][]float32, error) {
	if s.cfg.Chunking.Mode == ChunkRTC && slices.ContainsFunc(guides, policy.Guide.Guides) {
		return s.policy.(policy.Inpainter).ActInpainting(obs, guides, s.cfg.Chunking.MaxGuidance)
	}
	return s.policy.Act(obs)
}
