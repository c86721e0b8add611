package tasks

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteMetricsTable prints an exevrm evaluation (metrics "SET/NAME" and "SET/baseline_NAME") as a
// table: each metric of the reward model beside the frame-difference baseline's (`reel eval`
// prints it through evaluate.MetricsTable).
func (t *ExeVRM) WriteMetricsTable(w io.Writer, metrics map[string]float64) {
	rows := map[string][2]float64{}
	var names []string
	for k, v := range metrics {
		set, name, ok := strings.Cut(k, "/")
		if !ok || set != "reward" {
			continue
		}
		base := strings.HasPrefix(name, "baseline_")
		name = strings.TrimPrefix(name, "baseline_")
		r, seen := rows[name]
		if !seen {
			names = append(names, name)
			r = [2]float64{-1, -1}
		}
		if base {
			r[1] = v
		} else {
			r[0] = v
		}
		rows[name] = r
	}
	order := map[string]int{"accuracy": 0, "precision": 1, "recall": 2, "f1": 3, "accuracy_kind_adversarial": 4, "attribution_error": 5}
	sort.Slice(names, func(a, b int) bool {
		oa, okA := order[names[a]]
		ob, okB := order[names[b]]
		switch {
		case okA && okB:
			return oa < ob
		case okA != okB:
			return okA
		}
		return names[a] < names[b]
	})
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "metric\tExeVRM\tframe-diff baseline\t")
	cell := func(v float64) string {
		if v < 0 {
			return "-"
		}
		return fmt.Sprintf("%.3f", v)
	}
	for _, n := range names {
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", n, cell(rows[n][0]), cell(rows[n][1]))
	}
	_ = tw.Flush()
}
