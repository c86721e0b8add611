package serve

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strconv"

	"github.com/coder/websocket"

	"github.com/reelml/reel/policy"
)

// session is the state of one connection: the actions left of the last chunks.
type session struct {
	id     string
	buffer *policy.ChunkBuffer
	warned map[string]bool // warnings already logged
}

// serveWebSocket runs one connection: messages are handled one at a time, in order, and every
// observation and malformed message gets exactly one reply.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if !s.track() {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.active.Done()
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		s.cfg.Logf("serve: websocket handshake from %s: %v", r.RemoteAddr, err)
		return
	}
	defer c.CloseNow()
	// Limits are enforced below without closing the connection, so lift the library's.
	c.SetReadLimit(-1)
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	stop := context.AfterFunc(r.Context(), cancel)
	defer stop()

	sess := &session{id: strconv.FormatInt(s.nextID.Add(1), 10), warned: map[string]bool{},
		buffer: policy.NewChunkBuffer(s.cfg.Chunking, s.cfg.Spec.Execute)}
	s.cfg.Logf("serve: session %s connected from %s", sess.id, r.RemoteAddr)
	defer s.cfg.Logf("serve: session %s closed", sess.id)
	for {
		_, rd, err := c.Reader(ctx)
		if err != nil {
			if st := websocket.CloseStatus(err); st != websocket.StatusNormalClosure && st != websocket.StatusGoingAway && ctx.Err() == nil {
				s.cfg.Logf("serve: session %s: %v", sess.id, err)
			}
			return
		}
		data, err := io.ReadAll(io.LimitReader(rd, s.cfg.MaxMessageBytes+1))
		if err != nil {
			return
		}
		var reply Message
		var send bool
		if int64(len(data)) > s.cfg.MaxMessageBytes {
			n, err := io.Copy(io.Discard, rd)
			if err != nil {
				return
			}
			reply, send = ErrorMessage(0, fmt.Errorf("message of %d bytes exceeds the server's limit of %d bytes", int64(len(data))+n, s.cfg.MaxMessageBytes)), true
		} else {
			reply, send = s.handle(ctx, sess, data)
		}
		if !send {
			continue
		}
		if reply.Type == TypeError {
			s.cfg.Logf("serve: session %s: replying error: %s", sess.id, reply.Payload["error"])
		}
		if err := s.write(ctx, c, reply); err != nil {
			if ctx.Err() == nil {
				s.cfg.Logf("serve: session %s: write: %v", sess.id, err)
			}
			return
		}
	}
}

// write encodes and sends one message.
func (s *Server) write(ctx context.Context, c *websocket.Conn, m Message) error {
	data, err := Encode(m)
	if err != nil {
		data, err = Encode(ErrorMessage(m.Seq, fmt.Errorf("encode reply: %w", err)))
		if err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return c.Write(ctx, websocket.MessageBinary, data)
}

// handle processes one message and returns the reply, if any. It never panics: a panic in the
// handling becomes an error reply.
func (s *Server) handle(ctx context.Context, sess *session, data []byte) (reply Message, send bool) {
	var seq int64
	defer func() {
		if r := recover(); r != nil {
			s.cfg.Logf("serve: session %s: panic handling a message: %v\n%s", sess.id, r, debug.Stack())
			reply, send = ErrorMessage(seq, fmt.Errorf("internal server error: %v", r)), true
		}
	}()
	msg, err := Decode(data)
	seq = msg.Seq
	if err != nil {
		return ErrorMessage(seq, err), true
	}
	switch msg.Type {
	case TypeHello:
		return s.hello(sess, msg)
	case TypeEpisodeStart, TypeEpisodeEnd:
		sess.buffer.Reset()
		return Message{}, false
	case TypeObservation:
		return s.observe(ctx, sess, msg)
	case TypeError:
		s.cfg.Logf("serve: session %s: client error: %v", sess.id, msg.Payload["error"])
		return Message{}, false
	}
	return ErrorMessage(seq, fmt.Errorf("a server does not accept %q messages (expected hello, episode_start, observation or episode_end)", msg.Type)), true
}

// hello answers a client's hello with the protocol version, what the server reads and returns
// in the harness's terms (observation_spec, action_spec, observation_params, as the harness's
// model servers send them) and reel's own description of the policy. A client speaking another
// protocol version is answered all the same, with a logged warning, as harness servers do.
func (s *Server) hello(sess *session, msg Message) (Message, bool) {
	if v, ok := msg.Payload["protocol_version"]; ok {
		if n, ok := asInt(v); !ok || n != ProtocolVersion {
			s.cfg.Logf("serve: session %s: warning: the client speaks protocol_version %v, this server %d; continuing", sess.id, v, ProtocolVersion)
		}
	}
	client, _ := msg.Payload["harness_version"].(string)
	s.cfg.Logf("serve: session %s: hello from %q", sess.id, client)
	a := s.adapter
	spec := a.Spec()
	cameras, sizes := []string{}, map[string]any{}
	for i, bench := range a.BenchmarkCameras() {
		c := spec.Cameras[i]
		cameras = append(cameras, bench)
		sizes[bench] = []int{c.Height, c.Width, 3}
	}
	maxBatch, _ := s.Batching()
	payload := map[string]any{
		"protocol_version": ProtocolVersion,
		"harness_version":  s.cfg.Version,
		"model_server":     s.cfg.Name,
		"session_id":       sess.id,
		"capabilities": map[string]any{
			"batching":        maxBatch > 1,
			"max_batch_size":  maxBatch,
			"action_chunking": true,
		},
		"action_spec":      a.ActionSpec(),
		"observation_spec": a.ObservationSpec(),
		"action_dim":       a.ActionDim(),
		"chunk_size":       spec.Horizon,
		"execute":          spec.Execute,
		"chunking":         s.cfg.Chunking.Mode,
		"state_dim":        a.stateIn(),
		"cameras":          cameras,
		"image_shapes":     sizes,
	}
	if p := a.ObservationParams(); len(p) > 0 {
		payload["observation_params"] = p
	}
	return NewMessage(TypeHello, msg.Seq, payload), true
}

// observe answers an observation with the next buffered action, querying the policy when the
// buffer is due (policy.ChunkBuffer: empty, or Spec.Execute actions served since the last chunk). The observation is decoded, fitted to the policy and checked by the policy
// (policy.Checker) here, in the connection's own goroutine, before it can join a batch: a bad
// observation gets its own error reply and never fails the other sessions' batch. It is checked
// even when the answer comes from the buffer. What the adaptation or the check changed is listed
// under the reply's "metadata": {"warnings": [...]}.
func (s *Server) observe(ctx context.Context, sess *session, msg Message) (Message, bool) {
	obs, warnings, err := s.adapter.Observation(msg.Payload)
	if err != nil {
		return ErrorMessage(msg.Seq, err), true
	}
	if s.checker != nil {
		checked, w, err := s.checker.Check(obs)
		if err != nil {
			return ErrorMessage(msg.Seq, fmt.Errorf("observation: %w", err)), true
		}
		obs, warnings = checked, append(warnings, w...)
	}
	for _, w := range warnings {
		if !sess.warned[w] {
			sess.warned[w] = true
			s.cfg.Logf("serve: session %s: warning: %s", sess.id, w)
		}
	}
	if sess.buffer.Due() {
		var guide policy.Guide
		if s.cfg.Chunking.Mode == ChunkRTC {
			guide = sess.buffer.Guide()
		}
		chunk, err := s.query(ctx, obs, guide)
		if err != nil {
			return ErrorMessage(msg.Seq, err), true
		}
		sess.buffer.Push(chunk) // Config.Chunking (policy.ChunkBuffer)
	}
	action := s.adapter.Action(sess.buffer.Pop())
	payload := ActionPayload(action)
	if len(warnings) > 0 {
		payload[keyMetadata] = map[string]any{"warnings": warnings}
	}
	return NewMessage(TypeAction, msg.Seq, payload), true
}
