package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/reelml/reel/hf"
	"github.com/reelml/reel/text"
)

const hfTemplateUsage = `Usage: reel hf template PATH --messages FILE.json [--add-generation-prompt=false] [--var NAME=VALUE]...

Renders the chat template of PATH (a model directory: chat_template.jinja, chat_template.json or
tokenizer_config.json's chat_template; or a tokenizer_config.json) over the messages in FILE.json
(a list of {"role": ..., "content": ...}) as transformers' apply_chat_template(tokenize=False)
does, and prints {"text": "..."}. --var sets extra template variables (e.g. enable_thinking=false),
typed as YAML scalars. A template that raises an exception exits non-zero with its message.
`

// hfTemplate is 'reel hf template'.
func hfTemplate(args []string) error {
	fs := newFlags("hf template")
	messages := fs.String("messages", "", "JSON file holding the list of messages")
	agp := fs.Bool("add-generation-prompt", true, "end with the prompt of the assistant's turn")
	vars := fs.StringArray("var", nil, "extra template variable NAME=VALUE (repeatable)")
	name := fs.String("template", "", "which of several named templates (default: \"default\")")
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, hfTemplateUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{2, fmt.Errorf("hf template: expected one model directory or tokenizer_config.json, got %d arguments", fs.NArg())}
	}
	if *messages == "" {
		return &exitError{2, fmt.Errorf("hf template: --messages FILE.json is required")}
	}
	extra := map[string]any{}
	for _, s := range *vars {
		k, v, err := text.ParseVar(s)
		if err != nil {
			return &exitError{2, fmt.Errorf("hf template: --var %v", err)}
		}
		extra[k] = v
	}
	tmpl, err := text.LoadChatTemplate(fs.Arg(0), *name)
	if err != nil {
		return err
	}
	msgs, err := readMessages(*messages)
	if err != nil {
		return fmt.Errorf("hf template: --messages: %w", err)
	}
	if !json.Valid(msgs) {
		return fmt.Errorf("hf template: --messages %s: not valid JSON (expected a list of {\"role\": ..., \"content\": ...})", *messages)
	}
	out, err := tmpl.RenderJSON(msgs, *agp, extra)
	if err != nil {
		return fmt.Errorf("hf template: %s: %w", tmpl.Origin, err)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(map[string]string{"text": out})
}

// maxMessagesFile bounds a --messages file.
const maxMessagesFile = 64 << 20

func readMessages(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMessagesFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxMessagesFile {
		return nil, fmt.Errorf("%s: larger than %d MiB", path, maxMessagesFile>>20)
	}
	return b, nil
}

// chatFlags are the flags of commands that can format a prompt with the model's chat template.
type chatFlags struct {
	on   *bool
	vars *[]string
}

func addChatFlags(fs interface {
	Bool(name string, value bool, usage string) *bool
	StringArray(name string, value []string, usage string) *[]string
}) chatFlags {
	return chatFlags{
		on:   fs.Bool("chat", false, "format --prompt with the model's chat template (one user turn, generation prompt)"),
		vars: fs.StringArray("var", nil, "chat template variable NAME=VALUE, with --chat (repeatable)"),
	}
}

// promptIDs lays out prompt as the model's processor does, formatted by its chat template first
// with --chat; it returns the ids and the rendered chat text ("" without --chat).
func (c chatFlags) promptIDs(m *hf.Model, tok text.Tokenizer, prompt string, grids []hf.ImageGrid) ([]int, string, error) {
	if !*c.on {
		if len(*c.vars) > 0 {
			return nil, "", fmt.Errorf("--var sets chat template variables: it needs --chat")
		}
		ids, err := m.PromptIDsGrids(tok, prompt, grids)
		return ids, "", err
	}
	vars := map[string]any{}
	for _, s := range *c.vars {
		k, v, err := text.ParseVar(s)
		if err != nil {
			return nil, "", fmt.Errorf("--var %v", err)
		}
		vars[k] = v
	}
	tmpl, err := text.LoadChatTemplate(m.Dir, "")
	if err != nil {
		return nil, "", fmt.Errorf("--chat: %w", err)
	}
	return m.ChatPromptIDsGrids(tok, tmpl, prompt, grids, vars)
}
