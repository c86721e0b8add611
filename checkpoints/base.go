package checkpoints

// Adapter-only checkpoints: a fine-tune whose base is frozen (LoRA) stores only its trainable
// variables and their optimizer state, and base.json, a reference to where the frozen base comes
// from (the seed of its initialisation, the model.pretrained directory, the train.init_from
// checkpoint) with content checks. Loading rebuilds the base through the registered BaseBuilder
// and checks it against the digest of the base the run trained on, so the model loaded is
// bit-identical to the one in memory when the checkpoint was written.

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/internal/safeio"
)

// BaseFile is the base reference of an adapter-only checkpoint.
const BaseFile = "base.json"

// FileSum is the size and SHA-256 of a file.
type FileSum struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Base says where the frozen variables an adapter-only checkpoint leaves out come from, and how
// to recognise them.
type Base struct {
	// Seed is train.seed: the base's initialisation (and a random model.pretrained) is re-run from it.
	Seed int64 `json:"seed"`
	// Pretrained is model.pretrained as an absolute directory ("random": none), with the size and
	// SHA-256 of its weight files.
	Pretrained      string             `json:"pretrained,omitempty"`
	PretrainedFiles map[string]FileSum `json:"pretrained_files,omitempty"`
	// InitFrom is the train.init_from checkpoint directory (absolute), with its state.json's sum
	// (which holds the SHA-256 of each of its files).
	InitFrom      string   `json:"init_from,omitempty"`
	InitFromState *FileSum `json:"init_from_state,omitempty"`
	// Variables are the base's variable paths (not in this checkpoint), Digest the SHA-256 of their
	// paths, shapes and values (VariablesDigest).
	Variables []string `json:"variables"`
	Digest    string   `json:"digest"`
}

// BaseBuilder rebuilds the base variables of the adapter-only checkpoint in dir (with recipe.yaml
// and base.json) and returns their values by path.
type BaseBuilder func(dir string, base Base) (map[string]*tensors.Tensor, error)

var baseBuilder BaseBuilder

// SetBaseBuilder registers the function that rebuilds an adapter-only checkpoint's base (the
// tasks package, which knows how a recipe's model is built and initialised).
func SetBaseBuilder(b BaseBuilder) { baseBuilder = b }

// SumFile returns the size and SHA-256 of the file p.
func SumFile(p string) (FileSum, error) {
	st, err := os.Stat(p)
	if err != nil {
		return FileSum{}, err
	}
	h, err := hashFile(p)
	return FileSum{Size: st.Size(), SHA256: h}, err
}

// SumWeightFiles sums the files of a model directory that hold or index its weights
// (*.safetensors, model.safetensors.index.json) and its config.json.
func SumWeightFiles(dir string) (map[string]FileSum, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]FileSum{}
	for _, e := range entries {
		n := e.Name()
		// A Hub cache snapshot's files are symlinks into its blobs: stat follows them.
		if st, err := os.Stat(filepath.Join(dir, n)); err != nil || !st.Mode().IsRegular() || !(strings.HasSuffix(n, ".safetensors") || n == "model.safetensors.index.json" || n == "config.json") {
			continue
		}
		s, err := SumFile(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		out[n] = s
	}
	return out, nil
}

// CheckFiles compares the files of dir with sums: a missing or changed file is an error naming it
// and what was expected. what names dir's role ("model.pretrained").
func CheckFiles(what, dir string, sums map[string]FileSum) error {
	for _, n := range slices.Sorted(maps.Keys(sums)) {
		want := sums[n]
		p := filepath.Join(dir, n)
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("%s %s: %s is missing (expected %d bytes, sha256 %s)", what, dir, n, want.Size, want.SHA256)
		}
		if st.Size() != want.Size {
			return fmt.Errorf("%s %s: %s has %d bytes, expected %d (sha256 %s): not the base this checkpoint was trained on", what, dir, n, st.Size(), want.Size, want.SHA256)
		}
		if got, err := hashFile(p); err != nil || got != want.SHA256 {
			return fmt.Errorf("%s %s: %s has sha256 %s, expected %s: not the base this checkpoint was trained on", what, dir, n, got, want.SHA256)
		}
	}
	return nil
}

// VariablesDigest is the SHA-256 over the named tensors in path order: each path, dtype, shape and
// the raw bytes.
func VariablesDigest(vars map[string]*tensors.Tensor) (string, error) {
	h := sha256.New()
	for _, p := range slices.Sorted(maps.Keys(vars)) {
		t := vars[p]
		fmt.Fprintf(h, "%s\x00%s\x00%v\x00", p, t.DType(), t.Shape().Dimensions)
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(t.Shape().ByteSize()))
		h.Write(n[:])
		if t.Shape().Size() == 0 {
			continue
		}
		if err := t.ConstBytes(func(b []byte) { h.Write(b) }); err != nil {
			return "", fmt.Errorf("variable %s: %w", p, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ReadBase returns the base reference of the checkpoint in dir, or nil for a full checkpoint.
func ReadBase(dir string) (*Base, error) {
	b, err := safeio.ReadFile(filepath.Join(dir, BaseFile), safeio.JSONLimit)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	var base Base
	if err := json.Unmarshal(b, &base); err != nil {
		return nil, fmt.Errorf("checkpoint %s: corrupt %s: %w", dir, BaseFile, err)
	}
	return &base, nil
}

// loadBase rebuilds the base of the adapter-only checkpoint in dir into store.
func loadBase(dir string, base *Base, store *model.Store) error {
	if baseBuilder == nil {
		return fmt.Errorf("checkpoint %s holds only the trained variables (%s): this program cannot rebuild its base", dir, BaseFile)
	}
	vals, err := baseBuilder(dir, *base)
	if err != nil {
		return fmt.Errorf("checkpoint %s holds only the trained variables; rebuilding its base: %w", dir, err)
	}
	want := map[string]*tensors.Tensor{}
	for _, p := range base.Variables {
		t, ok := vals[p]
		if !ok {
			return fmt.Errorf("checkpoint %s: the rebuilt base has no variable %s", dir, p)
		}
		want[p] = t
	}
	digest, err := VariablesDigest(want)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	if digest != base.Digest {
		return fmt.Errorf("checkpoint %s: the rebuilt base (%s) differs from the one trained (digest %s, expected %s): its source, the recipe or reel's initialisation changed",
			dir, base.describe(), digest[:12], base.Digest[:min(12, len(base.Digest))])
	}
	for _, p := range base.Variables {
		if v := store.GetVariable(p); v != nil {
			if err := v.SetValue(want[p]); err != nil {
				return fmt.Errorf("checkpoint %s: base variable %s: %w", dir, p, err)
			}
		} else if _, err := store.CreateVariable(p, want[p]); err != nil {
			return fmt.Errorf("checkpoint %s: base variable %s: %w", dir, p, err)
		}
	}
	return nil
}

// describe names the base's sources.
func (b *Base) describe() string {
	parts := []string{fmt.Sprintf("seed %d", b.Seed)}
	if b.Pretrained != "" {
		parts = append(parts, "model.pretrained "+b.Pretrained)
	}
	if b.InitFrom != "" {
		parts = append(parts, "train.init_from "+b.InitFrom)
	}
	return strings.Join(parts, ", ")
}
