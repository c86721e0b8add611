package serve

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/coder/websocket"

	"github.com/reelml/reel/internal/version"
	"github.com/reelml/reel/policy"
)

// clientReadLimit bounds one message from the server.
const clientReadLimit = 64 << 20

// ServerInfo is what a server said about itself in its hello reply. Fields it did not send are
// zero.
type ServerInfo struct {
	ProtocolVersion int
	ModelServer     string
	SessionID       string
	ActionDim       int
	ChunkSize       int // the policy's chunk length (horizon)
	Execute         int // actions of each chunk used before re-querying (0: all)
	StateDim        int
	MaxBatch        int
	Cameras         []string
	ImageShapes     map[string][]int // camera → [H, W, C]
	// The harness's descriptions: observation_spec and action_spec (component → DimSpec dict)
	// and observation_params (benchmark parameters the server asks for).
	ObservationSpec   map[string]any
	ActionSpec        map[string]any
	ObservationParams map[string]any
	Payload           map[string]any // the whole hello payload
}

// ServerError is an error message from the server: the request was rejected but the connection
// is still usable.
type ServerError struct {
	Seq     int64
	Message string
}

func (e *ServerError) Error() string { return "policy server: " + e.Message }

// Client is one connection to a policy server: one evaluation session, with its own action
// buffer on the server. Its methods may be called from several goroutines; requests are sent one
// at a time. A context cancelled during a request closes the connection.
type Client struct {
	conn *websocket.Conn
	info ServerInfo

	mu  sync.Mutex
	seq int64
}

// Dial connects to a policy server ("ws://host:port", "http://host:port" or "host:port") and
// performs the hello handshake. A server speaking another protocol version is accepted, as the
// harness's client does; Info().ProtocolVersion says which.
func Dial(ctx context.Context, url string) (*Client, error) {
	if !strings.Contains(url, "://") {
		url = "ws://" + url
	}
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return nil, fmt.Errorf("dial policy server %s: %w", url, err)
	}
	conn.SetReadLimit(clientReadLimit)
	c := &Client{conn: conn}
	if err := c.handshake(ctx); err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("policy server %s: %w", url, err)
	}
	return c, nil
}

func (c *Client) handshake(ctx context.Context) error {
	reply, err := c.request(ctx, TypeHello, map[string]any{
		"protocol_version": ProtocolVersion,
		"harness_version":  version.String(),
	}, TypeHello)
	if err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	p := reply.Payload
	info := ServerInfo{Payload: p}
	getInt := func(k string) int {
		n, _ := asInt(p[k])
		return int(n)
	}
	info.ProtocolVersion = getInt("protocol_version")
	info.ModelServer, _ = p["model_server"].(string)
	info.SessionID, _ = p["session_id"].(string)
	info.ActionDim, info.ChunkSize, info.Execute = getInt("action_dim"), getInt("chunk_size"), getInt("execute")
	info.StateDim = getInt("state_dim")
	if shapes, ok := p["image_shapes"].(map[string]any); ok {
		info.ImageShapes = map[string][]int{}
		for cam, v := range shapes {
			if dims, err := intList(v); err == nil {
				info.ImageShapes[cam] = dims
			}
		}
	}
	if caps, ok := p["capabilities"].(map[string]any); ok {
		n, _ := asInt(caps["max_batch_size"])
		info.MaxBatch = int(n)
	}
	if list, ok := p["cameras"].([]any); ok {
		for _, v := range list {
			if s, ok := v.(string); ok {
				info.Cameras = append(info.Cameras, s)
			}
		}
	}
	info.ObservationSpec, _ = p["observation_spec"].(map[string]any)
	info.ActionSpec, _ = p["action_spec"].(map[string]any)
	info.ObservationParams, _ = p["observation_params"].(map[string]any)
	c.info = info
	return nil
}

// Info is what the server said in its hello reply.
func (c *Client) Info() ServerInfo { return c.info }

// EpisodeStart tells the server a new episode begins, clearing the session's action buffer.
// task is optional metadata (the vla-eval harness sends the task dict).
func (c *Client) EpisodeStart(ctx context.Context, task map[string]any) error {
	return c.notify(ctx, TypeEpisodeStart, task)
}

// EpisodeEnd tells the server the episode ended; result is optional (e.g. {"success": true}).
func (c *Client) EpisodeEnd(ctx context.Context, result map[string]any) error {
	return c.notify(ctx, TypeEpisodeEnd, result)
}

// Step sends one observation and returns the one action the server answers with. It fails when
// the server sends a chunk of several actions (use StepChunk for such servers).
func (c *Client) Step(ctx context.Context, obs policy.Observation) ([]float32, error) {
	chunk, err := c.StepChunk(ctx, obs)
	if err != nil {
		return nil, err
	}
	if len(chunk) != 1 {
		return nil, fmt.Errorf("policy server answered with %d actions, expected one", len(chunk))
	}
	return chunk[0], nil
}

// StepChunk sends one observation and returns the actions of the answer: one action from a
// server that buffers chunks (as Server does), a whole chunk from one that does not.
func (c *Client) StepChunk(ctx context.Context, obs policy.Observation) ([][]float32, error) {
	payload, err := ObservationPayload(obs)
	if err != nil {
		return nil, err
	}
	reply, err := c.request(ctx, TypeObservation, payload, TypeAction)
	if err != nil {
		return nil, err
	}
	return ParseActions(reply.Payload)
}

// Close closes the connection.
func (c *Client) Close() error {
	return c.conn.Close(websocket.StatusNormalClosure, "")
}

// notify sends a message that gets no reply.
func (c *Client) notify(ctx context.Context, typ MessageType, payload map[string]any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	return c.send(ctx, NewMessage(typ, c.seq, payload))
}

// request sends a message and waits for the reply of type want with the same seq, skipping
// stale replies. An error message is returned as a *ServerError.
func (c *Client) request(ctx context.Context, typ MessageType, payload map[string]any, want MessageType) (Message, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	seq := c.seq
	if err := c.send(ctx, NewMessage(typ, seq, payload)); err != nil {
		return Message{}, err
	}
	for {
		_, data, err := c.conn.Read(ctx)
		if err != nil {
			return Message{}, &connError{fmt.Errorf("read from policy server: %w", err)}
		}
		msg, err := Decode(data)
		if err != nil {
			return Message{}, fmt.Errorf("policy server sent a bad message: %w", err)
		}
		switch {
		case msg.Type == TypeError:
			text, _ := msg.Payload["error"].(string)
			if text == "" {
				text = fmt.Sprint(msg.Payload)
			}
			return Message{}, &ServerError{Seq: msg.Seq, Message: text}
		case msg.Type == want && msg.Seq == seq:
			return msg, nil
		}
	}
}

func (c *Client) send(ctx context.Context, m Message) error {
	data, err := Encode(m)
	if err != nil {
		return err
	}
	if err := c.conn.Write(ctx, websocket.MessageBinary, data); err != nil {
		return &connError{fmt.Errorf("write to policy server: %w", err)}
	}
	return nil
}
