package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/hf"
	usageerr "github.com/reelml/reel/internal/usage"
	"github.com/reelml/reel/text"
)

// `reel hf inspect|run|generate`: local Hugging Face model directories (package hf).

func hfInspect(args []string) error {
	fs := newFlags("hf inspect")
	asJSON := fs.Bool("json", false, "print JSON (with the full tensor mapping)")
	mapping := fs.Bool("mapping", false, "list every tensor: checkpoint name → reel variable, shapes, dtype, transform")
	backend := fs.String("backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`)
	fs.Usage = usageFunc(fs, "Usage: reel hf inspect DIR [--json] [--mapping]\n\nReads config.json and the safetensors headers (no weights) and checks every tensor against the\narchitecture.")
	if err := parseArgs(fs, args, 1, "expected a model directory"); err != nil {
		return err
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
		return printJSON(s)
	}
	s.WriteText(os.Stdout, *mapping)
	return nil
}

// hfInputFlags are the input flags `hf run` and `hf generate` share.
type hfInputFlags struct {
	tokens, types *[]string
	files         hf.InputFiles
	backend       *string
}

func addHFInputFlags(fs *pflag.FlagSet) *hfInputFlags {
	f := &hfInputFlags{}
	f.tokens = fs.StringArray("tokens", nil, "comma-separated token ids, image placeholders included (repeatable: one per sequence / text)")
	f.types = fs.StringArray("token-types", nil, "PaliGemma token_type_ids per --tokens: 0 prefix (bidirectional), 1 suffix (causal)")
	fs.StringVar(&f.files.Pixels, "pixels", "", "pixel_values as a float32 .npy [N, C, H, W]")
	fs.StringVar(&f.files.Image, "image", "", "a PNG or JPEG, preprocessed as preprocessor_config.json says")
	fs.StringVar(&f.files.Video, "video", "", "a video file (Qwen-VL), decoded with ffmpeg at the video processor's fps")
	fs.IntVar(&f.files.VideoFrames, "video-frames", 16, "frames taken from --video (a shorter video repeats its last frame)")
	f.backend = fs.String("backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`)
	return f
}

// inputs parses the flags into a forward pass's inputs.
func (f *hfInputFlags) inputs(cmd string, m *hf.Model) (hf.RunInputs, error) {
	in, err := hf.ParseTokens(*f.tokens, *f.types)
	if err == nil {
		in, err = m.ReadInputs(in, f.files)
	}
	if err != nil {
		return in, usageError(fmt.Errorf("%s: %w", cmd, err))
	}
	return in, nil
}

func hfRun(args []string) error {
	fs := newFlags("hf run")
	f := addHFInputFlags(fs)
	fs.Usage = usageFunc(fs, "Usage: reel hf run DIR --tokens 1,2,3 [--tokens …] [--token-types 0,0,1] [--pixels FILE.npy | --image FILE] [--video FILE [--video-frames N]]\n\nOne forward pass, printed as one JSON object under transformers' output names: logits for causal\nLMs and VLMs; image_embeds, text_embeds and logits_per_image for SigLIP and CLIP (one --tokens per\ntext); last_hidden_state and pooler_output for vision towers.")
	if err := parseArgs(fs, args, 1, "expected a model directory"); err != nil {
		return err
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
		return &exitError{2, fmt.Errorf("hf run: %w", err)}
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
	chat := fs.Bool("chat", false, "format --prompt with the model's chat template (one user turn, generation prompt)")
	vars := fs.StringArray("var", nil, "chat template variable NAME=VALUE, with --chat (repeatable)")
	fs.Usage = usageFunc(fs, "Usage: reel hf generate DIR --prompt TEXT [--chat [--var NAME=VALUE]...] | --tokens 1,2,3 [--image FILE | --pixels FILE.npy | --video FILE] [--max-new-tokens N]\n\nGreedy decoding with a KV cache (transformers' generate(do_sample=False)); prints JSON with the\nprompt's and the generated token ids (and the text, for --prompt). --prompt is tokenised with the\nmodel's tokenizer as its processor does (PaliGemma: image tokens, BOS, prompt, \"\\n\"; LLaVA: each\n<image> replaced by the image tokens; Qwen-VL: each <|vision_start|><|image_pad|><|vision_end|>, or\none put first, with one <|image_pad|> per merged token, likewise <|video_pad|>); --tokens must hold the image placeholders itself\n(reel hf inspect tells how many).\n\nWith --chat, --prompt is one user turn formatted by the model's chat template (as\napply_chat_template(add_generation_prompt=True) does; --var sets template variables) and printed\nas \"chat_text\".")
	if err := parseArgs(fs, args, 1, "expected a model directory"); err != nil {
		return err
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
	if *prompt != "" {
		if tok, err = text.Load(m.Dir); err != nil {
			return fmt.Errorf("hf generate: --prompt: %w", err)
		}
	} else if *chat {
		return &exitError{2, fmt.Errorf("hf generate: --chat formats --prompt TEXT; --tokens are used as given")}
	}
	res, err := m.GeneratePrompt(b, tok, *prompt, in, hf.PromptOptions{Chat: *chat, Vars: *vars}, hf.GenerateOptions{MaxNewTokens: *maxNew})
	if usageerr.Is(err) {
		return &exitError{2, fmt.Errorf("hf generate: %w", err)}
	} else if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(res)
}
