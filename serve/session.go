package serve

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coder/websocket"

	"github.com/reelml/reel/policy"
)

// Failure reasons of an episode, as the harness's orchestrator records them
// (vla-evaluation-harness src/vla_eval/orchestrator.py).
const (
	ReasonUnreachable = "server_unreachable" // no connection after every retry
	ReasonClosed      = "connection_closed"  // the connection broke during the episode
	ReasonTimeout     = "timeout"            // no reply within the act timeout
	ReasonException   = "exception"          // anything else: an error reply, a bad action
)

// EpisodeError is an episode's failure with its harness failure reason.
type EpisodeError struct {
	Reason string // one of the Reason constants
	Err    error
}

func (e *EpisodeError) Error() string { return e.Err.Error() }
func (e *EpisodeError) Unwrap() error { return e.Err }

// FailureReason is the harness's name for the failure.
func (e *EpisodeError) FailureReason() string { return e.Reason }

// Defaults of SessionOptions: the harness's Connection defaults are a 30 s timeout and 5 dial
// attempts 2, 4, 8, 16 s apart; reel waits less between attempts.
const (
	DefaultActTimeout = 30 * time.Second
	DefaultRetries    = 5
	DefaultBackoff    = 500 * time.Millisecond
)

// SessionOptions configure DialSession. Zero fields take the defaults.
type SessionOptions struct {
	ActTimeout time.Duration // bounds each request: an observation's action, a notification
	Retries    int           // dial attempts before the server counts as unreachable
	Backoff    time.Duration // wait after the first failed attempt; doubles after each
}

func (o SessionOptions) withDefaults() SessionOptions {
	if o.ActTimeout <= 0 {
		o.ActTimeout = DefaultActTimeout
	}
	if o.Retries <= 0 {
		o.Retries = DefaultRetries
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	return o
}

// Session is one connection to a policy server that plays one episode at a time, the way the
// harness's sync runner drives a model server: episode_start with {"task": task}, one observation
// per step answered by one action, episode_end with the episode's result. Every call is bounded
// by the act timeout; after any error the connection is unusable (a timeout closes it) and the
// caller dials a new session, as the harness's orchestrator reconnects. Errors are
// *EpisodeError values carrying the harness's failure reason.
type Session struct {
	c   *Client
	opt SessionOptions
}

// DialSession connects to the server at url, retrying with exponential backoff; ctx bounds the
// whole attempt.
func DialSession(ctx context.Context, url string, opt SessionOptions) (*Session, error) {
	opt = opt.withDefaults()
	wait := opt.Backoff
	var err error
	for attempt := 1; ; attempt++ {
		dctx, cancel := context.WithTimeout(ctx, opt.ActTimeout)
		var c *Client
		c, err = Dial(dctx, url)
		cancel()
		if err == nil {
			return &Session{c: c, opt: opt}, nil
		}
		if attempt == opt.Retries || ctx.Err() != nil {
			break
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
		wait *= 2
	}
	return nil, &EpisodeError{ReasonUnreachable, fmt.Errorf("policy server unreachable after %d attempts: %w", opt.Retries, err)}
}

// Info is what the server said in its hello reply.
func (s *Session) Info() ServerInfo { return s.c.Info() }

// StartEpisode sends episode_start with {"task": task}.
func (s *Session) StartEpisode(task map[string]any) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opt.ActTimeout)
	defer cancel()
	return classify(s.c.EpisodeStart(ctx, map[string]any{"task": task}), "episode_start")
}

// Act sends one observation and returns the actions of the answer (one from a server that
// buffers chunks, as reel's and the harness's do).
func (s *Session) Act(obs policy.Observation) ([][]float32, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opt.ActTimeout)
	defer cancel()
	chunk, err := s.c.StepChunk(ctx, obs)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return nil, &EpisodeError{ReasonTimeout, fmt.Errorf("no action within the act timeout of %s", s.opt.ActTimeout)}
		}
		return nil, classify(err, "observation")
	}
	return chunk, nil
}

// EndEpisode sends episode_end with the episode's result ({"metrics": {...}, "steps": n,
// "elapsed_sec": s}, as the harness's runners report it).
func (s *Session) EndEpisode(result map[string]any) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opt.ActTimeout)
	defer cancel()
	return classify(s.c.EpisodeEnd(ctx, result), "episode_end")
}

// Close closes the connection.
func (s *Session) Close() error { return s.c.Close() }

// classify wraps a request's error with its failure reason.
func classify(err error, what string) error {
	if err == nil {
		return nil
	}
	var se *ServerError
	var ce websocket.CloseError
	switch {
	case errors.As(err, &se):
		return &EpisodeError{ReasonException, fmt.Errorf("%s: %w", what, err)}
	case errors.Is(err, context.DeadlineExceeded):
		return &EpisodeError{ReasonTimeout, fmt.Errorf("%s: %w", what, err)}
	case errors.As(err, &ce), isConnError(err):
		return &EpisodeError{ReasonClosed, fmt.Errorf("%s: %w", what, err)}
	}
	return &EpisodeError{ReasonException, fmt.Errorf("%s: %w", what, err)}
}

// isConnError reports whether err came from the connection (read or write), not the protocol.
func isConnError(err error) bool {
	var ce *connError
	return errors.As(err, &ce)
}

// connError marks an error reading from or writing to the connection.
type connError struct{ err error }

func (e *connError) Error() string { return e.err.Error() }
func (e *connError) Unwrap() error { return e.err }
