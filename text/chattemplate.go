package text

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/reelml/reel/internal/safeio"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ardanlabs/jinja"
	"gopkg.in/yaml.v3"
)

// Chat templates as transformers' apply_chat_template renders them
// (huggingface/transformers src/transformers/utils/chat_template_utils.py): a Jinja template from
// the model's files, rendered with trim_blocks and lstrip_blocks, raise_exception, strftime_now
// and tojson (ensure_ascii=False), over the variables messages, add_generation_prompt, tools
// (none), documents (none), the tokenizer's special tokens (bos_token, eos_token, ...) and any
// extra variables (enable_thinking, ...). The engine is github.com/ardanlabs/jinja, a Jinja
// implementation written for chat templates whose whitespace control defaults to transformers'
// environment; the golden renders in testdata/templates were produced by Python's jinja2 in
// transformers' environment.

// ChatTemplate is a compiled chat template with the special tokens it is rendered with.
type ChatTemplate struct {
	Source  string            // the Jinja source
	Origin  string            // the file it came from ("" when parsed from a string)
	Special map[string]string // bos_token, eos_token, ... as the tokenizer configures them
	tmpl    *jinja.Template
}

// Message is one chat message with text content (messages with structured content, e.g. a VLM's
// [{"type": "image"}, {"type": "text", "text": ...}], go through RenderJSON).
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ErrNoChatTemplate is returned by LoadChatTemplate when the model has no chat template.
var ErrNoChatTemplate = errors.New("no chat template")

// maxTemplateFile bounds the files a chat template is read from.
const maxTemplateFile = 16 << 20

// ParseChatTemplate compiles a template source.
func ParseChatTemplate(src string) (*ChatTemplate, error) {
	t, err := jinja.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("chat template: %w", err)
	}
	return &ChatTemplate{Source: src, Special: map[string]string{}, tmpl: t}, nil
}

// LoadChatTemplate reads the chat template of path: a model directory (chat_template.jinja, else
// chat_template.json's "chat_template", else tokenizer_config.json's "chat_template", the order in
// which transformers' processors and tokenizers prefer them) or a tokenizer_config.json. The
// special tokens come from the tokenizer_config.json beside it. A list of named templates
// ([{"name": ..., "template": ...}]) gives the one called name ("" → "default"); in a directory a
// named template may also be transformers 5's additional_chat_templates/NAME.jinja. A model
// without a template is an error wrapping ErrNoChatTemplate.
func LoadChatTemplate(path, name string) (*ChatTemplate, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("chat template: %w", err)
	}
	dir, cfgPath := path, filepath.Join(path, "tokenizer_config.json")
	if !st.IsDir() {
		dir, cfgPath = filepath.Dir(path), path
	}
	var cfg map[string]json.RawMessage
	if b, err := readSmall(cfgPath); err == nil {
		if err := json.Unmarshal(b, &cfg); err != nil {
			return nil, fmt.Errorf("%s: not a JSON object: %w", cfgPath, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) || !st.IsDir() {
		return nil, fmt.Errorf("chat template: %w", err)
	}
	var src, origin string
	if st.IsDir() && name != "" && name != "default" {
		// transformers 5 saves named templates as additional_chat_templates/NAME.jinja.
		if strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
			return nil, fmt.Errorf("chat template: %q is not a template name", name)
		}
		p := filepath.Join(dir, "additional_chat_templates", name+".jinja")
		if b, err := readSmall(p); err == nil {
			src, origin = string(b), p
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("chat template: %w", err)
		}
	}
	if st.IsDir() && src == "" {
		if name == "" || name == "default" {
			if b, err := readSmall(filepath.Join(dir, "chat_template.jinja")); err == nil {
				src, origin = string(b), filepath.Join(dir, "chat_template.jinja")
			} else if !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("chat template: %w", err)
			}
		}
		if src == "" {
			p := filepath.Join(dir, "chat_template.json")
			if b, err := readSmall(p); err == nil {
				var m map[string]json.RawMessage
				if err := json.Unmarshal(b, &m); err != nil {
					return nil, fmt.Errorf("%s: not a JSON object: %w", p, err)
				}
				if src, err = templateField(m, name, p); err != nil {
					return nil, err
				}
				origin = p
			} else if !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("chat template: %w", err)
			}
		}
	}
	if src == "" && cfg != nil {
		if src, err = templateField(cfg, name, cfgPath); err != nil {
			return nil, err
		}
		origin = cfgPath
	}
	if src == "" {
		return nil, fmt.Errorf("%s: %w (looked for chat_template.jinja, chat_template.json and tokenizer_config.json's chat_template)", path, ErrNoChatTemplate)
	}
	t, err := ParseChatTemplate(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", origin, err)
	}
	t.Origin = origin
	if t.Special, err = specialTokens(cfg, cfgPath); err != nil {
		return nil, err
	}
	return t, nil
}

func readSmall(path string) ([]byte, error) {
	return safeio.ReadFile(path, maxTemplateFile)
}

// templateField reads "chat_template": a string, or a list of {"name", "template"} objects.
func templateField(m map[string]json.RawMessage, name, path string) (string, error) {
	raw, ok := m["chat_template"]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if name != "" && name != "default" {
			return "", fmt.Errorf("%s: chat_template: one unnamed template, no template named %q", path, name)
		}
		return s, nil
	}
	var list []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return "", fmt.Errorf("%s: chat_template: expected a string or a list of {\"name\", \"template\"}, got %.60s", path, raw)
	}
	if name == "" {
		name = "default"
	}
	var names []string
	for _, e := range list {
		if e.Name == name {
			return e.Template, nil
		}
		names = append(names, e.Name)
	}
	return "", fmt.Errorf("%s: chat_template: no template named %q (have %s)", path, name, strings.Join(names, ", "))
}

// specialTokens are transformers' special_tokens_map: the configured special tokens, strings or
// AddedToken objects ({"content": ...}); unset ones stay undefined in the template.
func specialTokens(cfg map[string]json.RawMessage, path string) (map[string]string, error) {
	out := map[string]string{}
	for _, k := range []string{"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"} {
		raw, ok := cfg[k]
		if !ok || string(raw) == "null" {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			out[k] = s
			continue
		}
		var t struct {
			Content *string `json:"content"`
		}
		if json.Unmarshal(raw, &t) != nil || t.Content == nil {
			return nil, fmt.Errorf("%s: %s: expected a token string or {\"content\": ...}, got %.60s", path, k, raw)
		}
		out[k] = *t.Content
	}
	return out, nil
}

// Render renders text messages (see RenderJSON).
func (t *ChatTemplate) Render(messages []Message, addGenerationPrompt bool, vars map[string]any) (string, error) {
	list := make([]jinja.Value, len(messages))
	for i, m := range messages {
		d := jinja.NewDict()
		d.AsDict().Set("role", jinja.NewString(m.Role))
		d.AsDict().Set("content", jinja.NewString(m.Content))
		list[i] = d
	}
	return t.render(jinja.NewList(list), addGenerationPrompt, vars)
}

// RenderJSON renders a JSON list of messages (objects keep their key order, as Python's dicts
// do, which tojson shows) with add_generation_prompt and extra variables (which override the
// special tokens; Go values or values decoded from JSON). A template that calls raise_exception
// returns its message as the error.
func (t *ChatTemplate) RenderJSON(messages []byte, addGenerationPrompt bool, vars map[string]any) (string, error) {
	v, err := JSONValue(messages)
	if err != nil {
		return "", fmt.Errorf("messages: %w", err)
	}
	if !v.IsList() {
		return "", errors.New("messages: expected a JSON list of {\"role\": ..., \"content\": ...}")
	}
	return t.render(v, addGenerationPrompt, vars)
}

func (t *ChatTemplate) render(messages jinja.Value, agp bool, vars map[string]any) (out string, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = "", fmt.Errorf("chat template: %v", r)
		}
	}()
	data := map[string]jinja.Value{"messages": messages, "add_generation_prompt": jinja.NewBool(agp),
		"tools": jinja.None(), "documents": jinja.None()}
	for k, v := range t.Special {
		data[k] = jinja.NewString(v)
	}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		if raw, ok := vars[k].(json.RawMessage); ok {
			v, err := JSONValue(raw)
			if err != nil {
				return "", fmt.Errorf("variable %s: %w", k, err)
			}
			data[k] = v
			continue
		}
		data[k] = jinja.FromGoValue(vars[k])
	}
	return t.tmpl.RenderValues(data)
}

// JSONValue decodes one JSON value into a Jinja value, objects keeping their key order and
// numbers their integer or float kind.
func JSONValue(data []byte) (jinja.Value, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := jsonValue(dec, 0)
	if err != nil {
		return jinja.Value{}, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return jinja.Value{}, errors.New("invalid JSON: data after the value")
	}
	return v, nil
}

// maxJSONDepth bounds the nesting of decoded values.
const maxJSONDepth = 64

func jsonValue(dec *json.Decoder, depth int) (jinja.Value, error) {
	if depth > maxJSONDepth {
		return jinja.Value{}, fmt.Errorf("invalid JSON: nested deeper than %d", maxJSONDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return jinja.Value{}, fmt.Errorf("invalid JSON: %w", err)
	}
	switch x := tok.(type) {
	case json.Delim:
		switch x {
		case '[':
			var items []jinja.Value
			for dec.More() {
				v, err := jsonValue(dec, depth+1)
				if err != nil {
					return jinja.Value{}, err
				}
				items = append(items, v)
			}
			_, err := dec.Token()
			return jinja.NewList(items), err
		case '{':
			d := jinja.NewDict()
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return jinja.Value{}, fmt.Errorf("invalid JSON: %w", err)
				}
				v, err := jsonValue(dec, depth+1)
				if err != nil {
					return jinja.Value{}, err
				}
				d.AsDict().Set(k.(string), v)
			}
			_, err := dec.Token()
			return d, err
		}
		return jinja.Value{}, fmt.Errorf("invalid JSON: unexpected %v", x)
	}
	return jinja.FromGoValue(tok), nil
}

// ParseVars reads NAME=VALUE template variables (ParseVar) into one map, a later NAME
// replacing an earlier; the error is the first variable's that does not parse.
func ParseVars(vars []string) (map[string]any, error) {
	m := map[string]any{}
	for _, s := range vars {
		k, v, err := ParseVar(s)
		if err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, nil
}

// ParseVar reads a NAME=VALUE template variable, VALUE typed as a YAML scalar: true/false,
// integers, floats and null become those values, a quoted scalar its string, anything else
// (lists, mappings, invalid YAML) the text as written.
func ParseVar(s string) (string, any, error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return "", nil, fmt.Errorf("%q: expected NAME=VALUE", s)
	}
	var v any
	if err := yaml.Unmarshal([]byte(value), &v); err == nil {
		switch v.(type) {
		case string: // plain or quoted: '"false"' is the string false
			return name, v, nil
		case bool, int, int64, float64, nil:
			if v == nil && strings.TrimSpace(value) == "" {
				return name, "", nil
			}
			return name, v, nil
		}
	}
	return name, value, nil
}
