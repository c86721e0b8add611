package text

// postProcessor adds the special tokens of add_special_tokens=True around one sequence
// (huggingface/tokenizers tokenizers/src/processors: template.rs, bert.rs, roberta.rs, sequence.rs).
type postProcessor interface {
	process(ids []int) []int
	// bosEOS names the ids put before and after the sequence, for Special().
	bosEOS() (before, after []int)
}

// templatePost is TemplateProcessing's single-sequence template, resolved to ids.
type templatePost struct{ before, after []int }

func (t templatePost) process(ids []int) []int {
	out := make([]int, 0, len(t.before)+len(ids)+len(t.after))
	out = append(out, t.before...)
	out = append(out, ids...)
	return append(out, t.after...)
}

func (t templatePost) bosEOS() ([]int, []int) { return t.before, t.after }

type postSequence []postProcessor

func (s postSequence) process(ids []int) []int {
	for _, p := range s {
		ids = p.process(ids)
	}
	return ids
}

func (s postSequence) bosEOS() ([]int, []int) {
	var b, a []int
	for _, p := range s {
		pb, pa := p.bosEOS()
		b = append(append([]int(nil), pb...), b...)
		a = append(a, pa...)
	}
	return b, a
}
