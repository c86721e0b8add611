package recipes

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteList prints the embedded recipes as 'reel recipes list' does: one a line, the name and
// the description in aligned columns.
func WriteList(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, in := range List() {
		fmt.Fprintf(tw, "%s\t%s\n", in.Name, in.Description)
	}
	return tw.Flush()
}
