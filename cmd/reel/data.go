package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/reelml/reel/data"
)

const dataUsage = `Usage: reel data audit FILE.jsonl [--json]

Audits caption / QA text for reporting bias: the fraction of texts that
mention counts, spatial relations, temporal order and negation. FILE is JSONL
with one object per line; its "caption", "text", "question" and "answer"
fields and its "conversations" / "messages" turns are audited as one text.
`

func cmdData(args []string) error {
	if len(args) == 0 {
		return &exitError{2, errors.New("data: expected a subcommand: audit")}
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, dataUsage)
		return &exitError{0, errors.New("help requested")}
	}
	if args[0] != "audit" {
		return &exitError{2, fmt.Errorf("data: unknown subcommand %q (audit)", args[0])}
	}
	fs := newFlags("data audit")
	asJSON := fs.Bool("json", false, "print one JSON object instead of a table")
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, dataUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{2, fmt.Errorf("data audit: expected one JSONL file, got %d arguments", fs.NArg())}
	}
	path := fs.Arg(0)
	r, err := data.AuditJSONL(path)
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := json.Marshal(struct {
			File string `json:"file"`
			data.AuditReport
		}{path, r})
		if err != nil {
			return err
		}
		_, err = fmt.Printf("%s\n", b)
		return err
	}
	fmt.Printf("%s: %d texts\n", path, r.Texts)
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
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
