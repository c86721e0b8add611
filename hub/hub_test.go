package hub

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	shaMain = "0123456789abcdef0123456789abcdef01234567"
	shaV1   = "fedcba9876543210fedcba9876543210fedcba98"
)

// writeRepo lays out one repository the way huggingface_hub's snapshot_download does: file
// contents in blobs/, each snapshot a directory of relative symlinks into them, refs/REV holding
// the commit hash (no newline).
func writeRepo(t *testing.T, repo string, refs map[string]string, files map[string]map[string]string) {
	t.Helper()
	for rev, sha := range refs {
		p := filepath.Join(repo, "refs", filepath.FromSlash(rev))
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(sha), 0o644))
	}
	for sha, fs := range files {
		for name, content := range fs {
			blob := filepath.Join(repo, "blobs", sha[:8]+"-"+strings.ReplaceAll(name, "/", "_"))
			must(t, os.MkdirAll(filepath.Dir(blob), 0o755))
			must(t, os.WriteFile(blob, []byte(content), 0o644))
			link := filepath.Join(repo, "snapshots", sha, filepath.FromSlash(name))
			must(t, os.MkdirAll(filepath.Dir(link), 0o755))
			rel, err := filepath.Rel(filepath.Dir(link), blob)
			must(t, err)
			must(t, os.Symlink(rel, link))
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	must(t, err)
	return string(b)
}

func fakeModelCache(t *testing.T) string {
	cache := t.TempDir()
	writeRepo(t, filepath.Join(cache, "models--acme--tiny-vlm"),
		map[string]string{"main": shaMain, "v1": shaV1},
		map[string]map[string]string{
			shaMain: {"config.json": `{"rev":"main"}`},
			shaV1:   {"config.json": `{"rev":"v1"}`},
		})
	return cache
}

func TestModelRevisions(t *testing.T) {
	p := Places{HubCache: fakeModelCache(t), LeRobotHome: t.TempDir()}
	for _, c := range []struct{ ref, sha, rev string }{
		{"acme/tiny-vlm", shaMain, "main"},
		{"acme/tiny-vlm@main", shaMain, "main"},
		{"acme/tiny-vlm@v1", shaV1, "v1"},
		{"acme/tiny-vlm@" + shaV1, shaV1, "v1"}, // a commit hash names the snapshot
	} {
		dir, err := p.Model(c.ref)
		if err != nil {
			t.Fatalf("%s: %v", c.ref, err)
		}
		if want := filepath.Join(p.HubCache, "models--acme--tiny-vlm", "snapshots", c.sha); dir != want {
			t.Errorf("%s: got %s, want %s", c.ref, dir, want)
		}
		// The file reads through the snapshot's symlink into blobs/.
		if got := read(t, filepath.Join(dir, "config.json")); got != `{"rev":"`+c.rev+`"}` {
			t.Errorf("%s: config.json = %s", c.ref, got)
		}
	}
}

func TestModelMissing(t *testing.T) {
	p := Places{HubCache: fakeModelCache(t), LeRobotHome: t.TempDir()}
	_, err := p.Model("acme/tiny-vlm@v2")
	var nf *NotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("got %v, want a NotFoundError", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"model acme/tiny-vlm@v2 is not on this machine",
		local("acme/tiny-vlm@v2"),
		filepath.Join(p.HubCache, "models--acme--tiny-vlm", "refs", "v2"),
		"cached revisions: 0123456789ab, fedcba987654, main, v1",
		"'hf download acme/tiny-vlm --revision v2'",
		"'huggingface-cli download acme/tiny-vlm --revision v2'",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("message is not one line: %q", msg)
	}
	_, err = p.Model("nobody/nothing")
	if err == nil || !strings.Contains(err.Error(), filepath.Join(p.HubCache, "models--nobody--nothing", "refs", "main")) ||
		!strings.Contains(err.Error(), "'hf download nobody/nothing'") || strings.Contains(err.Error(), "cached revisions") {
		t.Errorf("nobody/nothing: %v", err)
	}
	// A ref naming a snapshot whose directory is gone says which file named it.
	must(t, os.WriteFile(filepath.Join(p.HubCache, "models--acme--tiny-vlm", "refs", "v3"), []byte("deadbeef"), 0o644))
	if _, err := p.Model("acme/tiny-vlm@v3"); err == nil || !strings.Contains(err.Error(), "snapshots/deadbeef (named by ") {
		t.Errorf("dangling ref: %v", err)
	}
}

func TestLocalPathWins(t *testing.T) {
	p := Places{HubCache: fakeModelCache(t), LeRobotHome: t.TempDir()}
	wd := t.TempDir()
	t.Chdir(wd)
	must(t, os.MkdirAll(filepath.Join("acme", "tiny-vlm"), 0o755))
	if dir, err := p.Model("acme/tiny-vlm"); err != nil || dir != "acme/tiny-vlm" {
		t.Errorf("existing local directory: got %q, %v", dir, err)
	}
	if dir, err := p.Dataset("acme/tiny-vlm"); err != nil || dir != "acme/tiny-vlm" {
		t.Errorf("existing local dataset: got %q, %v", dir, err)
	}
	// Not repository ids: returned unchanged for their readers to report.
	for _, ref := range []string{"", "random", "./x/y", "/abs/missing", "a/b/c", "../x", "tokenizer.json"} {
		if dir, err := p.Model(ref); err != nil || dir != ref {
			t.Errorf("%q: got %q, %v", ref, dir, err)
		}
	}
}

func TestParseRef(t *testing.T) {
	for s, want := range map[string]Ref{
		"google/paligemma-3b-pt-224":          {"google", "paligemma-3b-pt-224", ""},
		"lerobot/aloha_sim@v2.1":              {"lerobot", "aloha_sim", "v2.1"},
		"HuggingFaceTB/SmolVLM2.2B@refs/pr/3": {"HuggingFaceTB", "SmolVLM2.2B", "refs/pr/3"},
	} {
		if got, ok := ParseRef(s); !ok || got != want {
			t.Errorf("%s: got %+v %v", s, got, ok)
		}
	}
	for _, s := range []string{"one", "a/b/c", "/a/b", "./a", "a/../b", ".a/b", "a/b@", "a/b@x//y", "a/b@-x"} {
		if _, ok := ParseRef(s); ok {
			t.Errorf("%s parsed as a repository id", s)
		}
	}
}

func TestLocateEnv(t *testing.T) {
	env := func(m map[string]string) Env { return func(k string) string { return m[k] } }
	for _, c := range []struct {
		vars          map[string]string
		hub, lerobotH string
	}{
		{map[string]string{"HOME": "/h"}, "/h/.cache/huggingface/hub", "/h/.cache/huggingface/lerobot"},
		{map[string]string{"HOME": "/h", "XDG_CACHE_HOME": "/x"}, "/x/huggingface/hub", "/x/huggingface/lerobot"},
		{map[string]string{"HOME": "/h", "XDG_CACHE_HOME": "/x", "HF_HOME": "/hf"}, "/hf/hub", "/hf/lerobot"},
		{map[string]string{"HOME": "/h", "HF_HOME": "~/hf", "HUGGINGFACE_HUB_CACHE": "/legacy"}, "/legacy", "/h/hf/lerobot"},
		{map[string]string{"HOME": "/h", "HF_HOME": "/hf", "HUGGINGFACE_HUB_CACHE": "/legacy", "HF_HUB_CACHE": "$HOME/hc"}, "/h/hc", "/hf/lerobot"},
		{map[string]string{"HOME": "/h", "HF_HOME": "/hf", "HF_LEROBOT_HOME": "~/lr"}, "/hf/hub", "/h/lr"},
	} {
		got := Locate(env(c.vars))
		if got.HubCache != c.hub || got.LeRobotHome != c.lerobotH {
			t.Errorf("%v: got %+v, want hub %s, lerobot %s", c.vars, got, c.hub, c.lerobotH)
		}
	}
}

func TestDataset(t *testing.T) {
	info := map[string]string{"meta/info.json": `{"codebase_version":"v3.0"}`}
	home := t.TempDir()
	p := Places{HubCache: t.TempDir(), LeRobotHome: home}

	// LeRobot's root: HF_LEROBOT_HOME/ORG/NAME (a recorded dataset, or one downloaded to its root).
	root := filepath.Join(home, "me", "rec")
	must(t, os.MkdirAll(filepath.Join(root, "meta"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "meta", "info.json"), []byte("{}"), 0o644))
	if dir, err := p.Dataset("me/rec"); err != nil || dir != root {
		t.Errorf("lerobot root: got %q, %v", dir, err)
	}

	// LeRobot's own snapshot cache (revision v3.0) beats the Hub cache's main.
	writeRepo(t, filepath.Join(home, "hub", "datasets--lerobot--pusht"), map[string]string{"v3.0": shaV1}, map[string]map[string]string{shaV1: info})
	writeRepo(t, filepath.Join(p.HubCache, "datasets--lerobot--pusht"), map[string]string{"main": shaMain}, map[string]map[string]string{shaMain: info})
	if dir, err := p.Dataset("lerobot/pusht"); err != nil || dir != filepath.Join(home, "hub", "datasets--lerobot--pusht", "snapshots", shaV1) {
		t.Errorf("lerobot hub cache: got %q, %v", dir, err)
	}
	// An explicit revision: the one cache that has it.
	if dir, err := p.Dataset("lerobot/pusht@main"); err != nil || dir != filepath.Join(p.HubCache, "datasets--lerobot--pusht", "snapshots", shaMain) {
		t.Errorf("hub cache main: got %q, %v", dir, err)
	}
	// Only in the Hub cache ('hf download --repo-type dataset').
	writeRepo(t, filepath.Join(p.HubCache, "datasets--acme--cubes"), map[string]string{"main": shaMain}, map[string]map[string]string{shaMain: info})
	if dir, err := p.Dataset("acme/cubes"); err != nil || dir != filepath.Join(p.HubCache, "datasets--acme--cubes", "snapshots", shaMain) {
		t.Errorf("hub cache: got %q, %v", dir, err)
	}
	// A model repository of the same name is not a dataset.
	writeRepo(t, filepath.Join(p.HubCache, "models--acme--only-model"), map[string]string{"main": shaMain}, map[string]map[string]string{shaMain: info})
	_, err := p.Dataset("acme/only-model")
	if err == nil {
		t.Fatal("a model repository resolved as a dataset")
	}
	msg := err.Error()
	for _, want := range []string{
		"dataset acme/only-model is not on this machine",
		filepath.Join(home, "acme", "only-model"),
		filepath.Join(home, "hub", "datasets--acme--only-model"),
		filepath.Join(p.HubCache, "datasets--acme--only-model"),
		"'hf download acme/only-model --repo-type dataset'",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("message is not one line: %q", msg)
	}
}
