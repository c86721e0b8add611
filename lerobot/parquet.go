package lerobot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/reelml/reel/internal/atomicfile"
	"github.com/reelml/reel/internal/safeio"
)

// Parquet access for LeRobot datasets. Files written by pyarrow (LeRobot, Hugging Face datasets)
// store vectors as LIST columns (a fixed_size_list<float32> in Arrow is a LIST in parquet),
// images as a struct {bytes, path}, and nest lists for image statistics; the reader here walks
// any of those down to their leaf column and returns each row's values, so one code path reads
// list<float32>, list<float64>, fixed-size lists and scalars alike.

// pqFile is an open parquet file.
type pqFile struct {
	path string
	f    *os.File
	pf   *parquet.File
}

// openParquet opens the parquet file at path; any failure is one line naming it.
func openParquet(path string) (p *pqFile, err error) {
	f, err := safeio.Open(path)
	if err != nil {
		return nil, lerobotOpenError(path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, unwrapPathError(err))
	}
	defer func() { // parquet-go panics on some malformed files
		if r := recover(); r != nil {
			f.Close()
			p, err = nil, fmt.Errorf("%s: corrupt parquet file: %v", path, firstLineOf(fmt.Sprint(r)))
		}
	}()
	if st.Size() == 0 {
		f.Close()
		return nil, fmt.Errorf("%s: empty file (not parquet)", path)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: not a readable parquet file: %s", path, firstLineOf(err.Error()))
	}
	return &pqFile{path: path, f: f, pf: pf}, nil
}

func firstLineOf(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func (p *pqFile) Close() error { return p.f.Close() }

// NumRows is the number of rows of the file.
func (p *pqFile) NumRows() int { return int(p.pf.NumRows()) }

// has reports whether the file has a top-level column called name.
func (p *pqFile) has(name string) bool { return p.pf.Root().Column(name) != nil }

// names lists the top-level columns.
func (p *pqFile) names() []string {
	var out []string
	for _, c := range p.pf.Root().Columns() {
		out = append(out, c.Name())
	}
	return out
}

// lookup returns the key-value metadata entry key.
func (p *pqFile) lookup(key string) (string, bool) { return p.pf.Lookup(key) }

// pqColumn holds the values of one top-level column, row by row: row r's values are
// floats/ints/bytes[offs[r]:offs[r+1]] (a scalar column has one per row, a list one per
// element; nested lists are flattened).
type pqColumn struct {
	name  string
	kind  parquet.Kind
	list  bool // repeated (a LIST, possibly nested)
	offs  []int
	f     []float64 // FLOAT, DOUBLE (and integers, converted)
	i     []int64   // INT32, INT64, BOOLEAN (0/1)
	b     [][]byte  // BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY
	nulls []int     // rows whose scalar value is null
}

func (c *pqColumn) rows() int { return len(c.offs) - 1 }

func (c *pqColumn) numeric() bool { return c.f != nil }

// rowFloats returns row r's values as float64 (nil for a byte-array column).
func (c *pqColumn) rowFloats(r int) []float64 { return c.f[c.offs[r]:c.offs[r+1]] }

// rowInts returns row r's values as int64 (integer and boolean columns).
func (c *pqColumn) rowInts(r int) []int64 { return c.i[c.offs[r]:c.offs[r+1]] }

// rowBytes returns row r's byte arrays.
func (c *pqColumn) rowBytes(r int) [][]byte { return c.b[c.offs[r]:c.offs[r+1]] }

func (c *pqColumn) integer() bool {
	return c.kind == parquet.Int32 || c.kind == parquet.Int64 || c.kind == parquet.Boolean
}

// column reads the top-level column name in full. A LIST (of lists) is read down to its leaf, a
// struct with a "bytes" field (LeRobot's image {bytes, path}) as its bytes.
func (p *pqFile) column(name string) (col *pqColumn, err error) {
	fail := func(format string, args ...any) (*pqColumn, error) {
		return nil, fmt.Errorf("%s: column %q: %s", p.path, name, fmt.Sprintf(format, args...))
	}
	defer func() {
		if r := recover(); r != nil {
			col, err = fail("corrupt data: %v", firstLineOf(fmt.Sprint(r)))
		}
	}()
	top := p.pf.Root().Column(name)
	if top == nil {
		return fail("missing")
	}
	leaf, err := parquetLeaf(top)
	if err != nil {
		return fail("%v", err)
	}
	col = &pqColumn{name: name, kind: leaf.Type().Kind(), list: leaf.MaxRepetitionLevel() > 0, offs: make([]int, 0, p.NumRows()+1)}
	switch col.kind {
	case parquet.Float, parquet.Double:
		col.f = []float64{}
	case parquet.Int32, parquet.Int64, parquet.Boolean:
		col.f, col.i = []float64{}, []int64{}
	case parquet.ByteArray, parquet.FixedLenByteArray:
		col.b = [][]byte{}
	default:
		return fail("unsupported physical type %v", col.kind)
	}
	maxDef := leaf.MaxDefinitionLevel()
	repeated := leaf.MaxRepetitionLevel() > 0
	pages := leaf.Pages()
	defer pages.Close()
	buf := make([]parquet.Value, 4096)
	n := 0 // values so far
	for {
		page, err := pages.ReadPage()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail("%s", firstLineOf(err.Error()))
		}
		vr := page.Values()
		for {
			k, err := vr.ReadValues(buf)
			for _, v := range buf[:k] {
				if v.RepetitionLevel() == 0 {
					col.offs = append(col.offs, n)
				}
				if v.DefinitionLevel() < maxDef {
					if !repeated {
						col.nulls = append(col.nulls, len(col.offs)-1)
					}
					continue // a null, or the marker of an empty list
				}
				n++
				switch col.kind {
				case parquet.Float:
					col.f = append(col.f, float64(v.Float()))
				case parquet.Double:
					col.f = append(col.f, v.Double())
				case parquet.Int32:
					col.i = append(col.i, int64(v.Int32()))
				case parquet.Int64:
					col.i = append(col.i, v.Int64())
				case parquet.Boolean:
					x := int64(0)
					if v.Boolean() {
						x = 1
					}
					col.i = append(col.i, x)
				default:
					col.b = append(col.b, slices.Clone(v.ByteArray()))
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				parquet.Release(page)
				return fail("%s", firstLineOf(err.Error()))
			}
		}
		parquet.Release(page)
	}
	col.offs = append(col.offs, n)
	if col.i != nil {
		col.f = make([]float64, len(col.i))
		for j, x := range col.i {
			col.f[j] = float64(x)
		}
	}
	if got := col.rows(); got != p.NumRows() {
		return fail("%d rows, the file has %d", got, p.NumRows())
	}
	return col, nil
}

// parquetLeaf descends from a top-level column to the leaf holding its values.
func parquetLeaf(c *parquet.Column) (*parquet.Column, error) {
	for depth := 0; depth < 8; depth++ {
		if c.Leaf() {
			return c, nil
		}
		children := c.Columns()
		switch {
		case len(children) == 1:
			c = children[0] // LIST → repeated group → element (or a legacy repeated leaf)
		case c.Column("bytes") != nil:
			c = c.Column("bytes") // image struct {bytes, path}
		default:
			return nil, fmt.Errorf("a group of %d fields, want a number, a list of numbers or an image {bytes, path}", len(children))
		}
	}
	return nil, errors.New("nested too deeply")
}

// ---------------------------------------------------------------------------------------------
// Writing

// pqField is one column of a parquet table written by pqTable: a Go type (scalars, slices,
// nested slices) and whether a slice is written as a LIST.
type pqField struct {
	Name string
	Type reflect.Type
}

// pqTable writes rows of a schema known only at run time, through a struct type made with
// reflect.StructOf so that column order is the fields' order.
type pqTable struct {
	typ    reflect.Type
	schema *parquet.Schema
	names  []string
}

func newPQTable(fields []pqField) *pqTable {
	sf := make([]reflect.StructField, len(fields))
	names := make([]string, len(fields))
	for i, f := range fields {
		tag := f.Name
		if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() != reflect.Uint8 {
			tag += ",list"
		}
		sf[i] = reflect.StructField{Name: fmt.Sprintf("F%d", i), Type: f.Type, Tag: reflect.StructTag(`parquet:"` + tag + `"`)}
		names[i] = f.Name
	}
	typ := reflect.StructOf(sf)
	return &pqTable{typ: typ, schema: parquet.SchemaOf(reflect.New(typ).Interface()), names: names}
}

// pqRowGroups is the content of a file: row groups of rows, each row one value per field.
type pqRowGroups [][][]any

// encode returns the parquet file of groups (one row group each), snappy-compressed, with the
// key-value metadata kv (key, value pairs).
func (t *pqTable) encode(groups pqRowGroups, kv ...string) ([]byte, error) {
	var b bytes.Buffer
	opts := []parquet.WriterOption{t.schema, parquet.Compression(&parquet.Snappy)}
	for i := 0; i+1 < len(kv); i += 2 {
		opts = append(opts, parquet.KeyValueMetadata(kv[i], kv[i+1]))
	}
	w := parquet.NewWriter(&b, opts...)
	for _, g := range groups {
		for _, row := range g {
			v := reflect.New(t.typ).Elem()
			for i, x := range row {
				if x != nil {
					v.Field(i).Set(reflect.ValueOf(x))
				}
			}
			if err := w.Write(v.Addr().Interface()); err != nil {
				return nil, err
			}
		}
		if err := w.Flush(); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// write writes groups to path atomically (see encode).
func (t *pqTable) write(path string, groups pqRowGroups, kv ...string) error {
	raw, err := t.encode(groups, kv...)
	if err != nil {
		return fmt.Errorf("%s: %s", path, firstLineOf(err.Error()))
	}
	if err := atomicfile.WriteFile(path, raw); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// finite reports whether every value is a finite number.
func finite(v []float64) (int, bool) {
	for j, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return j, false
		}
	}
	return 0, true
}
