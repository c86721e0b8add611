package serve

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/reelml/reel/policy"
)

// request is one observation waiting for the policy.
type request struct {
	obs   policy.Observation
	guide policy.Guide // under chunking rtc: what the connection's next chunk continues
	done  chan result  // buffered: the dispatcher never blocks on a departed connection
}

type result struct {
	chunk [][]float32
	err   error
}

// query sends obs (with its connection's guide under rtc) through the batcher and waits for its
// action chunk.
func (s *Server) query(ctx context.Context, obs policy.Observation, guide policy.Guide) ([][]float32, error) {
	req := &request{obs: obs, guide: guide, done: make(chan result, 1)}
	select {
	case s.reqs <- req:
	case <-ctx.Done():
		return nil, fmt.Errorf("server shutting down")
	}
	select {
	case res := <-req.done:
		return res.chunk, res.err
	case <-ctx.Done():
		return nil, fmt.Errorf("server shutting down")
	}
}

// dispatch collects requests into batches, at most MaxBatch, waiting at most BatchWindow after a
// batch's first request, and runs them one batch at a time. A /config change applies at once,
// to the batch being collected too: its deadline becomes its first request's time plus the new
// window.
func (s *Server) dispatch() {
	defer close(s.dispatchDone)
	for {
		var batch []*request
		select {
		case r := <-s.reqs:
			batch = append(batch, r)
		case <-s.ctx.Done():
			return
		}
		start := time.Now()
		maxBatch, window := s.Batching()
		timer := time.NewTimer(window)
	collect:
		for len(batch) < maxBatch {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			case <-s.batching: // /config changed: the waiting batch follows the new values
				maxBatch, window = s.Batching()
				timer.Reset(max(0, window-time.Since(start)))
			case <-timer.C:
				break collect
			case <-s.ctx.Done():
				break collect
			}
		}
		timer.Stop()
		s.runBatch(batch)
	}
}

// runBatch calls the policy once for the batch and hands each request its chunk, or the error.
func (s *Server) runBatch(batch []*request) {
	obs := make([]policy.Observation, len(batch))
	guides := make([]policy.Guide, len(batch))
	for i, r := range batch {
		obs[i], guides[i] = r.obs, r.guide
	}
	chunks, err := s.act(obs, guides)
	if err == nil && len(chunks) != len(batch) {
		err = fmt.Errorf("policy returned %d action chunks for %d observations", len(chunks), len(batch))
	}
	if err != nil {
		s.cfg.Logf("serve: policy error on a batch of %d: %v", len(batch), err)
	}
	for i, r := range batch {
		if err != nil {
			r.done <- result{err: err}
			continue
		}
		chunk, cerr := s.checkChunk(chunks[i])
		r.done <- result{chunk: chunk, err: cerr}
	}
}

// act calls the policy, turning a panic into an error.
func (s *Server) act(obs []policy.Observation, guides []policy.Guide) (chunks [][][]float32, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.cfg.Logf("serve: policy panicked: %v\n%s", r, debug.Stack())
			err = fmt.Errorf("policy panicked: %v", r)
		}
	}()
	chunks, err = s.actGuided(obs, guides)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return chunks, nil
}

// checkChunk validates one chunk and cuts it to the Execute actions a connection will use, or,
// when chunks overlap (Config.Chunking average, ema, rtc, or an inference delay), keeps it whole.
func (s *Server) checkChunk(chunk [][]float32) ([][]float32, error) {
	if len(chunk) == 0 {
		return nil, fmt.Errorf("policy returned an empty action chunk")
	}
	for k, a := range chunk {
		switch {
		case len(a) == 0:
			return nil, fmt.Errorf("policy returned an empty action %d", k)
		case s.cfg.Spec.ActionDim > 0 && len(a) != s.cfg.Spec.ActionDim:
			return nil, fmt.Errorf("policy returned action %d with %d values, expected %d", k, len(a), s.cfg.Spec.ActionDim)
		}
	}
	if e := s.cfg.Spec.Execute; e > 0 && len(chunk) > e && s.cfg.Chunking.Mode == ChunkNewest && s.cfg.Chunking.Delay == 0 {
		chunk = chunk[:e]
	}
	return chunk, nil
}
