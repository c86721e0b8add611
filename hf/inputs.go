package hf

import (
	"fmt"

	"github.com/gomlx/compute"

	"github.com/reelml/reel/internal/intlist"
	"github.com/reelml/reel/internal/usage"
	"github.com/reelml/reel/text"
)

// ParseTokens reads comma-separated token id lists, one per sequence, and their PaliGemma
// token type lists ('reel hf run --tokens … --token-types …') into RunInputs; a list that does
// not parse is a usage.Error naming its flag.
func ParseTokens(tokens, types []string) (RunInputs, error) {
	var in RunInputs
	for _, l := range []struct {
		flag string
		from []string
		to   *[][]int
	}{{"--tokens", tokens, &in.Tokens}, {"--token-types", types, &in.TokenTypes}} {
		for _, s := range l.from {
			ids, err := intlist.Parse(s, nil, "an integer")
			if err != nil {
				return in, usage.Errorf("%s: %w", l.flag, err)
			}
			*l.to = append(*l.to, ids)
		}
	}
	return in, nil
}

// InputFiles are the files a forward pass's pixel inputs are read from; 'reel hf run' and
// 'reel hf generate' take them as --pixels, --image, --video and --video-frames, which the
// errors of ReadInputs name.
type InputFiles struct {
	Pixels      string // pixel_values as a float32 .npy [N, C, H, W]
	Image       string // a PNG or JPEG, preprocessed as preprocessor_config.json says
	Video       string // a video file (Qwen-VL), decoded with ffmpeg at the video processor's fps
	VideoFrames int    // frames taken from Video (a shorter video repeats its last frame)
}

// ReadInputs adds the pixel inputs of f to in: pixel values from Pixels or Image (ImageInput, with the image's split grid);
// for Qwen-VL the patches with their grids from Image and Video (QwenImage, QwenVideo). Files
// the model cannot take (both Pixels and Image; a video for a model without a video tower;
// Qwen-VL pixel values without their grid) are a usage.Error.
func (m *Model) ReadInputs(in RunInputs, f InputFiles) (RunInputs, error) {
	if f.Pixels != "" && f.Image != "" {
		return in, usage.Errorf("give --pixels or --image, not both")
	}
	if m.Config.QwenVL != nil {
		return m.readQwenInputs(in, f)
	}
	if f.Video != "" {
		return in, usage.Errorf("--video: %s takes no videos", m.Config.Arch)
	}
	var err error
	if f.Pixels != "" {
		if in.Pixels, err = ReadNPY(f.Pixels); err != nil {
			return in, fmt.Errorf("--pixels: %w", err)
		}
	}
	if f.Image != "" {
		var g ImageGrid
		if in.Pixels, g, err = m.ImageInput(f.Image); err != nil {
			return in, fmt.Errorf("--image: %w", err)
		}
		in.Grids = []ImageGrid{g}
	}
	return in, nil
}

// readQwenInputs adds a Qwen-VL model's image and video (pixel values with their grids).
func (m *Model) readQwenInputs(in RunInputs, f InputFiles) (RunInputs, error) {
	if f.Pixels != "" {
		return in, usage.Errorf("--pixels: %s takes --image or --video (its patches need their grid)", m.Config.Arch)
	}
	if f.Image != "" {
		px, g, err := m.QwenImage(f.Image)
		if err != nil {
			return in, fmt.Errorf("--image: %w", err)
		}
		in.Pixels, in.ImageGrids = px, append(in.ImageGrids, g)
	}
	if f.Video != "" {
		px, g, sec, err := m.QwenVideo(f.Video, f.VideoFrames)
		if err != nil {
			return in, fmt.Errorf("--video: %w", err)
		}
		in.VideoPixels, in.VideoGrids, in.SecondsPerGrid = px, append(in.VideoGrids, g), append(in.SecondsPerGrid, sec)
	}
	return in, nil
}

// PromptOptions configure Prompt.
type PromptOptions struct {
	Chat bool     // format the prompt as one user turn with the model's chat template
	Vars []string // chat template variables NAME=VALUE (typed by text.ParseVar); need Chat
}

// Generation is what GeneratePrompt generates, as 'reel hf generate' prints it: the prompt's
// token ids, the generated ids, their text (given a tokenizer) and the rendered chat turn
// (PromptOptions.Chat).
type Generation struct {
	ChatText  *string `json:"chat_text,omitempty"`
	Generated []int   `json:"generated"`
	PromptIDs []int   `json:"prompt_ids"`
	Text      *string `json:"text,omitempty"`
}

// GeneratePrompt decodes greedily (GenerateInputs) from prompt laid out with tok (Prompt), or
// with tok nil from in.Tokens[0] as given, after checking the inputs (CheckInputs). Errors of the
// prompt or the inputs are a usage.Error.
func (m *Model) GeneratePrompt(backend compute.Backend, tok text.Tokenizer, prompt string, in RunInputs, po PromptOptions, opts GenerateOptions) (*Generation, error) {
	g := &Generation{}
	if tok != nil {
		ids, rendered, err := m.Prompt(tok, prompt, in, po)
		if err != nil {
			return nil, &usage.Error{Err: err}
		}
		in.Tokens = [][]int{ids}
		if po.Chat {
			g.ChatText = &rendered
		}
	}
	if err := m.CheckInputs(in); err != nil {
		return nil, &usage.Error{Err: err}
	}
	out, err := m.GenerateInputs(backend, in, opts)
	if err != nil {
		return nil, err
	}
	g.Generated, g.PromptIDs = out, in.Tokens[0]
	if tok != nil {
		t := tok.Decode(out)
		g.Text = &t
	}
	return g, nil
}

// Prompt lays out a text prompt for the inputs in (their images, videos and grids) as the
// model's processor does (QwenPromptIDs for Qwen-VL, else PromptIDsGrids), with o.Chat formatted by
// the model's chat template first (ChatPromptIDsGrids; Qwen-VL's vision placeholders are not laid
// out in a chat turn yet). It returns the ids and the rendered chat text ("" without Chat).
// Errors name the flags of 'reel hf generate' (--chat, --var).
func (m *Model) Prompt(tok text.Tokenizer, prompt string, in RunInputs, o PromptOptions) ([]int, string, error) {
	if m.Config.QwenVL != nil {
		if o.Chat {
			return nil, "", fmt.Errorf("--chat does not lay out Qwen-VL vision placeholders yet: render the turn with reel hf template and pass it as --prompt")
		}
		ids, err := m.QwenPromptIDs(tok, prompt, in.ImageGrids, in.VideoGrids, in.SecondsPerGrid)
		return ids, "", err
	}
	grids := in.Grids
	if grids == nil && in.Pixels != nil { // --pixels: each row one image
		grids = make([]ImageGrid, in.Pixels.Shape().Dimensions[0])
	}
	if !o.Chat {
		if len(o.Vars) > 0 {
			return nil, "", fmt.Errorf("--var sets chat template variables: it needs --chat")
		}
		ids, err := m.PromptIDsGrids(tok, prompt, grids)
		return ids, "", err
	}
	vars, err := text.ParseVars(o.Vars)
	if err != nil {
		return nil, "", fmt.Errorf("--var %w", err)
	}
	tmpl, err := text.LoadChatTemplate(m.Dir, "")
	if err != nil {
		return nil, "", fmt.Errorf("--chat: %w", err)
	}
	return m.ChatPromptIDsGrids(tok, tmpl, prompt, grids, vars)
}
