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

// CheckChunkingFlags checks chunking c as 'reel serve' takes it: c itself (Check; --chunking) and
// that the flags of one mode, changed(flag) saying which were given, come with that mode
// (--ema-weight with ema; --rtc-horizon, --max-guidance and --rtc-schedule with rtc).
func CheckChunkingFlags(c policy.Chunking, changed func(flag string) bool) error {
	if err := c.Check(); err != nil {
		return fmt.Errorf("--chunking: %w", err)
	}
	if changed("ema-weight") && c.Mode != ChunkEMA {
		return fmt.Errorf("--ema-weight applies to --chunking ema, not %s", c.Mode)
	}
	for _, f := range []string{"rtc-horizon", "max-guidance", "rtc-schedule"} {
		if changed(f) && c.Mode != ChunkRTC {
			return fmt.Errorf("--%s applies to --chunking rtc, not %s", f, c.Mode)
		}
	}
	return nil
}

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
