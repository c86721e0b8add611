package main

// The hostile-input corpus of the CLI: damaged, oversized, special and careless inputs given to
// the commands as a user (or an attacker) would. Each case asserts one error line naming the
// file or field, a non-zero exit status, no crash trace, bounded time and memory (the binary
// runs under an address-space limit and a timeout), and that nothing already saved is lost (the
// old run or dataset is compared byte for byte after the failed command).

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"image"
	"image/png"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hostileMemKiB bounds the address space of a hostile run: far above what the tiny inputs
// need, far below what an allocation from a hostile declared size would take.
const hostileMemKiB = 4 << 20

// hostile runs reel under a 2-minute timeout and the address-space limit, and checks that it
// failed with no crash trace. It returns the result.
func hostile(t *testing.T, dir string, args ...string) result {
	t.Helper()
	return hostileEnv(t, dir, nil, args...)
}

// hostileEnv is hostile with extra environment variables.
func hostileEnv(t *testing.T, dir string, extra []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	script := "ulimit -v " + strconv.Itoa(hostileMemKiB) + ` && exec "$0" "$@"`
	cmd := exec.CommandContext(ctx, "sh", append([]string{"-c", script, reelBin}, args...)...)
	cmd.Dir = dir
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMLX_BACKEND=") && !strings.HasPrefix(kv, "REEL_PJRT_PLUGIN=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(append(env, "GOMLX_BACKEND=go"), extra...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("reel %s: %v", strings.Join(args, " "), err)
	}
	require.NotEqualf(t, context.DeadlineExceeded, ctx.Err(), "reel %s did not finish in time", strings.Join(args, " "))
	requireNoCrash(t, r)
	require.NotContainsf(t, r.stderr, "out of memory", "reel %s", strings.Join(args, " "))
	return r
}

// hostileError runs a hostile case expected to fail with exactly one stderr line; it checks the
// line holds every want and returns it.
func hostileError(t *testing.T, dir string, args []string, want ...string) string {
	t.Helper()
	msg := requireUserError(t, hostile(t, dir, args...), -1)
	for _, w := range want {
		require.Containsf(t, msg, w, "reel %s", strings.Join(args, " "))
	}
	return msg
}

// snapshot reads every regular file under dir.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = string(b)
		return err
	}))
	require.NotEmpty(t, out)
	return out
}

// requireIntact checks that dir holds exactly the files of before, byte for byte.
func requireIntact(t *testing.T, before map[string]string, dir string) {
	t.Helper()
	after := snapshot(t, dir)
	for rel, b := range before {
		a, ok := after[rel]
		require.Truef(t, ok, "%s was deleted", rel)
		require.Truef(t, a == b, "%s changed", rel)
	}
	for rel := range after {
		_, ok := before[rel]
		require.Truef(t, ok, "%s appeared", rel)
	}
}

// TestHostileTrainOverwrite: `reel train --overwrite` with input that fails (a missing dataset,
// a missing init_from found only once the run has started, a bad recipe value) leaves the run
// already in --out byte for byte as it was; a successful --overwrite replaces it.
func TestHostileTrainOverwrite(t *testing.T) {
	dir := t.TempDir()
	small := append([]string{"--set", "train.steps=2", "--set", "train.batch_size=8"}, tiny...)
	run := filepath.Join(dir, "run")
	requireOK(t, reel(t, dir, append([]string{"train", "counting-pretrain-tiny", "--out", run}, small...)...))
	before := snapshot(t, run)
	require.Contains(t, before, "metrics.jsonl")
	require.Contains(t, before, "recipe.yaml")

	// Fails inside the run, after the old outputs were moved aside.
	r := hostile(t, dir, append([]string{"train", "counting-pretrain-tiny", "--out", run, "--overwrite",
		"--set", "train.init_from=" + filepath.Join(dir, "nope")}, small...)...)
	msg := requireLastLineError(t, r, 1)
	require.Contains(t, msg, "train.init_from")
	requireIntact(t, before, run)

	// Fails before the run: a LeRobot dataset that is not there.
	hostileError(t, dir, []string{"train", "pi0-tiny", "--out", run, "--overwrite",
		"--set", "data.source=lerobot", "--set", "data.dir=" + filepath.Join(dir, "no-dataset")}, "no-dataset")
	requireIntact(t, before, run)

	// Without --overwrite: refused, and the run's recipe.yaml is not rewritten.
	r = hostile(t, dir, append([]string{"train", "counting-pretrain-tiny", "--out", run, "--set", "train.lr=0.5"}, small...)...)
	require.Contains(t, requireLastLineError(t, r, 1), "--resume")
	requireIntact(t, before, run)

	// A successful --overwrite replaces the run and leaves nothing hidden behind.
	requireOK(t, reel(t, dir, append([]string{"train", "counting-pretrain-tiny", "--out", run, "--overwrite", "--set", "train.lr=0.5"}, small...)...))
	after := snapshot(t, run)
	require.Contains(t, after["recipe.yaml"], "0.5")
	for rel := range after {
		require.Falsef(t, strings.HasPrefix(rel, ".overwritten"), "%s left behind", rel)
	}
}

// TestHostileMergeOverwrite: `reel data merge BAD... --out EXISTING --overwrite` with a damaged
// source leaves EXISTING byte for byte as it was.
func TestHostileMergeOverwrite(t *testing.T) {
	if testing.Short() {
		t.Skip("generates datasets")
	}
	dir := t.TempDir()
	sets := []string{"--set", "data.max_steps=6"}
	requireOK(t, reel(t, dir, append([]string{"data", "gen-sim", "--episodes", "2", "--out", "s0", "--shard", "0/2"}, sets...)...))
	requireOK(t, reel(t, dir, append([]string{"data", "gen-sim", "--episodes", "2", "--out", "s1", "--shard", "1/2"}, sets...)...))
	requireOK(t, reel(t, dir, "data", "merge", "s0", "s1", "--out", "merged"))
	before := snapshot(t, filepath.Join(dir, "merged"))

	// A copy of s1 whose data parquet file is damaged in the middle.
	bad := filepath.Join(dir, "bad")
	require.NoError(t, os.CopyFS(bad, os.DirFS(filepath.Join(dir, "s1"))))
	parquets, err := filepath.Glob(filepath.Join(bad, "data", "*", "*.parquet"))
	require.NoError(t, err)
	require.NotEmpty(t, parquets)
	raw, err := os.ReadFile(parquets[0])
	require.NoError(t, err)
	for i := len(raw) / 3; i < 2*len(raw)/3; i++ {
		raw[i] = 0xff
	}
	require.NoError(t, os.WriteFile(parquets[0], raw, 0o644))

	r := hostile(t, dir, "data", "merge", "s0", "bad", "--out", "merged", "--overwrite")
	require.NotZero(t, r.code)
	requireIntact(t, before, filepath.Join(dir, "merged"))
	// A source that is not a dataset at all.
	hostileError(t, dir, []string{"data", "merge", "s0", "nothing", "--out", "merged", "--overwrite"}, "nothing")
	requireIntact(t, before, filepath.Join(dir, "merged"))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		require.Falsef(t, strings.HasPrefix(e.Name(), ".merged."), "%s left behind", e.Name())
	}
	// A good merge over it succeeds.
	requireOK(t, reel(t, dir, "data", "merge", "s0", "s1", "--out", "merged", "--overwrite"))
	requireIntact(t, before, filepath.Join(dir, "merged"))

	// gen-sim --overwrite that fails while writing (no ffmpeg on PATH for the videos) leaves the
	// dataset there as it was; one that succeeds replaces it and leaves nothing beside it.
	s0 := snapshot(t, filepath.Join(dir, "s0"))
	noBin := filepath.Join(dir, "nobin")
	require.NoError(t, os.Mkdir(noBin, 0o755))
	hostileEnvError := hostileEnv(t, dir, []string{"PATH=" + noBin},
		append([]string{"data", "gen-sim", "--episodes", "2", "--out", "s0", "--shard", "0/2", "--overwrite"}, sets...)...)
	require.Contains(t, requireUserError(t, hostileEnvError, -1), "lerobot dataset s0: ")
	requireIntact(t, s0, filepath.Join(dir, "s0"))
	requireOK(t, reel(t, dir, append([]string{"data", "gen-sim", "--episodes", "3", "--out", "s0", "--overwrite"}, sets...)...))
	entries, err = os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		require.Falsef(t, strings.HasPrefix(e.Name(), "."), "%s left behind", e.Name())
	}
}

// copyFixture copies an hf/testdata model directory into dir/name.
func copyFixture(t *testing.T, dir, fixture, name string) string {
	t.Helper()
	dst := filepath.Join(dir, name)
	require.NoError(t, os.CopyFS(dst, os.DirFS(filepath.Join("..", "..", "hf", "testdata", fixture))))
	return dst
}

// setConfig rewrites one top-level field of dir/config.json (raw JSON value).
func setConfig(t *testing.T, dir, key, raw string) {
	t.Helper()
	p := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	m := map[string]any{}
	require.NoError(t, json.Unmarshal(b, &m))
	var v any
	require.NoError(t, json.Unmarshal([]byte(raw), &v))
	m[key] = v
	b, err = json.Marshal(m)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, b, 0o644))
}

// npy builds a version-1 .npy file: the header as given, then body.
func npy(header string, body []byte) []byte {
	h := header
	for (10+len(h)+1)%64 != 0 {
		h += " "
	}
	h += "\n"
	out := append([]byte("\x93NUMPY\x01\x00"), byte(len(h)), byte(len(h)>>8))
	return append(append(out, h...), body...)
}

// TestHostileHF: damaged, oversized and special model directories and inputs for `reel hf`.
func TestHostileHF(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, edit func(d string)) string {
		d := copyFixture(t, dir, "llama", name)
		if edit != nil {
			edit(d)
		}
		return d
	}
	special := func(d, file string, fifo bool) {
		p := filepath.Join(d, file)
		require.NoError(t, os.Remove(p))
		if fifo {
			require.NoError(t, syscall.Mkfifo(p, 0o644))
		} else {
			require.NoError(t, os.Symlink("/dev/zero", p))
		}
	}
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"config.json → /dev/zero", []string{"hf", "inspect", mk("zero", func(d string) { special(d, "config.json", false) })},
			[]string{"config.json", "character device"}},
		{"config.json FIFO", []string{"hf", "run", mk("fifo", func(d string) { special(d, "config.json", true) }), "--tokens", "1"},
			[]string{"config.json", "named pipe"}},
		{"hidden_size 1e9", []string{"hf", "inspect", mk("h1e9", func(d string) { setConfig(t, d, "hidden_size", "1e9") })},
			[]string{"config.json", "field hidden_size", "1e+09"}},
		{"hidden_size 1e300", []string{"hf", "inspect", mk("h1e300", func(d string) { setConfig(t, d, "hidden_size", "1e300") })},
			[]string{"config.json", "field hidden_size", "1e+300"}},
		{"num_hidden_layers 1e9", []string{"hf", "inspect", mk("l1e9", func(d string) { setConfig(t, d, "num_hidden_layers", "1e9") })},
			[]string{"config.json", "field num_hidden_layers"}},
		{"vocab_size 2^33", []string{"hf", "run", mk("v", func(d string) { setConfig(t, d, "vocab_size", "8589934592") }), "--tokens", "1"},
			[]string{"config.json", "field vocab_size"}},
		{"layers inconsistent with the weights", []string{"hf", "inspect", mk("l900", func(d string) { setConfig(t, d, "num_hidden_layers", "900") })},
			[]string{"config.json describes a LlamaForCausalLM of at least"}},
		{"weights file is a directory", []string{"hf", "inspect", mk("wdir", func(d string) {
			require.NoError(t, os.Remove(filepath.Join(d, "model.safetensors")))
			require.NoError(t, os.Mkdir(filepath.Join(d, "model.safetensors"), 0o755))
		})}, []string{"model.safetensors", "is a directory"}},
		{"NaN weights", []string{"hf", "run", mk("nanw", func(d string) {
			p := filepath.Join(d, "model.safetensors")
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			start := 8 + int(binary.LittleEndian.Uint64(b[:8]))
			for i := start; i+4 <= len(b); i += 4 { // every float32 NaN
				binary.LittleEndian.PutUint32(b[i:], math.Float32bits(float32(math.NaN())))
			}
			require.NoError(t, os.WriteFile(p, b, 0o644))
		}), "--tokens", "1,2"}, []string{"NaN in logits"}},
		{"--tokens -1", []string{"hf", "run", mk("neg", nil), "--tokens", "-1"}, []string{"--tokens", "id -1"}},
		{"--decode -1", []string{"hf", "tokenize", absPath(t, "../../text/testdata/llama3.json"), "--decode", "1,-1"}, []string{"--decode", "id -1"}},
		{"--tokens past the vocabulary", []string{"hf", "run", mk("big", nil), "--tokens", "1,256"}, []string{"--tokens", "id 256"}},
	}
	// A self-consistent sparse checkpoint declaring 256 GiB of tensors.
	sparse := mk("sparse", func(d string) {
		header := `{"model.embed_tokens.weight":{"dtype":"F32","shape":[16777216,4096],"data_offsets":[0,274877906944]}}`
		for len(header)%8 != 0 {
			header += " "
		}
		f, err := os.Create(filepath.Join(d, "model.safetensors"))
		require.NoError(t, err)
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(header)))
		_, err = f.Write(append(n[:], header...))
		require.NoError(t, err)
		require.NoError(t, f.Truncate(int64(8+len(header))+274877906944))
		require.NoError(t, f.Close())
	})
	cases = append(cases, struct {
		name string
		args []string
		want []string
	}{"sparse 256 GiB checkpoint", []string{"hf", "run", sparse, "--tokens", "1"}, []string{"256.0 GiB", "memory"}})

	// .npy files: a 3 KB file declaring 10^10 floats, NaN pixels.
	bigNPY := filepath.Join(dir, "big.npy")
	require.NoError(t, os.WriteFile(bigNPY, npy("{'descr': '<f4', 'fortran_order': False, 'shape': (10000000000,), }", make([]byte, 3000)), 0o644))
	nanNPY := filepath.Join(dir, "nan.npy")
	body := make([]byte, 4*3*8*8)
	binary.LittleEndian.PutUint32(body[40:], math.Float32bits(float32(math.NaN())))
	require.NoError(t, os.WriteFile(nanNPY, npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 8, 8), }", body), 0o644))
	llava := copyFixture(t, dir, "llava-clip-llama", "llava")
	bomb := filepath.Join(dir, "bomb.png")
	require.NoError(t, os.WriteFile(bomb, bombPNG(t, 25000, 25000), 0o644))
	cases = append(cases, []struct {
		name string
		args []string
		want []string
	}{
		{"npy declaring 10^10 floats", []string{"hf", "run", llava, "--tokens", "1", "--pixels", bigNPY}, []string{"big.npy", "declares more values"}},
		{"npy with NaN", []string{"hf", "run", llava, "--tokens", "1", "--pixels", nanNPY}, []string{"nan.npy", "NaN"}},
		{"--image bomb", []string{"hf", "run", llava, "--tokens", "1", "--image", bomb}, []string{"bomb.png", "25000×25000", "4096×4096"}},
	}...)

	// Tokenizers.
	zeroTok := filepath.Join(dir, "tokenizer.json")
	require.NoError(t, os.Symlink("/dev/zero", zeroTok))
	cases = append(cases, struct {
		name string
		args []string
		want []string
	}{"tokenizer.json → /dev/zero", []string{"hf", "tokenize", zeroTok, "--text", "hi"}, []string{"tokenizer.json", "character device"}})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { hostileError(t, dir, c.args, c.want...) })
	}
}

// TestHostileRegexTimeout: a tokenizer whose Split regex backtracks catastrophically exits with
// one line naming the pattern instead of printing ids (after one 2-second timeout).
func TestHostileRegexTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the regex timeout")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "tokenizer.json")
	require.NoError(t, os.WriteFile(p, []byte(`{"model": {"type": "WordLevel", "vocab": {"a": 0, "[UNK]": 1}, "unk_token": "[UNK]"},
		"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(a|aa)+$"}, "behavior": "Isolated"}}`), 0o644))
	hostileError(t, dir, []string{"hf", "tokenize", p, "--text", strings.Repeat("a", 60) + "b " + strings.Repeat("a", 60) + "b"},
		"tokenizer.json", `"(a|aa)+$"`, "catastrophic")
}

// TestHostileFiles: special files and damaged runs met by the other commands.
func TestHostileFiles(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) { t.Helper(); require.NoError(t, err) }
	must(syscall.Mkfifo(filepath.Join(dir, "base.yaml"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "r.yaml"), []byte("name: x\nbase: base.yaml\n"), 0o644))
	must(os.Symlink("/dev/zero", filepath.Join(dir, "zero.yaml")))
	must(os.MkdirAll(filepath.Join(dir, "ds", "meta"), 0o755))
	must(syscall.Mkfifo(filepath.Join(dir, "ds", "meta", "info.json"), 0o644))
	must(os.CopyFS(filepath.Join(dir, "fps"), os.DirFS(filepath.Join("..", "..", "lerobot", "testdata", "g1_v21"))))
	info := filepath.Join(dir, "fps", "meta", "info.json")
	raw, err := os.ReadFile(info)
	must(err)
	must(os.WriteFile(info, regexp.MustCompile(`"fps":\s*[0-9.]+`).ReplaceAll(raw, []byte(`"fps": 1e308`)), 0o644))
	must(os.WriteFile(filepath.Join(dir, "clip.mp4"), nil, 0o644))
	ck := filepath.Join(dir, "run", "checkpoints", "step-00000002")
	must(os.MkdirAll(ck, 0o755))
	must(os.WriteFile(filepath.Join(ck, "state.json"), []byte("garbage"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "run", "checkpoints", "LATEST"), []byte("step-00000002\n"), 0o644))
	ck2 := filepath.Join(dir, "run2", "checkpoints", "step-00000001")
	must(os.MkdirAll(filepath.Join(ck2, "model"), 0o755))
	must(os.WriteFile(filepath.Join(ck2, "state.json"), []byte(`{"step": 1, "files": {"model/x.bin": "00"}}`), 0o644))
	must(syscall.Mkfifo(filepath.Join(ck2, "model", "x.bin"), 0o644))
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"checkpoint file FIFO", []string{"export", "run2", "--format", "safetensors", "--out", "y.safetensors"}, []string{"model/x.bin", "named pipe"}},
		{"recipe base FIFO", []string{"recipes", "validate", "r.yaml"}, []string{"r.yaml:2", "base.yaml", "named pipe"}},
		{"recipe → /dev/zero", []string{"train", "zero.yaml"}, []string{"zero.yaml", "character device"}},
		{"info.json FIFO", []string{"data", "stats", "ds"}, []string{"info.json", "named pipe"}},
		{"fps 1e308", []string{"data", "stats", "fps"}, []string{"info.json", "fps", "1e+308"}},
		{"export of a damaged run", []string{"export", "run", "--format", "safetensors", "--out", "x.safetensors"}, []string{"step-00000002", "state.json"}},
		{"tokenize with a damaged run", []string{"tokenize", "run", "clip.mp4"}, []string{"step-00000002", "state.json"}},
	} {
		t.Run(c.name, func(t *testing.T) { hostileError(t, dir, c.args, c.want...) })
	}
	_, err = os.Stat(filepath.Join(dir, "x.safetensors"))
	require.True(t, os.IsNotExist(err), "a failed export writes nothing")
}

// bombPNG is a valid 1×1 PNG whose header declares w×h (with a correct CRC).
func bombPNG(t *testing.T, w, h uint32) []byte {
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, image.NewNRGBA(image.Rect(0, 0, 1, 1))))
	b := buf.Bytes()
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

func absPath(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	require.NoError(t, err)
	return a
}
