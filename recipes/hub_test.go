package recipes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestResolveRepos: the recipe fields naming models and datasets resolve in a fake Hugging Face
// cache (refs/main naming a snapshot), a local path wins, and a missing repository is one error
// naming the field and the download command.
func TestResolveRepos(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HF_HOME", home)
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HUGGINGFACE_HUB_CACHE", "")
	t.Setenv("HF_LEROBOT_HOME", "")
	const sha = "0123456789abcdef0123456789abcdef01234567"
	repo := filepath.Join(home, "hub", "models--google--paligemma-3b-pt-224")
	snap := filepath.Join(repo, "snapshots", sha)
	for _, p := range []string{filepath.Join(repo, "refs"), snap} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(repo, "refs", "main"), []byte(sha), 0o644); err != nil {
		t.Fatal(err)
	}
	ds := filepath.Join(home, "lerobot", "lerobot", "pusht")
	if err := os.MkdirAll(filepath.Join(ds, "meta"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ds, "meta", "info.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	local := t.TempDir()

	r, err := Load("pi0", []string{"data.dir=lerobot/pusht", "model.tokenizer=" + local})
	if err != nil {
		t.Fatal(err)
	}
	if r.Model.Pretrained != "google/paligemma-3b-pt-224" {
		t.Fatalf("Load changed model.pretrained to %q (resolution is the task's)", r.Model.Pretrained)
	}
	if err := r.ResolveRepos(); err != nil {
		t.Fatal(err)
	}
	if r.Model.Pretrained != snap || r.Data.Dir != ds || r.Model.Tokenizer != local {
		t.Errorf("resolved to pretrained %s, data.dir %s, tokenizer %s", r.Model.Pretrained, r.Data.Dir, r.Model.Tokenizer)
	}

	r, err = Load("pi0", []string{"model.pretrained=google/paligemma-3b-mix-448@v2"})
	if err != nil {
		t.Fatal(err)
	}
	err = r.ResolveRepos()
	if err == nil || !strings.HasPrefix(err.Error(), "model.pretrained: model google/paligemma-3b-mix-448@v2 is not on this machine") ||
		!strings.Contains(err.Error(), "'hf download google/paligemma-3b-mix-448 --revision v2'") {
		t.Errorf("missing model: %v", err)
	}
}
