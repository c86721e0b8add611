// Package checkpoints writes and reads reel checkpoints.
//
// A run keeps its checkpoints in RUN/checkpoints/step-NNNNNNNN/, each holding
//
//	model/       GoMLX checkpoint (ml/model/checkpoint) of every Store variable: weights, optimizer
//	             moments, global step and the graph RNG state
//	state.json   step, data position, seed and the SHA-256 of every file (corruption check)
//	recipe.yaml  the fully resolved recipe that produced it
//
// A checkpoint is written into a temporary sibling directory and renamed into place, so a crash
// never leaves a half-written step directory; RUN/checkpoints/LATEST (written the same way) names
// the newest one. Loading verifies the checksums first, so truncated or corrupted files give a
// one-line error instead of garbage weights.
package checkpoints

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/gomlx/gomlx/ml/model/checkpoint"
	"github.com/reelml/reel/hub"
	"github.com/reelml/reel/internal/atomicfile"
	"github.com/reelml/reel/internal/errline"
	"github.com/reelml/reel/internal/safeio"
)

const (
	// LatestFile names the newest checkpoint directory inside a run's checkpoints directory.
	LatestFile = "LATEST"
	stateFile  = "state.json"
	recipeFile = "recipe.yaml"
	modelDir   = "model"
	prefix     = "step-"
)

// State is what a checkpoint records besides the variables.
type State struct {
	Step      int64             `json:"step"`       // optimizer steps completed
	DataIndex int64             `json:"data_index"` // next training micro-batch index
	Seed      int64             `json:"seed"`
	Time      string            `json:"time"`
	Recipe    string            `json:"recipe"`
	Files     map[string]string `json:"files"` // relative path → sha256
}

// DirName returns the directory name of the checkpoint at step.
func DirName(step int64) string { return fmt.Sprintf("%s%08d", prefix, step) }

// Save writes a checkpoint of store for st.Step under ckptRoot (RUN/checkpoints), updates LATEST,
// and deletes the oldest checkpoints beyond keep. extra files (name → content, e.g. a policy's
// spec) are written beside the recipe and covered by the checksums. It returns the checkpoint
// directory.
func Save(ckptRoot string, store *model.Store, st State, recipeYAML []byte, extra map[string][]byte, keep int) (string, error) {
	return SaveWithBase(ckptRoot, store, st, recipeYAML, extra, keep, nil)
}

// SaveWithBase is Save for a fine-tune with a frozen base: with base non-nil the variables it
// lists are left out and base is written as base.json (an adapter-only checkpoint, see Base).
func SaveWithBase(ckptRoot string, store *model.Store, st State, recipeYAML []byte, extra map[string][]byte, keep int, base *Base) (string, error) {
	if err := os.MkdirAll(ckptRoot, 0o755); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	final := filepath.Join(ckptRoot, DirName(st.Step))
	tmp, err := os.MkdirTemp(ckptRoot, ".tmp-"+DirName(st.Step)+"-")
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	defer os.RemoveAll(tmp) // no-op after a successful rename
	var exclude []*model.Variable
	if base != nil {
		for _, p := range base.Variables {
			v := store.GetVariable(p)
			if v == nil {
				return "", fmt.Errorf("checkpoint: base variable %s is not in the store", p)
			}
			exclude = append(exclude, v)
		}
		if err := WriteJSON(filepath.Join(tmp, BaseFile), base); err != nil {
			return "", fmt.Errorf("checkpoint: %w", err)
		}
	}
	if err := saveStore(filepath.Join(tmp, modelDir), store, exclude); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, recipeFile), recipeYAML, 0o644); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	for name, content := range extra {
		if name != filepath.Base(name) || name == recipeFile || name == stateFile || name == modelDir || name == BaseFile {
			return "", fmt.Errorf("checkpoint: extra file name %q is not a plain, free file name", name)
		}
		if err := os.WriteFile(filepath.Join(tmp, name), content, 0o644); err != nil {
			return "", fmt.Errorf("checkpoint: %w", err)
		}
	}
	st.Time = time.Now().UTC().Format(time.RFC3339)
	if st.Files, err = hashTree(tmp); err != nil {
		return "", err
	}
	if err := WriteJSON(filepath.Join(tmp, stateFile), st); err != nil {
		return "", err
	}
	if err := syncDir(tmp); err != nil {
		return "", err
	}
	if _, err := os.Stat(final); err == nil { // re-saving the same step: replace it
		if err := os.RemoveAll(final); err != nil {
			return "", fmt.Errorf("checkpoint: %w", err)
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(ckptRoot, LatestFile), []byte(DirName(st.Step)+"\n")); err != nil {
		return "", err
	}
	return final, prune(ckptRoot, keep)
}

func saveStore(dir string, store *model.Store, exclude []*model.Variable) (err error) {
	prev := store.Loader()
	defer store.SetLoader(prev) // the GoMLX handler attaches itself as loader: detach it again
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("checkpoint: saving variables: %v", r)
		}
	}()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	h, err := checkpoint.Build(store).Dir(dir).Keep(1).WithCompression(checkpoint.BinUncompressed).ExcludeVars(exclude...).Done()
	if err != nil {
		return fmt.Errorf("checkpoint: %s", errline.First(err))
	}
	if err := h.Save(); err != nil {
		return fmt.Errorf("checkpoint: saving variables: %s", errline.First(err))
	}
	return nil
}

// Verify reads state.json of the checkpoint in dir and checks every file's checksum.
func Verify(dir string) (State, error) {
	var st State
	raw, err := safeio.ReadFile(filepath.Join(dir, stateFile), safeio.JSONLimit)
	if err != nil {
		return st, fmt.Errorf("checkpoint %s: missing or unreadable %s (not a reel checkpoint, or a truncated one)", dir, stateFile)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("checkpoint %s: corrupt %s: %w", dir, stateFile, err)
	}
	if len(st.Files) == 0 {
		return st, fmt.Errorf("checkpoint %s: %s lists no files", dir, stateFile)
	}
	for rel, want := range st.Files {
		got, err := hashFile(filepath.Join(dir, rel))
		if errors.Is(err, os.ErrNotExist) {
			return st, fmt.Errorf("checkpoint %s: file %s is missing", dir, rel)
		} else if err != nil {
			return st, fmt.Errorf("checkpoint %s: file %s: %w", dir, rel, safeio.Cause(err))
		}
		if got != want {
			return st, fmt.Errorf("checkpoint %s: file %s is corrupt or truncated (checksum mismatch)", dir, rel)
		}
	}
	return st, nil
}

// Load verifies the checkpoint in dir and loads all its variables into store (creating or
// overwriting them); the base of an adapter-only checkpoint is rebuilt first (see Base).
func Load(dir string, store *model.Store) (State, error) {
	st, err := Verify(dir)
	if err != nil {
		return st, err
	}
	base, err := ReadBase(dir)
	if err != nil {
		return st, err
	}
	if base != nil {
		if err := loadBase(dir, base, store); err != nil {
			return st, err
		}
	}
	return st, loadStore(filepath.Join(dir, modelDir), store)
}

func loadStore(dir string, store *model.Store) (err error) {
	prev := store.Loader()
	defer store.SetLoader(prev)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("checkpoint %s: loading variables: %v", dir, r)
		}
	}()
	if _, err := checkpoint.Load(store).Dir(dir).Immediate().Done(); err != nil {
		return fmt.Errorf("checkpoint %s: loading variables: %s", dir, errline.First(err))
	}
	return nil
}

// LoadVariables verifies the checkpoint in dir and returns its variables by absolute path
// (e.g. "/vision/patch_embed/weights"), without touching any model.
func LoadVariables(dir string) (map[string]*tensors.Tensor, State, error) {
	store := model.NewStore()
	st, err := Load(dir, store)
	if err != nil {
		return nil, st, err
	}
	vars := make(map[string]*tensors.Tensor)
	for v := range store.IterVariables() {
		t, err := v.Value()
		if err != nil {
			return nil, st, fmt.Errorf("checkpoint %s: variable %s: %w", dir, v.Path(), err)
		}
		vars[v.Path()] = t
	}
	return vars, st, nil
}

// ReadRecipe returns the resolved recipe YAML saved with the checkpoint in dir.
func ReadRecipe(dir string) ([]byte, error) {
	b, err := safeio.ReadFile(filepath.Join(dir, recipeFile), safeio.RecipeLimit)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: missing %s", dir, recipeFile)
	}
	return b, nil
}

// List returns the checkpoint directories under ckptRoot in step order (oldest first).
func List(ckptRoot string) ([]string, error) {
	entries, err := os.ReadDir(ckptRoot)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	type item struct {
		step int64
		dir  string
	}
	var items []item
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		step, err := strconv.ParseInt(strings.TrimPrefix(e.Name(), prefix), 10, 64)
		if err != nil {
			continue
		}
		items = append(items, item{step, filepath.Join(ckptRoot, e.Name())})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].step < items[j].step })
	dirs := make([]string, len(items))
	for i, it := range items {
		dirs[i] = it.dir
	}
	return dirs, nil
}

// Newest returns the newest checkpoint under ckptRoot that verifies, starting from the one LATEST
// names; each checkpoint skipped because it is corrupt is reported through warn. It returns
// ("", nil) when the run has no checkpoint at all.
func Newest(ckptRoot string, warn func(string)) (string, State, error) {
	dirs, err := List(ckptRoot)
	if err != nil {
		return "", State{}, fmt.Errorf("checkpoints %s: %w", ckptRoot, err)
	}
	if latest, err := safeio.ReadFile(filepath.Join(ckptRoot, LatestFile), safeio.JSONLimit); err == nil {
		name := strings.TrimSpace(string(latest))
		// Put LATEST's target first among candidates (it is normally also the highest step).
		for i, d := range dirs {
			if filepath.Base(d) == name {
				dirs = append(append(dirs[:i:i], dirs[i+1:]...), d)
				break
			}
		}
	}
	// The problems of newer checkpoints are warnings only when an older one is then used: when
	// none is valid, the one error says what is wrong with the newest (one line, one cause).
	var firstErr error
	var skipped []error
	for i := len(dirs) - 1; i >= 0; i-- {
		st, err := Verify(dirs[i])
		if err == nil {
			if warn != nil {
				for _, e := range skipped {
					warn(fmt.Sprintf("%v; falling back to %s", e, filepath.Base(dirs[i])))
				}
			}
			return dirs[i], st, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		skipped = append(skipped, err)
	}
	if firstErr != nil {
		return "", State{}, fmt.Errorf("no valid checkpoint in %s (newest problem: %w)", ckptRoot, firstErr)
	}
	return "", State{}, nil
}

// Resolve maps a run directory, a run's checkpoints directory or a checkpoint directory to a
// checkpoint directory (the newest valid one for a run). path may also name a Hugging Face
// repository ORG/NAME[@REVISION] holding a run, already in the Hub cache (hub.Model).
func Resolve(path string, warn func(string)) (string, error) {
	local, err := hub.Model(path)
	if err != nil {
		return "", fmt.Errorf("%s: no such run or checkpoint directory, nor a cached Hugging Face repository: %w", path, err)
	}
	path = local
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%s: no such run or checkpoint directory", path)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("%s: expected a run or checkpoint directory, got a file", path)
	}
	if _, err := os.Stat(filepath.Join(path, stateFile)); err == nil {
		return path, nil
	}
	if isModelDir(path) { // another framework's model directory (a LeRobot policy): opened as it is
		return path, nil
	}
	root := path
	if _, err := os.Stat(filepath.Join(path, "checkpoints")); err == nil {
		root = filepath.Join(path, "checkpoints")
	}
	dir, _, err := Newest(root, warn)
	if err != nil {
		return "", err
	}
	if dir == "" {
		return "", fmt.Errorf("%s: no checkpoints found (expected RUN/checkpoints/step-*/ or a step-* directory)", path)
	}
	return dir, nil
}

func prune(ckptRoot string, keep int) error {
	if keep <= 0 {
		return nil
	}
	dirs, err := List(ckptRoot)
	if err != nil {
		return err
	}
	for len(dirs) > keep {
		if err := os.RemoveAll(dirs[0]); err != nil {
			return fmt.Errorf("checkpoint: pruning %s: %w", dirs[0], err)
		}
		dirs = dirs[1:]
	}
	return nil
}

func hashTree(root string) (map[string]string, error) {
	files := map[string]string{}
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == stateFile {
			return nil
		}
		h, err := hashFile(p)
		files[filepath.ToSlash(rel)] = h
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return files, nil
}

func hashFile(p string) (string, error) {
	f, err := safeio.Open(p) // a damaged checkpoint may hold a FIFO or a link to a device
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// WriteJSON writes v as indented JSON to p atomically (temporary file + rename).
func WriteJSON(p string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(p, append(b, '\n'))
}

// writeAtomic writes data to p through a temporary file and a rename.

func syncDir(dir string) error {
	return filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}

// Paths lists the variables a store holds (after Load: the checkpoint's).
func Paths(store *model.Store) map[string]bool {
	out := map[string]bool{}
	for v := range store.IterVariables() {
		out[v.Path()] = true
	}
	return out
}

// CheckNoNewVariables fails when building a model on a loaded checkpoint created variables the
// checkpoint does not have (they would silently start from their initialisation): the recipe
// in use describes a different model from the one that was trained. loaded is Paths after Load.
func CheckNoNewVariables(dir string, store *model.Store, loaded map[string]bool) error {
	var missing []string
	for v := range store.IterVariables() {
		if !loaded[v.Path()] {
			missing = append(missing, v.Path())
		}
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(missing)
	more := ""
	if len(missing) > 3 {
		more = fmt.Sprintf(" and %d more", len(missing)-3)
		missing = missing[:3]
	}
	return fmt.Errorf("checkpoint %s has no %s%s: the recipe describes a different model from the one trained (check the model: section and --set overrides)",
		dir, strings.Join(missing, ", "), more)
}

// isModelDir reports whether dir is a model directory of another framework (a config.json beside
// model.safetensors) rather than a run: it is its own checkpoint.
func isModelDir(dir string) bool {
	for _, f := range []string{"config.json", "model.safetensors"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.IsDir() {
			return false
		}
	}
	_, err := os.Stat(filepath.Join(dir, "checkpoints"))
	return err != nil
}
