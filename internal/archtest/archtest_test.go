package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/reelml/reel"

// layers are reel's packages from the bottom up (docs/architecture.md, "Import rules"): a
// package imports only packages of lower layers, never one of its own layer or above. A new
// package gets a layer here and a line in docs/architecture.md.
var layers = [][]string{
	{"internal/*"}, // leaves: import no reel package outside internal/ (internal ones may import each other)
	{"hub", "losses", "mediaio", "policy", "backends"},
	{"models", "text", "recipes", "checkpoints", "lerobot", "augment", "serve"},
	{"data", "videotok", "pruning"},
	{"hf", "sim"},
	{"train", "reward"},
	{"tasks"},
	{"analysis", "evaluate", "bench"},
	{"cmd/reel"},
}

// forbidden are rules worth saying by name (most follow from the layers too): importer → the
// packages it must never import, and why.
var forbidden = []struct {
	from string
	not  []string
	why  string
}{
	{"models", []string{"data", "recipes", "tasks", "train", "hf", "lerobot", "sim", "checkpoints"},
		"models are graphs over typed inputs: no data, recipes, checkpoints or training"},
	{"lerobot", []string{"tasks", "sim", "data", "train", "models", "recipes"},
		"the LeRobot format is a data format: readable without reel's models, tasks or simulator"},
	{"hf", []string{"train", "tasks", "recipes"}, "train imports hf (the Hugging Face export/fine-tune path), never the reverse"},
	{"text", []string{"data", "models"}, "the tokenizers and the vocabulary stand alone"},
	{"evaluate", []string{"bench"}, "evaluation and benchmarks are siblings"},
	{"bench", []string{"evaluate"}, "evaluation and benchmarks are siblings"},
	{"serve", []string{"tasks", "train", "models"}, "the server takes a policy behind an interface (tasks.OpenPolicy opens it)"},
	{"policy", []string{"models", "tasks", "train"}, "the policy spec and normalisation are data, not graphs"},
}

// imports maps each non-test Go package of the module (by path relative to the module root)
// to the reel packages its non-test files import.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	out := map[string][]string{}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		if _, ok := out[rel]; !ok {
			out[rel] = nil
		}
		for _, im := range f.Imports {
			p := strings.Trim(im.Path.Value, `"`)
			if p == module || strings.HasPrefix(p, module+"/") {
				p = strings.TrimPrefix(strings.TrimPrefix(p, module), "/")
				if !slices.Contains(out[rel], p) {
					out[rel] = append(out[rel], p)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// layerOf returns the layer of package p (-1: none).
func layerOf(p string) int {
	for i, l := range layers {
		for _, q := range l {
			if q == p || (strings.HasSuffix(q, "/*") && strings.HasPrefix(p, strings.TrimSuffix(q, "*"))) {
				return i
			}
		}
	}
	return -1
}

// TestImportLayers: every package has a layer, and imports only packages of lower layers (so
// there is no cycle and no upward import); cmd/reel is imported by nobody.
func TestImportLayers(t *testing.T) {
	graph := imports(t)
	pkgs := make([]string, 0, len(graph))
	for p := range graph {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	for _, p := range pkgs {
		lp := layerOf(p)
		if lp < 0 {
			t.Errorf("package %s has no layer: add it to internal/archtest's layers and to docs/architecture.md", p)
			continue
		}
		for _, q := range graph[p] {
			lq := layerOf(q)
			switch {
			case q == "cmd/reel":
				t.Errorf("%s imports cmd/reel: nothing imports the CLI", p)
			case lq < 0:
				t.Errorf("%s imports %s, which has no layer", p, q)
			case lp == 0 && lq == 0: // one internal helper using another
			case lq >= lp:
				t.Errorf("%s (layer %d) imports %s (layer %d): a package imports only lower layers (docs/architecture.md)", p, lp, q, lq)
			}
		}
	}
}

// TestForbiddenImports: the named rules of docs/architecture.md, directly or through other packages.
func TestForbiddenImports(t *testing.T) {
	graph := imports(t)
	deps := func(p string) map[string]bool {
		seen := map[string]bool{}
		var walk func(string)
		walk = func(p string) {
			for _, q := range graph[p] {
				if !seen[q] {
					seen[q] = true
					walk(q)
				}
			}
		}
		walk(p)
		return seen
	}
	for _, r := range forbidden {
		if _, ok := graph[r.from]; !ok {
			t.Errorf("rule for %s: no such package", r.from)
			continue
		}
		d := deps(r.from)
		for _, q := range r.not {
			if d[q] {
				t.Errorf("%s imports %s (directly or through others): %s", r.from, q, r.why)
			}
		}
	}
}

// TestCLIStartsNoGoroutines: cmd/reel holds flags and printing; concurrency lives in packages.
func TestCLIStartsNoGoroutines(t *testing.T) {
	dir := filepath.Join("..", "..", "cmd", "reel")
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("cmd/reel: %v (%d files)", err, len(files))
	}
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if g, ok := n.(*ast.GoStmt); ok {
				t.Errorf("%s: a go statement in cmd/reel: move the concurrency into the package it serves", fset.Position(g.Pos()))
			}
			return true
		})
	}
}
