package recipes

import (
	"github.com/reelml/reel/internal/errline"
	"github.com/reelml/reel/internal/safeio"

	"bytes"
	"embed"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed *.yaml
var embedded embed.FS

// Info describes one embedded recipe.
type Info struct {
	Name        string // file name without .yaml; what Load accepts
	Description string // the recipe's description key
}

// List returns the embedded recipes sorted by name.
func List() []Info {
	entries, _ := embedded.ReadDir(".")
	var out []Info
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		info := Info{Name: strings.TrimSuffix(e.Name(), ".yaml")}
		if data, err := embedded.ReadFile(e.Name()); err == nil {
			var head struct {
				Description string `yaml:"description"`
			}
			if yaml.Unmarshal(data, &head) == nil {
				info.Description = head.Description
			}
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Source returns the raw YAML of the embedded recipe called name (as written, base: unresolved).
func Source(name string) ([]byte, error) {
	src, err := readEmbedded(name)
	if err != nil {
		return nil, err
	}
	return src.data, nil
}

func embeddedNames() []string {
	var names []string
	for _, in := range List() {
		names = append(names, in.Name)
	}
	return names
}

// Load reads a recipe, resolves its base: chain, applies overrides ("a.b=value", as given to
// --set), checks every key and type, decodes it over Defaults() and validates it.
//
// nameOrPath is a file when it names an existing file or ends in .yaml/.yml, and otherwise the
// name of an embedded recipe (see List). Every error is a single line; problems in files are
// prefixed with FILE:LINE, problems in overrides with "--set a.b=value".
func Load(nameOrPath string, overrides []string) (*Recipe, error) {
	l := &loader{origin: map[*yaml.Node]origin{}}
	src, err := locateTop(nameOrPath)
	if err != nil {
		return nil, err
	}
	root, err := l.resolve(src, nil)
	if err != nil {
		return nil, err
	}
	for _, o := range overrides {
		if err := l.applyOverride(root, o); err != nil {
			return nil, err
		}
	}

	r := Defaults()
	pos := map[string]string{}
	var errs []string
	l.decode(root, reflect.ValueOf(&r).Elem(), "", pos, &errs)
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "; "))
	}
	r.Base = ""
	if r.Name == "" {
		r.Name = src.stem
	}
	explicit := func(p string) bool { // set in the file named, or with --set
		w := pos[p]
		return strings.HasPrefix(w, "--set") || strings.HasPrefix(w, src.label+":")
	}
	if err := validate(&r, pos, explicit); err != nil {
		return nil, err
	}
	resetUnused(&r)
	return &r, nil
}

// YAML returns the fully resolved recipe as YAML, every section and key included. Loading the
// result gives back an identical recipe.
func (r *Recipe) YAML() ([]byte, error) {
	var n yaml.Node
	if err := n.Encode(r); err != nil {
		return nil, fmt.Errorf("encode recipe: %w", err)
	}
	var flow func(*yaml.Node)
	flow = func(n *yaml.Node) {
		if n.Kind == yaml.SequenceNode {
			n.Style = yaml.FlowStyle
		}
		for _, c := range n.Content {
			flow(c)
		}
	}
	flow(&n)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, fmt.Errorf("encode recipe: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode recipe: %w", err)
	}
	return buf.Bytes(), nil
}

// ---- locating and reading recipe documents ----

type source struct {
	data     []byte
	label    string // shown in errors: the path, or recipes/NAME.yaml for embedded recipes
	id       string // identity for cycle detection
	dir      string // directory that relative bases are resolved against (disk files)
	embedded bool
	stem     string // file name without extension
}

func hasYAMLExt(p string) bool {
	ext := strings.ToLower(filepath.Ext(p))
	return ext == ".yaml" || ext == ".yml"
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func locateTop(ref string) (source, error) {
	if ref == "" {
		return source{}, errors.New("no recipe given")
	}
	if isFile(ref) || hasYAMLExt(ref) {
		return readDisk(ref)
	}
	return readEmbedded(ref)
}

func locateBase(ref string, from source) (source, error) {
	if from.embedded {
		name := strings.TrimSuffix(strings.TrimSuffix(path.Base(ref), ".yaml"), ".yml")
		return readEmbedded(name)
	}
	p := ref
	if !filepath.IsAbs(p) {
		p = filepath.Join(from.dir, ref)
	}
	if isFile(p) || hasYAMLExt(ref) || strings.ContainsAny(ref, `/\`) {
		return readDisk(p)
	}
	return readEmbedded(ref)
}

func readDisk(p string) (source, error) {
	data, err := safeio.ReadFile(p, safeio.RecipeLimit)
	if err != nil {
		return source{}, fmt.Errorf("read recipe: %w", err)
	}
	id, err := filepath.Abs(p)
	if err != nil {
		id = p
	}
	base := filepath.Base(p)
	return source{
		data:  data,
		label: p,
		id:    "file:" + id,
		dir:   filepath.Dir(p),
		stem:  strings.TrimSuffix(base, filepath.Ext(base)),
	}, nil
}

func readEmbedded(name string) (source, error) {
	var data []byte
	err := errors.New("not found")
	if name != "" && !strings.ContainsAny(name, `/\`) {
		data, err = embedded.ReadFile(name + ".yaml")
	}
	if err != nil {
		names := embeddedNames()
		msg := fmt.Sprintf("unknown recipe %q", name)
		if s := suggest(name, names); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		return source{}, fmt.Errorf("%s; available: %s (or give a path to a .yaml file)", msg, strings.Join(names, ", "))
	}
	return source{
		data:     data,
		label:    "recipes/" + name + ".yaml",
		id:       "embedded:" + name,
		embedded: true,
		stem:     name,
	}, nil
}

// ---- node-level resolution ----

type origin struct {
	file string // file label, or "--set a.b=v" for overrides
	set  bool   // came from an override: no line number
}

type loader struct {
	origin map[*yaml.Node]origin
}

// where returns "FILE:LINE" or "--set a.b=v" for n, or "" if unknown.
func (l *loader) where(n *yaml.Node) string {
	o, ok := l.origin[n]
	if !ok {
		return ""
	}
	if o.set {
		return o.file
	}
	return fmt.Sprintf("%s:%d", o.file, n.Line)
}

func prefix(where string) string {
	if where == "" {
		return ""
	}
	return where + ": "
}

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func parseError(label string, err error) error {
	msg := errline.Fold(err.Error())
	if m := yamlLineErr.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%s:%s: invalid YAML: %s", label, m[1], m[2])
	}
	return fmt.Errorf("%s: invalid YAML: %s", label, strings.TrimPrefix(msg, "yaml: "))
}

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// annotate records the origin of every node under n and rejects duplicate mapping keys.
func (l *loader) annotate(n *yaml.Node, o origin) error {
	if n == nil {
		return nil
	}
	if _, done := l.origin[n]; done {
		return nil
	}
	l.origin[n] = o
	if n.Kind == yaml.MappingNode {
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind == yaml.ScalarNode {
				if seen[k.Value] {
					l.origin[k] = o
					return fmt.Errorf("%sduplicate key %q", prefix(l.where(k)), k.Value)
				}
				seen[k.Value] = true
			}
		}
	}
	for _, c := range n.Content {
		if err := l.annotate(c, o); err != nil {
			return err
		}
	}
	return nil
}

func findKey(m *yaml.Node, key string) int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return i
		}
	}
	return -1
}

func removeKey(m *yaml.Node, key string) {
	if i := findKey(m, key); i >= 0 {
		m.Content = append(m.Content[:i:i], m.Content[i+2:]...)
	}
}

// resolve parses src, resolves its base: chain and returns the merged top-level mapping, without
// the base key. chain holds the documents that include src, outermost first.
func (l *loader) resolve(src source, chain []source) (*yaml.Node, error) {
	if len(chain) > 32 {
		return nil, fmt.Errorf("%s: base chain is too deep", src.label)
	}

	var doc yaml.Node
	if err := yaml.Unmarshal(src.data, &doc); err != nil {
		return nil, parseError(src.label, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 || isNull(deref(doc.Content[0])) {
		return nil, fmt.Errorf("%s: the recipe is empty (expected a mapping of keys such as name:, base:, task:, model:, train:)", src.label)
	}
	root := deref(doc.Content[0])
	o := origin{file: src.label}
	if err := l.annotate(root, o); err != nil {
		return nil, err
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: a recipe must be a mapping of keys (name:, model:, train:, ...), got %s", src.label, root.Line, describe(root))
	}

	i := findKey(root, "base")
	if i < 0 {
		return root, nil
	}
	bv := deref(root.Content[i+1])
	removeKey(root, "base")
	if isNull(bv) || (bv.Kind == yaml.ScalarNode && strings.TrimSpace(bv.Value) == "") {
		return root, nil
	}
	if bv.Kind != yaml.ScalarNode {
		return nil, fmt.Errorf("%sbase: expected a recipe name or path, got %s", prefix(l.where(bv)), describe(bv))
	}
	baseSrc, err := locateBase(strings.TrimSpace(bv.Value), src)
	if err != nil {
		return nil, fmt.Errorf("%sbase: %w", prefix(l.where(bv)), err)
	}
	inner := append(chain[:len(chain):len(chain)], src)
	for _, c := range inner {
		if c.id == baseSrc.id {
			var labels []string
			for _, c := range inner {
				labels = append(labels, c.label)
			}
			labels = append(labels, baseSrc.label)
			return nil, fmt.Errorf("%sbase: cycle: %s", prefix(l.where(bv)), strings.Join(labels, " -> "))
		}
	}
	baseRoot, err := l.resolve(baseSrc, inner)
	if err != nil {
		return nil, err
	}
	// name and description belong to the recipe that sets them; they are not inherited.
	removeKey(baseRoot, "name")
	removeKey(baseRoot, "description")
	return l.merge(baseRoot, root), nil
}

// merge overlays child on base: mapping keys merge recursively, anything else is replaced.
func (l *loader) merge(base, child *yaml.Node) *yaml.Node {
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: child.Line, Column: child.Column}
	l.origin[out] = l.origin[child]
	out.Content = append([]*yaml.Node(nil), base.Content...)
	for i := 0; i+1 < len(child.Content); i += 2 {
		k, v := child.Content[i], child.Content[i+1]
		j := -1
		if k.Kind == yaml.ScalarNode {
			j = findKey(out, k.Value)
		}
		if j < 0 {
			out.Content = append(out.Content, k, v)
			continue
		}
		bv, cv := deref(out.Content[j+1]), deref(v)
		if bv.Kind == yaml.MappingNode && cv.Kind == yaml.MappingNode {
			out.Content[j] = k
			out.Content[j+1] = l.merge(bv, cv)
			continue
		}
		out.Content[j] = k
		out.Content[j+1] = v
	}
	return out
}

// ---- overrides ----

var recipeType = reflect.TypeOf(Recipe{})

// applyOverride sets "a.b=value" in the merged tree, after checking that a.b names a field.
func (l *loader) applyOverride(root *yaml.Node, spec string) error {
	label := "--set " + spec
	eq := strings.IndexByte(spec, '=')
	if eq < 0 {
		return fmt.Errorf("%s: expected key=value, e.g. train.lr=3e-4", label)
	}
	keyPath, value := strings.TrimSpace(spec[:eq]), spec[eq+1:]
	if keyPath == "" {
		return fmt.Errorf("%s: expected key=value, e.g. train.lr=3e-4", label)
	}
	segs := strings.Split(keyPath, ".")
	t := recipeType
	for i, seg := range segs {
		section := strings.Join(segs[:i], ".")
		if t.Kind() != reflect.Struct {
			return fmt.Errorf("%s: %s is not a section, it has no key %q", label, section, seg)
		}
		f, ok := fieldByKey(t, seg)
		if !ok {
			return fmt.Errorf("%s: %s", label, unknownKeyMsg(seg, section, t))
		}
		if i == 0 && seg == "base" {
			return fmt.Errorf("%s: base cannot be overridden; load the other recipe instead", label)
		}
		t = f.Type
	}

	var doc yaml.Node
	var v *yaml.Node
	if err := yaml.Unmarshal([]byte(value), &doc); err == nil && doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		v = deref(doc.Content[0])
	}
	// A string field takes the text as written unless it is a plain YAML scalar (so
	// "runs/a: b" stays a string, while '"quoted"' is unquoted).
	if v == nil || (t.Kind() == reflect.String && v.Kind != yaml.ScalarNode) {
		v = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
	}
	o := origin{file: label, set: true}
	l.origin = withOrigins(l.origin, v, o)

	cur := root
	for i, seg := range segs {
		last := i == len(segs)-1
		j := findKey(cur, seg)
		if last {
			k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: seg}
			l.origin[k] = o
			if j >= 0 {
				cur.Content[j], cur.Content[j+1] = k, v
			} else {
				cur.Content = append(cur.Content, k, v)
			}
			break
		}
		if j >= 0 {
			if next := deref(cur.Content[j+1]); next.Kind == yaml.MappingNode {
				cur = next
				continue
			}
		}
		k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: seg}
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		l.origin[k], l.origin[m] = o, o
		if j >= 0 {
			cur.Content[j], cur.Content[j+1] = k, m
		} else {
			cur.Content = append(cur.Content, k, m)
		}
		cur = m
	}
	return nil
}

// withOrigins marks every node under n (overriding earlier marks) with o.
func withOrigins(m map[*yaml.Node]origin, n *yaml.Node, o origin) map[*yaml.Node]origin {
	m[n] = o
	for _, c := range n.Content {
		withOrigins(m, c, o)
	}
	return m
}

// ---- schema walk: key/type checks and decoding ----

func yamlKey(f reflect.StructField) string {
	tag := f.Tag.Get("yaml")
	name, _, _ := strings.Cut(tag, ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if k := yamlKey(f); k != "" && k == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func keysOf(t reflect.Type) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		if k := yamlKey(t.Field(i)); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

func unknownKeyMsg(key, section string, t reflect.Type) string {
	in := section
	if in == "" {
		in = "recipe"
	}
	keys := keysOf(t)
	msg := fmt.Sprintf("unknown key %q in %s", key, in)
	if s := suggest(key, keys); s != "" {
		return msg + fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg + " (valid keys: " + strings.Join(keys, ", ") + ")"
}

func joinPath(p, k string) string {
	if p == "" {
		return k
	}
	return p + "." + k
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "an unsupported value"
}

// decode checks n against the type of v and stores it in v; problems are appended to errs.
// pos receives the origin of every value set, keyed by dotted path.
func (l *loader) decode(n *yaml.Node, v reflect.Value, p string, pos map[string]string, errs *[]string) {
	n = deref(n)
	if p != "" {
		pos[p] = l.where(n)
	}
	fail := func(msg string) {
		*errs = append(*errs, fmt.Sprintf("%s%s: %s", prefix(l.where(n)), p, msg))
	}
	switch v.Kind() {
	case reflect.Struct:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.MappingNode {
			fail("expected a mapping of keys, got " + describe(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := deref(n.Content[i]), n.Content[i+1]
			f, ok := fieldByKey(v.Type(), k.Value)
			if k.Kind != yaml.ScalarNode || !ok {
				name := k.Value
				if k.Kind != yaml.ScalarNode {
					name = describe(k)
				}
				*errs = append(*errs, prefix(l.where(k))+unknownKeyMsg(name, p, v.Type()))
				continue
			}
			l.decode(val, v.FieldByIndex(f.Index), joinPath(p, k.Value), pos, errs)
		}
	case reflect.Slice:
		ek := v.Type().Elem().Kind()
		if ek != reflect.String && ek != reflect.Int {
			fail("unsupported field type " + v.Type().String())
			return
		}
		if isNull(n) {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		if n.Kind != yaml.SequenceNode {
			fail("expected a list like [a, b], got " + describe(n))
			return
		}
		out := reflect.MakeSlice(v.Type(), 0, len(n.Content))
		for i, e := range n.Content {
			e = deref(e)
			ep := fmt.Sprintf("%s[%d]", p, i)
			pos[ep] = l.where(e)
			if e.Kind != yaml.ScalarNode || isNull(e) {
				*errs = append(*errs, fmt.Sprintf("%s%s: expected a %s, got %s", prefix(l.where(e)), ep, map[bool]string{true: "string", false: "whole number"}[ek == reflect.String], describe(e)))
				continue
			}
			if ek == reflect.Int {
				x, err := strconv.Atoi(e.Value)
				if err != nil {
					*errs = append(*errs, fmt.Sprintf("%s%s: expected a whole number, got %q", prefix(l.where(e)), ep, e.Value))
					continue
				}
				out = reflect.Append(out, reflect.ValueOf(x))
				continue
			}
			out = reflect.Append(out, reflect.ValueOf(e.Value).Convert(v.Type().Elem()))
		}
		if out.Len() == 0 { // an empty list is the unset one, so a resolved recipe loads back equal
			out = reflect.Zero(v.Type())
		}
		v.Set(out)
	case reflect.String:
		if isNull(n) {
			v.SetString("")
			return
		}
		if n.Kind != yaml.ScalarNode {
			fail("expected a string, got " + describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n.Kind != yaml.ScalarNode || isNull(n) {
			fail("expected an integer, got " + describe(n))
			return
		}
		i, ok := parseInt(n.Value, v.Type().Bits())
		if !ok {
			fail("expected an integer, got " + describe(n))
			return
		}
		v.SetInt(i)
	case reflect.Float32, reflect.Float64:
		if n.Kind != yaml.ScalarNode || isNull(n) {
			fail("expected a number, got " + describe(n))
			return
		}
		f, err := strconv.ParseFloat(strings.ReplaceAll(strings.TrimSpace(n.Value), "_", ""), v.Type().Bits())
		if err != nil || f != f || f > 1e308 || f < -1e308 {
			fail("expected a number, got " + describe(n))
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || isNull(n) {
			fail("expected true or false, got " + describe(n))
			return
		}
		switch strings.ToLower(strings.TrimSpace(n.Value)) {
		case "true", "yes", "on":
			v.SetBool(true)
		case "false", "no", "off":
			v.SetBool(false)
		default:
			fail("expected true or false, got " + describe(n))
		}
	default:
		fail("unsupported field type " + v.Type().String())
	}
}

func parseInt(s string, bits int) (int64, bool) {
	s = strings.TrimSpace(s)
	if i, err := strconv.ParseInt(s, 0, bits); err == nil {
		return i, true
	}
	// Accept whole numbers written as floats, e.g. 2e4.
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != float64(int64(f)) {
		return 0, false
	}
	i := int64(f)
	if bits < 64 && (i > 1<<(bits-1)-1 || i < -(1<<(bits-1))) {
		return 0, false
	}
	return i, true
}

// ---- did-you-mean ----

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// suggest returns the candidate closest to word (edit distance ≤ 2, or a prefix match), or "".
func suggest(word string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := levenshtein(word, c); d < bestD {
			best, bestD = c, d
		}
	}
	if best != "" || len(word) < 2 {
		return best
	}
	for _, c := range candidates {
		if strings.HasPrefix(c, word) || strings.HasPrefix(word, c) {
			return c
		}
	}
	return ""
}
