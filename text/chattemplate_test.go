package text

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestChatTemplateGoldens renders every case of testdata/templates/cases.json (real models'
// templates; the expected renders and errors are Python jinja2's in transformers' environment,
// see testdata/templates/README.md) and compares byte for byte.
func TestChatTemplateGoldens(t *testing.T) {
	dir := filepath.Join("testdata", "templates")
	data, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Template, Name, Expected, Error string
		Messages                        json.RawMessage
		AGP                             bool                       `json:"add_generation_prompt"`
		Vars                            map[string]json.RawMessage `json:"vars"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	templates := map[string]bool{}
	raising := 0
	for _, c := range cases {
		src, err := os.ReadFile(filepath.Join(dir, c.Template))
		if err != nil {
			t.Fatal(err)
		}
		tmpl, err := ParseChatTemplate(string(src))
		if err != nil {
			t.Fatalf("%s: %v", c.Template, err)
		}
		vars := map[string]any{}
		for k, v := range c.Vars {
			vars[k] = v
		}
		got, err := tmpl.RenderJSON(c.Messages, c.AGP, vars)
		switch {
		case c.Error != "":
			raising++
			if err == nil || err.Error() != c.Error {
				t.Errorf("%s / %s: want error %q, got %v (render %q)", c.Template, c.Name, c.Error, err, got)
			}
		case err != nil:
			t.Errorf("%s / %s: %v", c.Template, c.Name, err)
		case got != c.Expected:
			t.Errorf("%s / %s:\n got %q\nwant %q", c.Template, c.Name, got, c.Expected)
		}
		templates[c.Template] = true
	}
	if len(cases) < 100 || len(templates) < 14 || raising < 10 {
		t.Fatalf("only %d cases of %d templates, %d raising", len(cases), len(templates), raising)
	}
}

func TestLoadChatTemplate(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := LoadChatTemplate(dir, ""); !errors.Is(err, ErrNoChatTemplate) {
		t.Fatalf("empty directory: %v", err)
	}
	write("tokenizer_config.json", `{"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>", "pad_token": null,
		"chat_template": [{"name": "default", "template": "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}{{ eos_token }}{{ pad_token is defined }}"},
		                  {"name": "tool_use", "template": "tools"}]}`)
	msgs := []Message{{"user", "hi"}}
	for _, tc := range []struct{ path, name, want string }{
		{dir, "", "<s>hi</s>False"},
		{filepath.Join(dir, "tokenizer_config.json"), "tool_use", "tools"},
	} {
		tmpl, err := LoadChatTemplate(tc.path, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := tmpl.Render(msgs, false, nil); err != nil || got != tc.want {
			t.Errorf("%s %q: got %q, %v; want %q", tc.path, tc.name, got, err, tc.want)
		}
	}
	if _, err := LoadChatTemplate(dir, "nope"); err == nil || !strings.Contains(err.Error(), `no template named "nope" (have default, tool_use)`) {
		t.Errorf("unknown name: %v", err)
	}
	write("chat_template.json", `{"chat_template": "json:{{ messages[0].content }}"}`)
	tmpl, err := LoadChatTemplate(dir, "")
	if got, _ := tmpl.Render(msgs, false, nil); err != nil || got != "json:hi" {
		t.Errorf("chat_template.json: got %q, %v", got, err)
	}
	write("chat_template.jinja", "jinja:{{ messages[0].content }}{% if enable_thinking is false %}!{% endif %}")
	tmpl, err = LoadChatTemplate(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := tmpl.Render(msgs, false, map[string]any{"enable_thinking": false}); got != "jinja:hi!" {
		t.Errorf("chat_template.jinja with enable_thinking=false: got %q", got)
	}
	if _, err := tmpl.RenderJSON([]byte(`{"role": "user"}`), false, nil); err == nil {
		t.Error("messages that are not a list: no error")
	}
	write("chat_template.jinja", "{% for %}")
	if _, err := LoadChatTemplate(dir, ""); err == nil || !strings.Contains(err.Error(), "chat_template.jinja") {
		t.Errorf("bad template: %v", err)
	}
}

func TestParseVar(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want any
	}{{"x=false", false}, {"x=true", true}, {"x=3", 3}, {"x=0.5", 0.5}, {"x=null", nil}, {"x=", ""},
		{"x=hello world", "hello world"}, {`x="false"`, "false"}, {"x=a: b", "a: b"}, {"x=[1]", "[1]"}} {
		_, got, err := ParseVar(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %#v, %v; want %#v", tc.in, got, err, tc.want)
		}
	}
	if _, _, err := ParseVar("novalue"); err == nil {
		t.Error("novalue: no error")
	}
}

func TestAdditionalChatTemplates(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "additional_chat_templates"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]string{"chat_template.jinja": "default", filepath.Join("additional_chat_templates", "tool_use.jinja"): "tools"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]string{"": "default", "default": "default", "tool_use": "tools"} {
		tmpl, err := LoadChatTemplate(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := tmpl.Render(nil, false, nil); got != want {
			t.Errorf("%q: got %q, want %q", name, got, want)
		}
	}
	if _, err := LoadChatTemplate(dir, "../x"); err == nil {
		t.Error("a path as a template name: no error")
	}
	if _, err := LoadChatTemplate(dir, "missing"); !errors.Is(err, ErrNoChatTemplate) {
		t.Errorf("missing named template: %v", err)
	}
}

func TestParseVars(t *testing.T) {
	m, err := ParseVars([]string{"a=1", "b=true", "a=x"})
	if err != nil || len(m) != 2 || m["a"] != "x" || m["b"] != true {
		t.Fatalf("ParseVars = %v, %v; want a later a to win, b typed", m, err)
	}
	if _, err := ParseVars([]string{"a=1", "=2", "bad"}); err == nil || !strings.Contains(err.Error(), `"=2"`) {
		t.Fatalf("ParseVars error = %v, want the first bad variable named", err)
	}
}
