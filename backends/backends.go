// Package backends chooses the compute backend a reel run uses, without ever touching the network.
//
// Order of precedence: the --backend flag, then $GOMLX_BACKEND, then auto-detection:
// XLA on CUDA when a PJRT CUDA plugin is found ($REEL_PJRT_PLUGIN, $PJRT_PLUGIN_LIBRARY_PATH or a
// known install location such as a JAX CUDA plugin in a Python environment), else GoMLX's pure Go
// backend ("go"), which uses SIMD when the binary was built with GOEXPERIMENT=simd.
package backends

import (
	"github.com/reelml/reel/internal/errline"

	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend" // registers "go"
	"github.com/gomlx/go-xla/compute/xla"  // registers "xla" (no auto-install: that package is never imported)
)

// PluginEnv names an explicit PJRT plugin (absolute path to the .so).
const PluginEnv = "REEL_PJRT_PLUGIN"

// Info describes the chosen backend.
type Info struct {
	Config  string // configuration passed to compute.NewWithConfig, e.g. "go" or "xla:/path/plugin.so"
	Name    string // backend name: "go" or "xla"
	Reason  string // why it was chosen
	Devices int
	Plugin  string // PJRT plugin path, for XLA
	Device  string // description of device 0
}

func (i Info) String() string {
	s := fmt.Sprintf("backend %s (%s), %d device(s)", i.Name, i.Reason, i.Devices)
	if i.Device != "" {
		s += ": " + i.Device
	}
	if i.Config != i.Name {
		s += " [" + i.Config + "]"
	}
	if i.Name == "go" && !SIMD {
		s += " — WARNING: built without GOEXPERIMENT=simd, the CPU path is ~30x slower; build with `make build`"
	}
	return s
}

func init() {
	// Never let go-xla reach for the internet.
	xla.EnableAutoInstall(false)
}

// knownPluginGlobs lists places where a PJRT CUDA plugin is commonly installed.
var knownPluginGlobs = []string{
	"/opt/torch/.venv/lib/python3*/site-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so",
	"/usr/local/lib/python3*/dist-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so",
	"/usr/lib/python3/dist-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so",
	"/usr/local/lib/go-xla/pjrt_c_api_cuda*.so",
	"$HOME/.local/lib/go-xla/pjrt_c_api_cuda*.so",
	"$HOME/.local/lib/python3*/site-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so",
}

// FindCUDAPlugin returns the path of a PJRT CUDA plugin, or "" if none is found.
func FindCUDAPlugin() string {
	if p := os.Getenv(PluginEnv); p != "" {
		return p
	}
	var globs []string
	for _, dir := range filepath.SplitList(os.Getenv("PJRT_PLUGIN_LIBRARY_PATH")) {
		if dir != "" {
			globs = append(globs, filepath.Join(dir, "pjrt_c_api_cuda*.so"), filepath.Join(dir, "xla_cuda_plugin.so"))
		}
	}
	globs = append(globs, knownPluginGlobs...)
	for _, g := range globs {
		matches, _ := filepath.Glob(os.ExpandEnv(g))
		sort.Strings(matches)
		for _, m := range matches {
			if st, err := os.Stat(m); err == nil && !st.IsDir() {
				return m
			}
		}
	}
	return ""
}

// hasNvidiaDevice is a cheap check that a GPU driver is present before loading a CUDA plugin.
func hasNvidiaDevice() bool {
	_, err := os.Stat("/dev/nvidia0")
	return err == nil
}

// Select returns a backend chosen from flag (may be empty), $GOMLX_BACKEND and auto-detection.
// It never panics and never downloads; an explicit choice that fails is an error, an automatic
// choice that fails falls back to the Go backend.
func Select(flag string) (compute.Backend, Info, error) {
	if flag != "" {
		return open(flag, "--backend flag")
	}
	if env, ok := os.LookupEnv(compute.ConfigEnvVar); ok && env != "" {
		return open(env, "$"+compute.ConfigEnvVar)
	}
	if p := FindCUDAPlugin(); p != "" {
		if !hasNvidiaDevice() && os.Getenv(PluginEnv) == "" {
			return openGo(fmt.Sprintf("auto: CUDA plugin %s found but no GPU", p))
		}
		b, info, err := open("xla:"+p, "auto: PJRT CUDA plugin found")
		if err == nil {
			return b, info, nil
		}
		return openGo(fmt.Sprintf("auto: CUDA plugin failed (%v)", errline.First(err)))
	}
	return openGo("auto: no PJRT CUDA plugin found")
}

func openGo(reason string) (compute.Backend, Info, error) {
	return open("go", reason)
}

// open creates the backend, converting panics from backend constructors into errors.
func open(config, reason string) (b compute.Backend, info Info, err error) {
	name, rest, _ := strings.Cut(config, ":")
	known := false
	for _, n := range compute.List() {
		known = known || n == name
	}
	if !known {
		avail := compute.List()
		sort.Strings(avail)
		return nil, info, fmt.Errorf("backend %q (from %s) is not available; use one of %s (e.g. \"go\", or \"xla:/abs/path/to/pjrt_plugin.so\")",
			config, reason, strings.Join(avail, ", "))
	}
	if (name == "xla" || name == "stablehlo" || name == "hlo" || name == "shlo") && rest != "" && !filepath.IsAbs(strings.Split(rest, ",")[0]) {
		// A plugin name such as "cuda" or "cpu": resolve it without auto-install.
		plugin := strings.Split(rest, ",")[0]
		if plugin == "cuda" {
			if p := FindCUDAPlugin(); p != "" {
				config = name + ":" + p + strings.TrimPrefix(rest, plugin)
			}
		}
	}
	asked := config // errors name the configuration as the user gave it
	if name == "go" {
		config = tuneGo(config)
	}
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("backend %q (from %s) failed to start: %s", asked, reason, errline.First(r))
		}
	}()
	b, err = compute.NewWithConfig(config)
	if err != nil {
		return nil, info, fmt.Errorf("backend %q (from %s) failed to start: %s", asked, reason, errline.First(err))
	}
	info = Info{Config: config, Name: name, Reason: reason, Devices: b.NumDevices()}
	if info.Devices > 0 {
		info.Device = b.DeviceDescription(0)
	}
	if info.Name == "xla" {
		info.Plugin = strings.Split(strings.TrimPrefix(config, name+":"), ",")[0]
	}
	return b, info, nil
}

// tuneGo adds num_executors to a Go backend configuration that does not set it.
//
// The Go backend runs a graph's independent ops on up to num_executors goroutines (default 8),
// and each executor holds one of its worker pool's 2 × GOMAXPROCS slots for the whole execution,
// idle or not. The large matrix products, transposes and element-wise ops parallelise through the
// same pool, so on a 2-core machine the 3 extra executors leave one slot to the product, which then
// runs on one core: a 1024³ f32 product ran at 103 GFLOP/s on a 2-core AVX-512 machine, where
// OpenBLAS reached 203 (and the Go backend too, with the pool unlimited). One executor per core,
// 2 to 8, keeps at least GOMAXPROCS slots for the ops themselves: the vit-tiny training step went
// from 0.54 to 0.40 s there, the STTS encoder's from 1.14 to 0.84 s. With 8 or more cores this is
// the backend's own default.
func tuneGo(config string) string {
	_, opts, _ := strings.Cut(config, ":")
	for _, o := range strings.Split(opts, ",") {
		if k, _, _ := strings.Cut(o, "="); k == "num_executors" {
			return config
		}
	}
	n := min(max(runtime.GOMAXPROCS(0), 2), 8)
	if opts == "" {
		return fmt.Sprintf("go:num_executors=%d", n)
	}
	return fmt.Sprintf("%s,num_executors=%d", config, n)
}

// Cores returns the number of CPU cores the Go runtime uses.
func Cores() int { return runtime.GOMAXPROCS(0) }

// GPUs lists the machine's NVIDIA GPUs as "name, total memory" lines read from nvidia-smi (nil
// when it is absent or fails): the PJRT plugin does not report device memory.
func GPUs() []string {
	out, err := exec.Command("nvidia-smi", "--query-gpu=index,name,memory.total", "--format=csv,noheader").Output()
	if err != nil {
		return nil
	}
	var gpus []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			gpus = append(gpus, l)
		}
	}
	return gpus
}
