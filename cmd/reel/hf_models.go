package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/hf"
	"github.com/reelml/reel/text"
)

// `reel hf inspect|run|generate`: local Hugging Face model directories (package hf).

func hfInspect(args []string) error {
	fs := newFlags("hf inspect")
	asJSON := fs.Bool("json", false, "print JSON (with the full tensor mapping)")
	mapping := fs.Bool("mapping", false, "list every tensor: checkpoint name → reel variable, shapes, dtype, transform")
	backend := fs.String("backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`)
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: reel hf inspect DIR [--json] [--mapping]\n\nReads config.json and the safetensors headers (no weights) and checks every tensor against the\narchitecture.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{2, fmt.Errorf("hf inspect: expected a model directory, got %d arguments", fs.NArg())}
	}
	b, _, err := backends.Select(*backend)
	if err != nil {
		return err
	}
	m, err := hf.Inspect(b, fs.Arg(0))
	if err != nil {
		return err
	}
	s := m.Summarize()
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	fmt.Printf("%s (%s, model_type %s)\n", s.Arch, s.Kind, s.ModelType)
	fmt.Printf("  directory   %s\n  files       %s\n  key layout  %s\n", s.Dir, strings.Join(s.Files, ", "), s.Layout)
	var dts []string
	for dt, n := range s.DTypes {
		dts = append(dts, fmt.Sprintf("%s ×%d", dt, n))
	}
	fmt.Printf("  stored as   %s (config: %s); reel computes in f32\n", strings.Join(dts, ", "), orNone(s.ConfigDType))
	fmt.Printf("  parameters  %s\n", millions(s.Params))
	for _, t := range s.Towers {
		fmt.Printf("    %-15s %-10s %4d tensors  %s*\n", t.Name, millions(t.Params), t.Tensors, t.Prefix)
	}
	fmt.Printf("  tokenizer   %s\n", s.Tokenizer)
	if s.ImageTokens > 0 {
		fmt.Printf("  image       %d tokens per image at placeholder id %d\n", s.ImageTokens, s.ImageToken)
	}
	if s.Image != "" {
		fmt.Printf("  pixels      %s\n", s.Image)
	}
	if len(s.Ignored) > 0 {
		fmt.Printf("  ignored     %s\n", strings.Join(s.Ignored, ", "))
	}
	if *mapping {
		fmt.Println("  mapping (checkpoint tensor → reel variable):")
		for _, p := range s.Mapping {
			tr := ""
			if p.Transform != "" {
				tr = " (" + p.Transform + ")"
			}
			fmt.Printf("    %s %v %s → %s %v%s\n", p.Source, p.HFShape, p.DType, p.Var, p.Shape, tr)
		}
	} else {
		fmt.Printf("  mapping     %d tensors → reel variables (--mapping lists them)\n", len(s.Mapping))
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "not set"
	}
	return s
}

func millions(n int) string {
	if n >= 1e6 {
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	}
	return fmt.Sprintf("%.1fK", float64(n)/1e3)
}

// hfInputFlags are the input flags `hf run` and `hf generate` share.
type hfInputFlags struct {
	tokens, types *[]string
	pixels, image *string
	backend       *string
}

func addHFInputFlags(fs interface {
	StringArray(string, []string, string) *[]string
	String(string, string, string) *string
}) hfInputFlags {
	return hfInputFlags{
		tokens:  fs.StringArray("tokens", nil, "comma-separated token ids, image placeholders included (repeatable: one per sequence / text)"),
		types:   fs.StringArray("token-types", nil, "PaliGemma token_type_ids per --tokens: 0 prefix (bidirectional), 1 suffix (causal)"),
		pixels:  fs.String("pixels", "", "pixel_values as a float32 .npy [N, C, H, W]"),
		image:   fs.String("image", "", "a PNG or JPEG, preprocessed as preprocessor_config.json says"),
		backend: fs.String("backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`),
	}
}

// inputs parses the flags into a forward pass's inputs.
func (f hfInputFlags) inputs(cmd string, m *hf.Model) (hf.RunInputs, error) {
	var in hf.RunInputs
	for _, s := range *f.tokens {
		ids, err := idList(cmd, "--tokens", s)
		if err != nil {
			return in, err
		}
		in.Tokens = append(in.Tokens, ids)
	}
	for _, s := range *f.types {
		ids, err := idList(cmd, "--token-types", s)
		if err != nil {
			return in, err
		}
		in.TokenTypes = append(in.TokenTypes, ids)
	}
	if *f.pixels != "" && *f.image != "" {
		return in, &exitError{2, fmt.Errorf("%s: give --pixels or --image, not both", cmd)}
	}
	var err error
	if *f.pixels != "" {
		if in.Pixels, err = hf.ReadNPY(*f.pixels); err != nil {
			return in, fmt.Errorf("%s: --pixels: %v", cmd, err)
		}
	}
	if *f.image != "" {
		var g hf.ImageGrid
		if in.Pixels, g, err = m.ImageInput(*f.image); err != nil {
			return in, fmt.Errorf("%s: --image: %v", cmd, err)
		}
		in.Grids = []hf.ImageGrid{g}
	}
	return in, nil
}

func idList(cmd, flag, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, &exitError{2, fmt.Errorf("%s: %s: %q is not an integer", cmd, flag, f)}
		}
		out = append(out, n)
	}
	return out, nil
}

func hfRun(args []string) error {
	fs := newFlags("hf run")
	f := addHFInputFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: reel hf run DIR --tokens 1,2,3 [--tokens …] [--token-types 0,0,1] [--pixels FILE.npy | --image FILE]\n\nOne forward pass, printed as one JSON object under transformers' output names: logits for causal\nLMs and VLMs; image_embeds, text_embeds and logits_per_image for SigLIP and CLIP (one --tokens per\ntext); last_hidden_state and pooler_output for vision towers.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{2, fmt.Errorf("hf run: expected a model directory, got %d arguments", fs.NArg())}
	}
	b, _, err := backends.Select(*f.backend)
	if err != nil {
		return err
	}
	m, err := hf.Load(b, fs.Arg(0))
	if err != nil {
		return err
	}
	in, err := f.inputs("hf run", m)
	if err != nil {
		return err
	}
	if err := m.CheckInputs(in); err != nil {
		return &exitError{2, fmt.Errorf("hf run: %v", err)}
	}
	res, err := m.Run(b, in)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

func hfGenerate(args []string) error {
	fs := newFlags("hf generate")
	f := addHFInputFlags(fs)
	prompt := fs.String("prompt", "", "the prompt as text (needs the model's tokenizer)")
	maxNew := fs.Int("max-new-tokens", 20, "most tokens to generate")
	chat := addChatFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: reel hf generate DIR --prompt TEXT [--chat [--var NAME=VALUE]...] | --tokens 1,2,3 [--image FILE | --pixels FILE.npy] [--max-new-tokens N]\n\nGreedy decoding with a KV cache (transformers' generate(do_sample=False)); prints JSON with the\nprompt's and the generated token ids (and the text, for --prompt). --prompt is tokenised with the\nmodel's tokenizer as its processor does (PaliGemma: image tokens, BOS, prompt, \"\\n\"; LLaVA: each\n<image> replaced by the image tokens); --tokens must hold the image placeholders itself\n(reel hf inspect tells how many).\n\nWith --chat, --prompt is one user turn formatted by the model's chat template (as\napply_chat_template(add_generation_prompt=True) does; --var sets template variables) and printed\nas \"chat_text\".\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{2, fmt.Errorf("hf generate: expected a model directory, got %d arguments", fs.NArg())}
	}
	if (*prompt != "") == (len(*f.tokens) > 0) || len(*f.tokens) > 1 || len(*f.types) > 0 {
		return &exitError{2, fmt.Errorf("hf generate: expected one prompt: --prompt TEXT or one --tokens list (and no --token-types: the prompt is PaliGemma's prefix)")}
	}
	b, _, err := backends.Select(*f.backend)
	if err != nil {
		return err
	}
	m, err := hf.Load(b, fs.Arg(0))
	if err != nil {
		return err
	}
	in, err := f.inputs("hf generate", m)
	if err != nil {
		return err
	}
	var tok text.Tokenizer
	chatText := ""
	if *prompt != "" {
		if tok, err = text.Load(m.Dir); err != nil {
			return fmt.Errorf("hf generate: --prompt: %v", err)
		}
		grids := in.Grids
		if grids == nil && in.Pixels != nil { // --pixels: each row one image
			grids = make([]hf.ImageGrid, in.Pixels.Shape().Dimensions[0])
		}
		ids, rendered, err := chat.promptIDs(m, tok, *prompt, grids)
		if err != nil {
			return &exitError{2, fmt.Errorf("hf generate: %v", err)}
		}
		in.Tokens = [][]int{ids}
		chatText = rendered
	} else if *chat.on {
		return &exitError{2, fmt.Errorf("hf generate: --chat formats --prompt TEXT; --tokens are used as given")}
	}
	if err := m.CheckInputs(in); err != nil {
		return &exitError{2, fmt.Errorf("hf generate: %v", err)}
	}
	out, err := m.Generate(b, in.Tokens[0], in.Pixels, hf.GenerateOptions{MaxNewTokens: *maxNew})
	if err != nil {
		return err
	}
	res := map[string]any{"prompt_ids": in.Tokens[0], "generated": out}
	if tok != nil {
		res["text"] = tok.Decode(out)
	}
	if *chat.on {
		res["chat_text"] = chatText
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(res)
}
