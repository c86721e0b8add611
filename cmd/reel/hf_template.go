package main

import (
	"encoding/json"
	"fmt"
	"os"

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
	fs.Usage = usageFunc(fs, hfTemplateUsage)
	if err := parseArgs(fs, args, 1, "expected one model directory or tokenizer_config.json"); err != nil {
		return err
	}
	if *messages == "" {
		return &exitError{2, fmt.Errorf("hf template: --messages FILE.json is required")}
	}
	extra, err := text.ParseVars(*vars)
	if err != nil {
		return &exitError{2, fmt.Errorf("hf template: --var %w", err)}
	}
	tmpl, err := text.LoadChatTemplate(fs.Arg(0), *name)
	if err != nil {
		return err
	}
	msgs, err := text.ReadMessages(*messages)
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
