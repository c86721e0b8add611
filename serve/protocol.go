// Package serve speaks the vla-eval policy-server protocol of the vla-evaluation-harness: a
// WebSocket server that answers observations with actions from a policy.Policy (fitting each
// benchmark's observations to the policy with an Adapter, checking each observation on its own,
// batching concurrent connections into one Act call and buffering action chunks per connection),
// clients (Client; Session, episode by episode as the harness's runners drive a model server;
// RemotePolicy for lockstep evaluation), results in the harness's layout (EpisodeRecord,
// Aggregate, MergeResults) and a load test (BenchServe).
//
// Every WebSocket message is one binary msgpack map {"type", "payload", "seq", "timestamp"}.
// Numpy arrays travel as {"__ndarray__": true, "data": bin, "dtype": "<f4", "shape": [..]} (any
// bool, int, uint or float dtype, float16 included) and images as {"__image__": true, "format":
// "png", "data": bin, "shape": [H, W, C]}, the formats of the vla-evaluation-harness
// (src/vla_eval/protocol), so either side can talk to the Python harness.
//
// Payloads:
//   - hello (both ways): {"protocol_version": 1, "harness_version": ..., ...}; the server's reply
//     also describes the policy in the harness's terms (observation_spec, action_spec,
//     observation_params) and in reel's (see ServerInfo). A client of another protocol version is
//     answered, with a logged warning.
//   - episode_start (client → server): {"task": {...}}; the server clears the connection's action
//     buffer. No reply.
//   - observation (client → server): {"images": {camera: image}, "task_description": str,
//     "states": ndarray}.
//   - action (server → client): {"actions": ndarray <f4 [ActionDim]}, with the observation's seq,
//     and {"metadata": {"warnings": [...]}} when the observation was adapted (an instruction cut,
//     a missing state filled with zeros).
//   - episode_end (client → server): the episode's result; no reply.
//   - error (server → client): {"error": "one-line message"}, with the offending message's seq.
//
// Besides the WebSocket endpoint the server answers GET /health and GET|POST /config
// (max_batch_size, max_wait_time), as the harness's model servers do.
package serve

import (
	"github.com/reelml/reel/internal/errline"

	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// ProtocolVersion is the vla-eval protocol version this package speaks.
const ProtocolVersion = 1

// MessageType is the "type" field of a message.
type MessageType string

// The message types of the protocol.
const (
	TypeHello        MessageType = "hello"
	TypeObservation  MessageType = "observation"
	TypeAction       MessageType = "action"
	TypeEpisodeStart MessageType = "episode_start"
	TypeEpisodeEnd   MessageType = "episode_end"
	TypeError        MessageType = "error"
)

var knownTypes = map[MessageType]bool{
	TypeHello: true, TypeObservation: true, TypeAction: true,
	TypeEpisodeStart: true, TypeEpisodeEnd: true, TypeError: true,
}

// Message is one protocol message. Payload values are what msgpack decodes to (string, []byte,
// bool, integers, float32/float64, []any, map[string]any, nil) plus NDArray and Image for the
// encoded arrays and images.
type Message struct {
	Type      MessageType
	Payload   map[string]any
	Seq       int64
	Timestamp float64 // seconds since the Unix epoch
}

// NewMessage returns a message stamped with the current time.
func NewMessage(typ MessageType, seq int64, payload map[string]any) Message {
	if payload == nil {
		payload = map[string]any{}
	}
	return Message{Type: typ, Payload: payload, Seq: seq, Timestamp: float64(time.Now().UnixNano()) / 1e9}
}

// ErrorMessage returns an error message whose payload carries err as one line.
func ErrorMessage(seq int64, err error) Message {
	return NewMessage(TypeError, seq, map[string]any{"error": errline.Fold(err.Error())})
}

// maxDepth bounds the nesting of maps and arrays in a decoded message; real messages nest at
// most about six levels.
const maxDepth = 32

// Encode serialises a message to msgpack (map keys sorted, so equal messages give equal bytes).
func Encode(m Message) ([]byte, error) {
	payload := m.Payload
	if payload == nil {
		payload = map[string]any{}
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	if err := enc.EncodeMapLen(4); err != nil {
		return nil, err
	}
	for _, kv := range []struct {
		k string
		v any
	}{{"type", string(m.Type)}, {"payload", payload}, {"seq", m.Seq}, {"timestamp", m.Timestamp}} {
		if err := enc.EncodeString(kv.k); err != nil {
			return nil, err
		}
		if err := enc.Encode(kv.v); err != nil {
			return nil, fmt.Errorf("encode %s message: %s: %w", m.Type, kv.k, err)
		}
	}
	return buf.Bytes(), nil
}

// Decode parses a msgpack message, checking that it is one well-formed map with the four fields
// and a known type, and turning encoded arrays and images in the payload into NDArray and Image
// values. On error the returned message still carries the seq when it could be read, so that an
// error reply can echo it.
func Decode(data []byte) (Message, error) {
	if err := checkMsgpack(data, maxDepth); err != nil {
		return Message{}, fmt.Errorf("message is not valid msgpack: %w", err)
	}
	dec := msgpack.NewDecoder(bytes.NewReader(data))
	v, err := dec.DecodeInterface()
	if err != nil {
		return Message{}, fmt.Errorf("message is not valid msgpack: %w", err)
	}
	raw, ok := v.(map[string]any)
	if !ok {
		return Message{}, fmt.Errorf("message must be a msgpack map with type, payload, seq and timestamp, got %s", typeName(v))
	}
	var m Message
	if s, ok := asInt(raw["seq"]); ok {
		m.Seq = s
	}
	for _, k := range []string{"type", "payload", "seq", "timestamp"} {
		if _, ok := raw[k]; !ok {
			return m, fmt.Errorf("message is missing field %q (expected type, payload, seq and timestamp)", k)
		}
	}
	typ, ok := raw["type"].(string)
	if !ok {
		return m, fmt.Errorf("message field \"type\" must be a string, got %s", typeName(raw["type"]))
	}
	m.Type = MessageType(typ)
	if !knownTypes[m.Type] {
		return m, fmt.Errorf("unknown message type %q (expected hello, observation, action, episode_start, episode_end or error)", typ)
	}
	if _, ok := asInt(raw["seq"]); !ok {
		return m, fmt.Errorf("message field \"seq\" must be an integer, got %s", typeName(raw["seq"]))
	}
	if m.Timestamp, ok = asFloat(raw["timestamp"]); !ok {
		return m, fmt.Errorf("message field \"timestamp\" must be a number, got %s", typeName(raw["timestamp"]))
	}
	switch p := raw["payload"].(type) {
	case nil:
		m.Payload = map[string]any{}
	case map[string]any:
		conv, err := convertArrays(p)
		if err != nil {
			return m, fmt.Errorf("%s payload: %w", m.Type, err)
		}
		m.Payload = conv.(map[string]any)
	default:
		return m, fmt.Errorf("message field \"payload\" must be a map, got %s", typeName(p))
	}
	return m, nil
}

// convertArrays replaces encoded-array and encoded-image maps with NDArray and Image values.
func convertArrays(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x[ndarrayKey]; ok {
			return ndarrayFromMap(x)
		}
		if _, ok := x[imageKey]; ok {
			return imageFromMap(x)
		}
		for k, e := range x {
			c, err := convertArrays(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			x[k] = c
		}
	case []any:
		for i, e := range x {
			c, err := convertArrays(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			x[i] = c
		}
	}
	return v, nil
}

var errTruncated = errors.New("truncated data")

// checkMsgpack walks data without allocating and checks that it holds exactly one msgpack value
// whose containers nest at most maxDepth deep and whose declared lengths fit in the data. It
// guards the decoder against deep-recursion and huge-allocation attacks.
func checkMsgpack(data []byte, maxDepth int) error {
	pending := []int{1} // values still expected at each open nesting level
	pos := 0
	need := func(n uint64) error {
		if n > uint64(len(data)-pos) {
			return errTruncated
		}
		return nil
	}
	readLen := func(size int) (uint64, error) {
		if err := need(uint64(size)); err != nil {
			return 0, err
		}
		var n uint64
		for _, b := range data[pos : pos+size] {
			n = n<<8 | uint64(b)
		}
		pos += size
		return n, nil
	}
	for len(pending) > 0 {
		if pending[len(pending)-1] == 0 {
			pending = pending[:len(pending)-1]
			continue
		}
		pending[len(pending)-1]--
		if err := need(1); err != nil {
			return err
		}
		c := data[pos]
		pos++
		var skip, children uint64
		var err error
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		case c >= 0x80 && c <= 0x8f:
			children = 2 * uint64(c&0x0f)
		case c >= 0x90 && c <= 0x9f:
			children = uint64(c & 0x0f)
		case c >= 0xa0 && c <= 0xbf:
			skip = uint64(c & 0x1f)
		case c == 0xc4 || c == 0xd9: // bin8, str8
			skip, err = readLen(1)
		case c == 0xc5 || c == 0xda: // bin16, str16
			skip, err = readLen(2)
		case c == 0xc6 || c == 0xdb: // bin32, str32
			skip, err = readLen(4)
		case c == 0xc7: // ext8
			skip, err = readLen(1)
			skip++
		case c == 0xc8: // ext16
			skip, err = readLen(2)
			skip++
		case c == 0xc9: // ext32
			skip, err = readLen(4)
			skip++
		case c == 0xca:
			skip = 4
		case c == 0xcb:
			skip = 8
		case c >= 0xcc && c <= 0xcf:
			skip = 1 << (c - 0xcc)
		case c >= 0xd0 && c <= 0xd3:
			skip = 1 << (c - 0xd0)
		case c >= 0xd4 && c <= 0xd8: // fixext 1..16 plus the type byte
			skip = 1<<(c-0xd4) + 1
		case c == 0xdc:
			children, err = readLen(2)
		case c == 0xdd:
			children, err = readLen(4)
		case c == 0xde:
			children, err = readLen(2)
			children *= 2
		case c == 0xdf:
			children, err = readLen(4)
			children *= 2
		default:
			return fmt.Errorf("invalid type byte 0x%02x at offset %d", c, pos-1)
		}
		if err != nil {
			return err
		}
		if err := need(skip); err != nil {
			return err
		}
		pos += int(skip)
		if children > 0 {
			if children > uint64(len(data)-pos) { // every value takes at least one byte
				return errTruncated
			}
			if len(pending) > maxDepth {
				return fmt.Errorf("values nested deeper than %d levels", maxDepth)
			}
			pending = append(pending, int(children))
		}
	}
	if pos != len(data) {
		return fmt.Errorf("%d trailing bytes after the message", len(data)-pos)
	}
	return nil
}
