package hf

import (
	"fmt"
	"io"
	"strings"
)

// WriteText prints the summary as `reel hf inspect` does; mapping lists every tensor's mapping.
func (s Summary) WriteText(w io.Writer, mapping bool) {
	fmt.Fprintf(w, "%s (%s, model_type %s)\n", s.Arch, s.Kind, s.ModelType)
	fmt.Fprintf(w, "  directory   %s\n  files       %s\n  key layout  %s\n", s.Dir, strings.Join(s.Files, ", "), s.Layout)
	var dts []string
	for dt, n := range s.DTypes {
		dts = append(dts, fmt.Sprintf("%s ×%d", dt, n))
	}
	fmt.Fprintf(w, "  stored as   %s (config: %s); reel computes in f32\n", strings.Join(dts, ", "), orNone(s.ConfigDType))
	fmt.Fprintf(w, "  parameters  %s\n", millions(s.Params))
	for _, t := range s.Towers {
		fmt.Fprintf(w, "    %-15s %-10s %4d tensors  %s*\n", t.Name, millions(t.Params), t.Tensors, t.Prefix)
	}
	fmt.Fprintf(w, "  tokenizer   %s\n", s.Tokenizer)
	if s.ImageTokens > 0 {
		fmt.Fprintf(w, "  image       %d tokens per image at placeholder id %d\n", s.ImageTokens, s.ImageToken)
	}
	if s.Image != "" {
		fmt.Fprintf(w, "  pixels      %s\n", s.Image)
	}
	if len(s.Ignored) > 0 {
		fmt.Fprintf(w, "  ignored     %s\n", strings.Join(s.Ignored, ", "))
	}
	if mapping {
		fmt.Fprintln(w, "  mapping (checkpoint tensor → reel variable):")
		for _, p := range s.Mapping {
			tr := ""
			if p.Transform != "" {
				tr = " (" + p.Transform + ")"
			}
			fmt.Fprintf(w, "    %s %v %s → %s %v%s\n", p.Source, p.HFShape, p.DType, p.Var, p.Shape, tr)
		}
	} else {
		fmt.Fprintf(w, "  mapping     %d tensors → reel variables (--mapping lists them)\n", len(s.Mapping))
	}
}

func orNone(s string) string {
	if s == "" {
		return "not set"
	}
	return s
}

func millions(n int) string {
	if n >= 1e6 {
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	}
	return fmt.Sprintf("%.1fK", float64(n)/1e3)
}
