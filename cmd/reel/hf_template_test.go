package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// goldenCase finds a case of text/testdata/templates/cases.json (renders by Python's jinja2 in
// transformers' environment).
func goldenCase(t *testing.T, template, name string) (src string, c struct {
	Messages        json.RawMessage
	Expected, Error string
}) {
	t.Helper()
	dir := filepath.Join("..", "..", "text", "testdata", "templates")
	data, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	require.NoError(t, err)
	var cases []struct {
		Template, Name, Expected, Error string
		Messages                        json.RawMessage
	}
	require.NoError(t, json.Unmarshal(data, &cases))
	for _, k := range cases {
		if k.Template == template && k.Name == name {
			b, err := os.ReadFile(filepath.Join(dir, template))
			require.NoError(t, err)
			c.Messages, c.Expected, c.Error = k.Messages, k.Expected, k.Error
			return string(b), c
		}
	}
	t.Fatalf("no golden case %s / %s", template, name)
	return
}

// modelWithTemplate writes a model directory whose tokenizer_config.json holds src.
func modelWithTemplate(t *testing.T, src string, special map[string]any) string {
	dir := t.TempDir()
	cfg := map[string]any{"chat_template": src}
	for k, v := range special {
		cfg[k] = v
	}
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), b, 0o644))
	return dir
}

func TestHFTemplate(t *testing.T) {
	work := t.TempDir()
	render := func(t *testing.T, path string, msgs json.RawMessage, args ...string) result {
		f := filepath.Join(work, "messages.json")
		require.NoError(t, os.WriteFile(f, msgs, 0o644))
		return reel(t, work, append([]string{"hf", "template", path, "--messages", f}, args...)...)
	}
	text := func(t *testing.T, r result) string {
		requireOK(t, r)
		var out struct{ Text string }
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
		return out.Text
	}
	t.Run("qwen3 enable_thinking=false", func(t *testing.T) {
		src, c := goldenCase(t, "qwen3-0.6b.jinja", "thinking off")
		dir := modelWithTemplate(t, src, map[string]any{"eos_token": "<|im_end|>"})
		require.Equal(t, c.Expected, text(t, render(t, dir, c.Messages, "--var", "enable_thinking=false")))
		_, on := goldenCase(t, "qwen3-0.6b.jinja", "thinking on")
		require.NotEqual(t, c.Expected, on.Expected)
		// A quoted "false" is a string, which `enable_thinking is false` does not match.
		require.Equal(t, on.Expected, text(t, render(t, dir, c.Messages, "--var", `enable_thinking="false"`)))
	})
	t.Run("llama-3 without generation prompt, tokenizer_config.json path", func(t *testing.T) {
		src, c := goldenCase(t, "llama-3-8b-instruct.jinja", "system")
		dir := modelWithTemplate(t, src, map[string]any{"bos_token": map[string]any{"content": "<|begin_of_text|>"}, "eos_token": "<|eot_id|>"})
		require.Equal(t, c.Expected, text(t, render(t, filepath.Join(dir, "tokenizer_config.json"), c.Messages, "--add-generation-prompt=false")))
	})
	t.Run("gemma raise_exception", func(t *testing.T) {
		src, c := goldenCase(t, "gemma-2b-it.jinja", "system")
		require.NotEmpty(t, c.Error)
		dir := modelWithTemplate(t, src, map[string]any{"bos_token": "<bos>", "eos_token": "<eos>"})
		msg := requireUserError(t, render(t, dir, c.Messages), 1)
		require.Contains(t, msg, c.Error)
	})
	t.Run("bad input", func(t *testing.T) {
		dir := modelWithTemplate(t, "{{ messages }}", nil)
		requireUserError(t, render(t, dir, json.RawMessage(`[{"role": "user"`)), 1)
		requireUserError(t, render(t, t.TempDir(), json.RawMessage(`[]`)), 1)
		requireUserError(t, render(t, dir, json.RawMessage(`[]`), "--var", "novalue"), 2)
	})
}

// TestHFGenerateChat: --chat formats the prompt with the directory's chat template (which writes
// BOS itself) and tokenises it without special tokens; the llama fixture's prompt so formatted
// continues as the reference computed.
func TestHFGenerateChat(t *testing.T) {
	src := hfFixture(t, "llama")
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors", "generation_config.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	vocab := map[string]int{}
	for i := range 256 {
		vocab["w"+strconv.Itoa(i)] = i
	}
	tj, err := json.Marshal(map[string]any{"version": "1.0", "model": map[string]any{"type": "WordLevel", "vocab": vocab, "unk_token": "w0"},
		"pre_tokenizer": map[string]any{"type": "Whitespace"}, "added_tokens": []any{}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), tj, 0o644))
	var e struct {
		Tokens    []int `json:"tokens"`
		Generated []int `json:"generated"`
	}
	data, err := os.ReadFile(filepath.Join(src, "expected.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &e))
	words := make([]string, len(e.Tokens)-1)
	for i, id := range e.Tokens[1:] {
		words[i] = "w" + strconv.Itoa(id)
	}
	tc, err := json.Marshal(map[string]any{"bos_token": "w" + strconv.Itoa(e.Tokens[0]),
		"chat_template": "{{ bos_token }}{% for m in messages %} {{ m['content'] | trim }}{% endfor %}{% if add_generation_prompt and greet is defined %} {{ greet }}{% endif %}"})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), tc, 0o644))
	var out struct {
		PromptIDs []int  `json:"prompt_ids"`
		Generated []int  `json:"generated"`
		ChatText  string `json:"chat_text"`
	}
	r := reel(t, t.TempDir(), "hf", "generate", dir, "--chat", "--prompt", " "+strings.Join(words, " ")+" ", "--max-new-tokens", strconv.Itoa(len(e.Generated)))
	requireOK(t, r)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	require.Equal(t, e.Tokens, out.PromptIDs)
	require.Equal(t, e.Generated, out.Generated)
	require.Equal(t, "w"+strconv.Itoa(e.Tokens[0])+" "+strings.Join(words, " "), out.ChatText)

	r = reel(t, t.TempDir(), "hf", "generate", dir, "--chat", "--var", "greet=w9", "--prompt", "w5", "--max-new-tokens", "1")
	requireOK(t, r)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	require.Equal(t, []int{e.Tokens[0], 5, 9}, out.PromptIDs)
	requireUserError(t, reel(t, t.TempDir(), "hf", "generate", dir, "--var", "greet=w9", "--prompt", "w5"), 2)
	require.NoError(t, os.Remove(filepath.Join(dir, "tokenizer_config.json")))
	msg := requireUserError(t, reel(t, t.TempDir(), "hf", "generate", dir, "--chat", "--prompt", "w5"), 2)
	require.Contains(t, msg, "no chat template")
}
