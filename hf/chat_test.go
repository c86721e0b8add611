package hf

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/text"
)

// TestChatPromptIDs: a VLM's one-turn chat lists its images before the text, LLaVA's template
// writes "<image>" for each (replaced by the image tokens), and no special token is added beyond
// what the template writes.
func TestChatPromptIDs(t *testing.T) {
	backend := testBackend(t)
	tok := text.Words{V: data.SceneVocab()}
	how, many := data.SceneVocab().ID("how"), data.SceneVocab().ID("many")
	tmpl, err := text.ParseChatTemplate("{% for m in messages %}{% for c in m.content %}{% if c.type == 'image' %}<image>" +
		"{% else %} {{ c.text }}{% endif %}{% endfor %}{% endfor %}{% if add_generation_prompt %} {{ answer }}{% endif %}")
	require.NoError(t, err)
	m, err := Inspect(backend, filepath.Join("testdata", "llava-clip-llama"))
	require.NoError(t, err)
	ids, rendered, err := m.ChatPromptIDs(tok, tmpl, "how", 2, map[string]any{"answer": "many"})
	require.NoError(t, err)
	require.Equal(t, "<image><image> how many", rendered)
	want := append(append(m.imageTokens(1), m.imageTokens(1)...), how, many)
	require.Equal(t, want, ids)
	require.Len(t, m.imageTokens(1), 16)

	tmpl, err = text.ParseChatTemplate("{{ messages[0].content[-1].text }}")
	require.NoError(t, err)
	_, _, err = m.ChatPromptIDs(tok, tmpl, "how", 1, nil)
	require.ErrorContains(t, err, "0 <image> placeholders for 1 image(s)")

	m, err = Inspect(backend, filepath.Join("testdata", "qwen3"))
	require.NoError(t, err)
	require.JSONEq(t, `[{"role": "user", "content": "how many"}]`, string(m.ChatMessages("how many", 0)))
}
