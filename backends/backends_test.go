package backends

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/stretchr/testify/require"
)

// clearEnv unsets every variable Select reads (restored after the test by t.Setenv).
func clearEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{compute.ConfigEnvVar, PluginEnv, "PJRT_PLUGIN_LIBRARY_PATH"} {
		t.Setenv(k, "")
		require.NoError(t, os.Unsetenv(k))
	}
}

// selectNoPanic calls Select and fails the test (instead of crashing) if it panics.
func selectNoPanic(t *testing.T, flag string) (compute.Backend, Info, error) {
	t.Helper()
	var (
		b    compute.Backend
		info Info
		err  error
	)
	require.NotPanics(t, func() { b, info, err = Select(flag) }, "Select(%q) panicked", flag)
	if b != nil {
		t.Cleanup(b.Finalize)
	}
	return b, info, err
}

func TestSelectAutoGo(t *testing.T) {
	clearEnv(t)
	if FindCUDAPlugin() != "" && hasNvidiaDevice() {
		t.Skip("a CUDA plugin and a GPU are installed: auto-selection may pick XLA")
	}
	b, info, err := selectNoPanic(t, "")
	require.NoError(t, err)
	require.NotNil(t, b)
	require.Equal(t, "go", info.Name)
	require.Equal(t, tuneGo("go"), info.Config)
	require.Contains(t, info.Reason, "auto")
	require.GreaterOrEqual(t, info.Devices, 1)
	require.Equal(t, info.Devices, b.NumDevices())
	s := info.String()
	require.Contains(t, s, "backend go")
	require.Equal(t, !SIMD, strings.Contains(s, "GOEXPERIMENT=simd"), "the SIMD warning must appear exactly when built without SIMD")
}

func TestTuneGo(t *testing.T) {
	n := min(max(runtime.GOMAXPROCS(0), 2), 8)
	require.Equal(t, fmt.Sprintf("go:num_executors=%d", n), tuneGo("go"))
	require.Equal(t, fmt.Sprintf("go:parallelism=-1,num_executors=%d", n), tuneGo("go:parallelism=-1"))
	require.Equal(t, "go:num_executors=5", tuneGo("go:num_executors=5"), "a user's setting is kept")
	require.Equal(t, "go:ops_sequential,num_executors=1", tuneGo("go:ops_sequential,num_executors=1"))

	// An explicit configuration is tuned too, and the backend accepts the result.
	clearEnv(t)
	b, info, err := selectNoPanic(t, "go:ops_parallel")
	require.NoError(t, err)
	require.NotNil(t, b)
	require.Equal(t, fmt.Sprintf("go:ops_parallel,num_executors=%d", n), info.Config)
	require.Contains(t, info.String(), "["+info.Config+"]")

	// A bad option is reported as the user wrote it, without reel's addition.
	_, _, err = selectNoPanic(t, "go:nope")
	require.Error(t, err)
	require.Contains(t, err.Error(), `"go:nope"`)
	require.NotContains(t, err.Error(), "go:nope,")
	require.NotContains(t, err.Error(), "\n")
}

func TestSelectUnknown(t *testing.T) {
	clearEnv(t)
	b, _, err := selectNoPanic(t, "nope")
	require.Error(t, err)
	require.Nil(t, b)
	require.Contains(t, err.Error(), `"nope"`)
	require.Contains(t, err.Error(), "--backend flag")
	require.Contains(t, err.Error(), "go", "the error should list the available backends")
	require.NotContains(t, err.Error(), "\n")
}

func TestSelectEnv(t *testing.T) {
	clearEnv(t)
	t.Setenv(compute.ConfigEnvVar, "go")
	b, info, err := selectNoPanic(t, "")
	require.NoError(t, err)
	require.NotNil(t, b)
	require.Equal(t, "go", info.Name)
	require.Equal(t, "$"+compute.ConfigEnvVar, info.Reason)

	t.Setenv(compute.ConfigEnvVar, "nope")
	_, _, err = selectNoPanic(t, "")
	require.Error(t, err)
	require.Contains(t, err.Error(), "$"+compute.ConfigEnvVar)

	// The flag wins over the environment.
	b, info, err = selectNoPanic(t, "go")
	require.NoError(t, err)
	require.NotNil(t, b)
	require.Equal(t, "--backend flag", info.Reason)
}

func TestSelectBadPlugin(t *testing.T) {
	clearEnv(t)
	t.Setenv(PluginEnv, "/nonexistent.so")
	require.Equal(t, "/nonexistent.so", FindCUDAPlugin(), "$%s is taken as is", PluginEnv)
	b, info, err := selectNoPanic(t, "")
	// Actual behaviour: the plugin is an automatic choice, so its failure to load falls back to the
	// Go backend (no error), and the reason says why.
	require.NoError(t, err)
	require.NotNil(t, b)
	require.Equal(t, "go", info.Name)
	require.Contains(t, info.Reason, "auto: CUDA plugin failed")
	require.NotContains(t, info.Reason, "\n")
}

func TestSelectExplicitBadPlugin(t *testing.T) {
	clearEnv(t)
	// An explicit XLA plugin that does not exist is an error, never a panic nor a fallback.
	b, _, err := selectNoPanic(t, "xla:/nonexistent.so")
	require.Error(t, err)
	require.Nil(t, b)
	require.Contains(t, err.Error(), "/nonexistent.so")
	require.NotContains(t, err.Error(), "\n")
}

func TestSelectNoGPUWithPluginOnPath(t *testing.T) {
	clearEnv(t)
	if hasNvidiaDevice() {
		t.Skip("a GPU is present")
	}
	// A plugin found on PJRT_PLUGIN_LIBRARY_PATH (not forced by $REEL_PJRT_PLUGIN) without a GPU: Go.
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(dir+"/pjrt_c_api_cuda_fake.so", []byte("not a library"), 0o644))
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", dir)
	b, info, err := selectNoPanic(t, "")
	require.NoError(t, err)
	require.NotNil(t, b)
	require.Equal(t, "go", info.Name)
	require.Contains(t, info.Reason, "no GPU")
}
