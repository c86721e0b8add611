package hf

import (
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
//   - causal LMs: encode(prompt, add_special_tokens=True).
func (m *Model) PromptIDs(tok text.Tokenizer, prompt string, images int) (_ []int, err error) {
	defer text.RecoverTimeout(&err)
	cfg := m.Config
	img := func(n int) []int {
		out := make([]int, n*cfg.ImageTokens())
		for i := range out {
			out[i] = cfg.ImageToken()
		}
		return out
	}
	bos := tok.Special().BOS
	switch {
	case cfg.PaliGemma != nil:
		ids := img(images)
		if bos >= 0 {
			ids = append(ids, bos)
		}
		return append(ids, tok.Encode(prompt+"\n")...), nil
	case cfg.Llava != nil:
		if images > 0 && !strings.Contains(prompt, ImagePlaceholder) {
			prompt = ImagePlaceholder + "\n" + prompt
		}
		parts := strings.Split(prompt, ImagePlaceholder)
		if n := len(parts) - 1; n != images {
			return nil, fmt.Errorf("--prompt has %d %s placeholders for %d image(s)", n, ImagePlaceholder, images)
		}
		var ids []int
		if bos >= 0 {
			ids = append(ids, bos)
		}
		for i, p := range parts {
			if i > 0 {
				ids = append(ids, img(1)...)
			}
			if p != "" {
				ids = append(ids, tok.Encode(p)...)
			}
		}
		return ids, nil
	}
	return tok.EncodeSpecial(prompt), nil
}
