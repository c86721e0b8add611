package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"

	"github.com/gomlx/compute"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/train"
)

func cmdDoctor(args []string) error {
	fs := newFlags("doctor")
	backend := fs.String("backend", "", "backend to try (default: $GOMLX_BACKEND, else auto)")
	if err := parse(fs, args); err != nil {
		return err
	}
	fmt.Printf("go:        %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if backends.SIMD {
		fmt.Println("simd:      yes (built with GOEXPERIMENT=simd)")
	} else {
		fmt.Println("simd:      NO — WARNING: built without GOEXPERIMENT=simd; the CPU backend is ~30x slower. Build with `make build`.")
	}
	fmt.Printf("cores:     %d (GOMAXPROCS %d)\n", runtime.NumCPU(), runtime.GOMAXPROCS(0))
	avail := compute.List()
	sort.Strings(avail)
	fmt.Printf("backends:  %s (compiled in)\n", strings.Join(avail, ", "))
	for _, g := range backends.GPUs() {
		fmt.Printf("gpu:       %s (nvidia-smi: index, name, memory)\n", g)
	}
	if p := backends.FindCUDAPlugin(); p != "" {
		fmt.Printf("plugin:    %s\n", p)
	} else {
		fmt.Printf("plugin:    none (set %s=/abs/path/pjrt_plugin.so to use XLA on a GPU)\n", backends.PluginEnv)
	}
	if v, ok := os.LookupEnv(compute.ConfigEnvVar); ok {
		fmt.Printf("env:       %s=%s\n", compute.ConfigEnvVar, v)
	}
	b, info, err := backends.Select(*backend)
	if err != nil {
		fmt.Printf("selected:  FAILED: %v\n", err)
		return nil
	}
	defer b.Finalize()
	fmt.Printf("selected:  %s\n", info)
	for i := 0; i < info.Devices; i++ {
		fmt.Printf("device %d:  %s\n", i, b.DeviceDescription(compute.DeviceNum(i)))
	}
	for _, prec := range []string{"f32", "bf16"} {
		p := train.PeakFLOPS(b, prec)
		fmt.Printf("%-11s%s (MFU denominator under train.precision: %s)\n", "peak "+prec+":", p.Source, prec)
	}
	return nil
}
