package hf

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/reelml/reel/text"
)

// ImagePlaceholder marks where a LLaVA prompt's image goes (its processor's "<image>").
const ImagePlaceholder = "<image>"

// PromptIDs tokenises a text prompt as the model's processor lays it out, with `images` images:
//   - PaliGemma (PaliGemmaProcessor): the image tokens of every image, BOS, the prompt, "\n";
//   - LLaVA (LlavaProcessor): each "<image>" in the prompt replaced by the image tokens, after
//     BOS (one "<image>" is put first when the prompt has none and an image is given);
//   - Idefics3 / SmolVLM: see Idefics3PromptIDs, each image unsplit;
//   - causal LMs: encode(prompt, add_special_tokens=True).
func (m *Model) PromptIDs(tok text.Tokenizer, prompt string, images int) (_ []int, err error) {
	defer text.RecoverTimeout(&err)
	cfg := m.Config
	bos := tok.Special().BOS
	switch {
	case cfg.PaliGemma != nil:
		ids := m.imageTokens(images)
		if bos >= 0 {
			ids = append(ids, bos)
		}
		return append(ids, tok.Encode(prompt+"\n")...), nil
	case cfg.Idefics3 != nil: // each image one unsplit tile (PromptIDsGrids for split images)
		return m.Idefics3PromptIDs(tok, prompt, make([]ImageGrid, images))
	case cfg.Llava != nil:
		if images > 0 && !strings.Contains(prompt, ImagePlaceholder) {
			prompt = ImagePlaceholder + "\n" + prompt
		}
		var ids []int
		if bos >= 0 {
			ids = append(ids, bos)
		}
		rest, err := m.expandImages(tok, prompt, images)
		return append(ids, rest...), err
	}
	return tok.EncodeSpecial(prompt), nil
}

// imageTokens is n images' placeholder tokens.
func (m *Model) imageTokens(n int) []int {
	out := make([]int, n*m.Config.ImageTokens())
	for i := range out {
		out[i] = m.Config.ImageToken()
	}
	return out
}

// expandImages encodes s (no special tokens added) with each "<image>" replaced by the image
// tokens; s must hold one per image.
func (m *Model) expandImages(tok text.Tokenizer, s string, images int) ([]int, error) {
	parts := strings.Split(s, ImagePlaceholder)
	if n := len(parts) - 1; n != images {
		return nil, fmt.Errorf("the prompt has %d %s placeholders for %d image(s)", n, ImagePlaceholder, images)
	}
	var ids []int
	for i, p := range parts {
		if i > 0 {
			ids = append(ids, m.imageTokens(1)...)
		}
		if p != "" {
			ids = append(ids, tok.Encode(p)...)
		}
	}
	return ids, nil
}

// ChatMessages is the one-turn conversation (JSON) a prompt with `images` images becomes: one user
// message whose content lists the images ({"type": "image"}) then the text ({"type": "text"}), the
// form the VLM processors' chat templates read (LLaVA, Qwen2-VL, Idefics3); a text model's
// content is the prompt itself.
func (m *Model) ChatMessages(prompt string, images int) []byte {
	var content any = prompt
	if m.Config.Kind == KindVLM {
		parts := make([]map[string]string, 0, images+1)
		for range images {
			parts = append(parts, map[string]string{"type": "image"})
		}
		content = append(parts, map[string]string{"type": "text", "text": prompt})
	}
	b, _ := json.Marshal([]map[string]any{{"role": "user", "content": content}})
	return b
}

// ChatPromptIDs formats prompt with the model's chat template as apply_chat_template does (one
// user turn, add_generation_prompt, extra template variables vars) and tokenises the rendered
// text without adding special tokens (the template writes them; transformers tokenises chat
// text with add_special_tokens=False). A VLM's images: LLaVA's template writes one "<image>" per
// image, replaced by the image tokens; PaliGemma's image tokens go first. It returns the ids
// and the rendered text.
func (m *Model) ChatPromptIDs(tok text.Tokenizer, tmpl *text.ChatTemplate, prompt string, images int, vars map[string]any) ([]int, string, error) {
	rendered, err := tmpl.RenderJSON(m.ChatMessages(prompt, images), true, vars)
	if err != nil {
		return nil, "", fmt.Errorf("chat template %s: %w", tmpl.Origin, err)
	}
	switch {
	case m.Config.Idefics3 != nil:
		return m.ChatPromptIDsGrids(tok, tmpl, prompt, make([]ImageGrid, images), vars)
	case m.Config.PaliGemma != nil:
		return append(m.imageTokens(images), tok.Encode(rendered)...), rendered, nil
	case m.Config.Llava != nil:
		ids, err := m.expandImages(tok, rendered, images)
		if err != nil {
			return nil, "", fmt.Errorf("chat template %s: %w", tmpl.Origin, err)
		}
		return ids, rendered, nil
	}
	return tok.Encode(rendered), rendered, nil
}
