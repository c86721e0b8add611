package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reelml/reel/internal/version"
	"github.com/reelml/reel/policy"
)

// Config configures a Server. Zero fields take the defaults noted.
type Config struct {
	Addr string // listen address for Listen/ListenAndServe, e.g. ":8000" or "127.0.0.1:0" (default ":8000")

	// MaxBatch is the most observations, from different connections, sent to the policy in one
	// Act call (default 8). BatchWindow is how long the first observation of a batch waits for
	// others before the batch is sent anyway (default 5ms).
	MaxBatch    int
	BatchWindow time.Duration

	// MaxMessageBytes bounds an incoming message; larger ones are skipped and answered with an
	// error (default 64 MiB).
	MaxMessageBytes int64

	// Spec is the served policy's spec: observations must hold its cameras (images of other
	// sizes are fitted with its resize mode) and state, every returned action must have
	// Spec.ActionDim values, and each connection uses Spec.Execute actions of each chunk before
	// the policy is queried again (execute-k; 0 uses the whole chunk). The hello reply reports it.
	// A zero spec accepts any observation.
	Spec policy.Spec
	// Chunking is how each connection ensembles overlapping chunks (policy.Chunking; default
	// newest: execute-k), with its inference delay and, under rtc (real-time chunking), its
	// guidance settings. Listen fails when it is not valid (Chunking.CheckChunks for the spec's
	// chunks) or, under rtc, when the policy cannot be guided (policy.Inpainter).
	Chunking policy.Chunking
	// Adapt fits a benchmark's observations and actions to the policy (camera mapping, resize
	// mode, state selection, action dimension); see AdaptOptions. Listen fails when they do not
	// fit the spec.
	Adapt AdaptOptions

	Name    string                        // reported as "model_server" (default "reel")
	Version string                        // reported as "harness_version" (default version.String(), "reel X.Y.Z")
	Logf    func(format string, a ...any) // connection and error log (default: none)
}

// Defaults of Config.
const (
	DefaultAddr            = ":8000"
	DefaultMaxBatch        = 8
	DefaultBatchWindow     = 5 * time.Millisecond
	DefaultMaxMessageBytes = 64 << 20
)

// writeTimeout bounds one reply's write to a slow or stuck client.
const writeTimeout = 30 * time.Second

// withDefaults fills in zero fields.
func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.BatchWindow <= 0 {
		c.BatchWindow = DefaultBatchWindow
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.Name == "" {
		c.Name = "reel"
	}
	if c.Version == "" {
		c.Version = version.String()
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	c.Chunking = c.Chunking.WithDefaults()
	return c
}

// Server serves a policy.Policy over the vla-eval WebSocket protocol. Each connection is one
// evaluation session with its own action-chunk buffer; observations from concurrent
// connections are batched into one Act call, and Act is never called concurrently.
type Server struct {
	policy   policy.Policy
	checker  policy.Checker // the policy's own per-observation check, if it has one
	cfg      Config
	adapter  *Adapter
	adaptErr error // the adaptation does not fit the spec: Listen fails with it

	// maxBatch and window (nanoseconds) are Config.MaxBatch and Config.BatchWindow as /config
	// last set them.
	maxBatch atomic.Int64
	window   atomic.Int64
	// batching is signalled (without blocking) by SetBatching, so that the batch being
	// collected takes a new setting at once.
	batching chan struct{}

	reqs         chan *request
	ctx          context.Context // cancelled by Close
	cancel       context.CancelFunc
	dispatchDone chan struct{}

	mu        sync.Mutex
	ln        net.Listener
	closed    bool
	active    sync.WaitGroup // open connections
	closeOnce sync.Once
	nextID    atomic.Int64
}

// NewServer returns a server for p and starts its batching goroutine; Close (or the end of
// ListenAndServe/Serve) stops it.
func NewServer(p policy.Policy, cfg Config) *Server {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		policy:       p,
		cfg:          cfg,
		reqs:         make(chan *request),
		ctx:          ctx,
		cancel:       cancel,
		dispatchDone: make(chan struct{}),
		batching:     make(chan struct{}, 1),
	}
	s.checker, _ = p.(policy.Checker)
	s.adapter, s.adaptErr = NewAdapter(cfg.Spec, cfg.Adapt)
	if s.adaptErr != nil {
		s.adapter, _ = NewAdapter(policy.Spec{}, AdaptOptions{})
	} else if err := s.checkChunking(); err != nil {
		s.adaptErr = err
		s.cfg.Chunking = policy.Chunking{}.WithDefaults()
	}
	s.SetBatching(cfg.MaxBatch, cfg.BatchWindow)
	go s.dispatch()
	return s
}

// SetBatching changes the most observations per policy call and how long a batch waits to
// fill, at once: the batch being collected uses the new values too (what /config sets). Values < 1 (maxBatch) or < 0
// (window) are ignored.
func (s *Server) SetBatching(maxBatch int, window time.Duration) {
	if maxBatch >= 1 {
		s.maxBatch.Store(int64(maxBatch))
	}
	if window >= 0 {
		s.window.Store(int64(window))
	}
	select {
	case s.batching <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// Batching reports the current most observations per policy call and batch window.
func (s *Server) Batching() (maxBatch int, window time.Duration) {
	return int(s.maxBatch.Load()), time.Duration(s.window.Load())
}

// Adapter is how the server fits observations and actions to the policy.
func (s *Server) Adapter() *Adapter { return s.adapter }

// Handler routes GET /health to a JSON status, GET and POST /config to the batching settings
// (as the harness's model servers serve them) and every other path to the WebSocket endpoint.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", s.health)
	mux.HandleFunc("/config", s.config)
	mux.HandleFunc("/", s.serveWebSocket)
	return mux
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"status":           "ok",
		"protocol_version": ProtocolVersion,
		"model_server":     s.cfg.Name,
		"harness_version":  s.cfg.Version,
	})
}

// Listen binds the configured address; Addr then reports it (useful with port 0). It fails when
// Config.Adapt does not fit Config.Spec.
func (s *Server) Listen() error {
	if s.adaptErr != nil {
		return fmt.Errorf("serve: %w", s.adaptErr)
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("serve: listen on %s: %w", s.cfg.Addr, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		ln.Close()
		return fmt.Errorf("serve: already listening on %s", s.ln.Addr())
	}
	s.ln = ln
	return nil
}

// Addr is the address the server listens on ("" before Listen).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Serve serves HTTP and WebSocket requests on the listener of Listen until ctx is cancelled,
// then stops accepting connections, closes the open ones and returns nil after Close.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	if ln == nil {
		return errors.New("serve: Serve called before Listen")
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.cfg.Logf("serve: listening on %s", ln.Addr())
	select {
	case err := <-errc:
		s.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx) // closes the listener; WebSocket connections are hijacked
	s.Close()
	<-errc
	return nil
}

// ListenAndServe is Listen followed by Serve.
func (s *Server) ListenAndServe(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	return s.Serve(ctx)
}

// Close closes every open connection, stops the batching goroutine (after any Act in progress
// returns) and refuses new connections. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
		s.active.Wait()
		<-s.dispatchDone
	})
	return nil
}

// track registers a new connection unless the server is closed.
func (s *Server) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.active.Add(1)
	return true
}
