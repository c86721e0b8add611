package data

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable prints the report of the JSONL file path as `reel data audit` does: the texts, then
// per category the texts that mention it, their fraction and the top words.
func (r AuditReport) WriteTable(out io.Writer, path string) error {
	fmt.Fprintf(out, "%s: %d texts\n", path, r.Texts)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CATEGORY\tTEXTS\tFRACTION\tTOP WORDS")
	for _, c := range r.Categories {
		top := make([]string, len(c.Top))
		for i, wc := range c.Top {
			top[i] = fmt.Sprintf("%s (%d)", wc.Word, wc.Count)
		}
		if len(top) == 0 {
			top = []string{"-"}
		}
		fmt.Fprintf(w, "%s\t%d\t%.1f%%\t%s\n", c.Name, c.Texts, 100*c.Fraction, strings.Join(top, ", "))
	}
	return w.Flush()
}
