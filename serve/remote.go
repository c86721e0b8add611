package serve

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/reelml/reel/policy"
)

// DefaultRemoteTimeout bounds one RemotePolicy call.
const DefaultRemoteTimeout = 5 * time.Minute

// RemotePolicy is a policy.Policy served by a remote policy server, for closed-loop evaluation of
// N environments in lockstep. It keeps one connection per batch slot: Act's obs[i] is sent on
// connection i, so obs[i] must come from the same environment on every call until that slot's
// next StartEpisode, because the server keeps each connection's pending actions.
//
// Act sends the observations concurrently, so the server can batch them into one policy call,
// and returns for each a chunk of the actions the server answered with: one action from a server
// that buffers chunks itself (reel's Server, the vla-eval PredictModelServer), so the evaluator
// executes each returned chunk whole (Horizon = Execute = 1 semantics) and execute-k happens on
// the server.
type RemotePolicy struct {
	url     string
	Timeout time.Duration // bounds each call (default DefaultRemoteTimeout)

	mu      sync.Mutex
	clients []*Client
	info    ServerInfo
}

var _ policy.EpisodePolicy = (*RemotePolicy)(nil)

// NewRemotePolicy connects slots connections (at least one) to the server at url. Act dials
// more when it gets more observations than that.
func NewRemotePolicy(ctx context.Context, url string, slots int) (*RemotePolicy, error) {
	p := &RemotePolicy{url: url, Timeout: DefaultRemoteTimeout}
	if err := p.grow(ctx, max(slots, 1)); err != nil {
		p.Close()
		return nil, err
	}
	p.info = p.clients[0].Info()
	return p, nil
}

// Info is what the server said in its hello reply.
func (p *RemotePolicy) Info() ServerInfo { return p.info }

// Slots is the number of open connections.
func (p *RemotePolicy) Slots() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.clients)
}

// grow dials connections until there are n; the caller holds p.mu or owns p.
func (p *RemotePolicy) grow(ctx context.Context, n int) error {
	for len(p.clients) < n {
		c, err := Dial(ctx, p.url)
		if err != nil {
			return fmt.Errorf("remote policy slot %d: %w", len(p.clients), err)
		}
		p.clients = append(p.clients, c)
	}
	return nil
}

func (p *RemotePolicy) context() (context.Context, context.CancelFunc) {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultRemoteTimeout
	}
	return context.WithTimeout(context.Background(), timeout)
}

// Act sends obs[i] on slot i's connection, all concurrently, and returns each slot's answer
// (see RemotePolicy). Any slot's failure fails the call.
func (p *RemotePolicy) Act(obs []policy.Observation) ([][][]float32, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx, cancel := p.context()
	defer cancel()
	if err := p.grow(ctx, len(obs)); err != nil {
		return nil, err
	}
	chunks := make([][][]float32, len(obs))
	err := p.forSlots(len(obs), func(i int) (err error) {
		chunks[i], err = p.clients[i].StepChunk(ctx, obs[i])
		return err
	})
	if err != nil {
		return nil, err
	}
	return chunks, nil
}

// ActEpisodes implements policy.EpisodePolicy: obs[i] goes to slot episodes[i], so that each
// environment keeps its own connection (and the server its action buffer) while finished ones
// drop out of the batch.
func (p *RemotePolicy) ActEpisodes(episodes []int, obs []policy.Observation) ([][][]float32, error) {
	if len(episodes) != len(obs) {
		return nil, fmt.Errorf("remote policy: %d episode slots for %d observations", len(episodes), len(obs))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx, cancel := p.context()
	defer cancel()
	top := 0
	for _, e := range episodes {
		if e < 0 {
			return nil, fmt.Errorf("remote policy: slot %d is negative", e)
		}
		top = max(top, e+1)
	}
	if err := p.grow(ctx, top); err != nil {
		return nil, err
	}
	chunks := make([][][]float32, len(obs))
	err := p.forSlots(len(obs), func(i int) (err error) {
		chunks[i], err = p.clients[episodes[i]].StepChunk(ctx, obs[i])
		return err
	})
	if err != nil {
		return nil, err
	}
	return chunks, nil
}

// StartEpisodes starts a new episode on slots 0..n-1 (dialing connections as needed), clearing
// their pending actions: call it before the first Act of each lockstep round of n episodes.
func (p *RemotePolicy) StartEpisodes(n int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx, cancel := p.context()
	defer cancel()
	if err := p.grow(ctx, n); err != nil {
		return err
	}
	return p.forSlots(n, func(i int) error { return p.clients[i].EpisodeStart(ctx, nil) })
}

// StartEpisode starts a new episode on one slot, for evaluators that refill finished slots
// one at a time.
func (p *RemotePolicy) StartEpisode(slot int, task map[string]any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx, cancel := p.context()
	defer cancel()
	if slot < 0 {
		return fmt.Errorf("remote policy: slot %d is negative", slot)
	}
	if err := p.grow(ctx, slot+1); err != nil {
		return err
	}
	return p.clients[slot].EpisodeStart(ctx, task)
}

// EndEpisode reports the end of a slot's episode (result is optional, e.g. {"success": true}).
func (p *RemotePolicy) EndEpisode(slot int, result map[string]any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if slot < 0 || slot >= len(p.clients) {
		return fmt.Errorf("remote policy: slot %d is not open (have %d)", slot, len(p.clients))
	}
	ctx, cancel := p.context()
	defer cancel()
	return p.clients[slot].EpisodeEnd(ctx, result)
}

// Close closes every connection.
func (p *RemotePolicy) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, c := range p.clients {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	p.clients = nil
	return errors.Join(errs...)
}

// forSlots runs f for slots 0..n-1 concurrently and joins their errors.
func (p *RemotePolicy) forSlots(n int, f func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := f(i); err != nil {
				errs[i] = fmt.Errorf("slot %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
