package main

// Stored records must not change when the wire types do. Two modes keep them
// apart:
//
//   - -pin extracts the shapes reachable from a few roots from the botocore
//     model and writes them, without documentation, to a schema file that is
//     committed. Taking members of a newer model is a deliberate re-pin.
//   - -records generates from that pinned file one storage struct per
//     structure shape, with the JSON member names and omit behaviour of the
//     wire types (so the bytes stored stay the same), the wire package's
//     enumeration types (strings, stored as they are), no validation, and
//     converters between each storage
//     struct and the wire struct of the same name. The converters are built
//     against the wire package's source as it is: a member one side has and
//     the other lacks, or a member whose types do not convert, is an error
//     naming it.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// pinnedSchema is the file -pin writes and -records reads.
type pinnedSchema struct {
	Service    string                `json:"service"`
	Botocore   string                `json:"botocore"`
	APIVersion string                `json:"apiVersion"`
	Roots      []string              `json:"roots"`
	Shapes     map[string]*shapeSpec `json:"shapes"`
}

// prose lists the members of a model that are text for people; the pinned
// schema leaves them out.
var prose = map[string]bool{"documentation": true, "deprecatedMessage": true}

func pin(c config) error {
	file, version, err := modelPath(c)
	if err != nil {
		return err
	}
	raw, err := readModel(file)
	if err != nil {
		return err
	}
	var m model
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("decode %s: %w", file, err)
	}
	var rawShapes struct {
		Shapes map[string]map[string]any `json:"shapes"`
	}
	if err := json.Unmarshal(raw, &rawShapes); err != nil {
		return fmt.Errorf("decode %s: %w", file, err)
	}
	roots := strings.Split(c.roots, ",")
	seen := map[string]bool{}
	g := &gen{m: &m}
	for _, r := range roots {
		s := m.Shapes[r]
		if s == nil || s.Type != "structure" || s.Document {
			return fmt.Errorf("root %q is not a structure of the %s model", r, c.service)
		}
		g.walk(r, seen)
	}
	shapes := map[string]any{}
	for name := range seen {
		shapes[name] = withoutProse(rawShapes.Shapes[name])
	}
	apiVersion, _ := m.Metadata["apiVersion"].(string)
	doc := struct {
		Service    string         `json:"service"`
		Botocore   string         `json:"botocore"`
		APIVersion string         `json:"apiVersion"`
		Roots      []string       `json:"roots"`
		Shapes     map[string]any `json:"shapes"`
	}{c.service, version, apiVersion, roots, shapes}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.pin), 0o755); err != nil {
		return err
	}
	return os.WriteFile(c.pin, append(out, '\n'), 0o644)
}

// withoutProse returns v without the prose members of any object in it.
func withoutProse(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			if !prose[k] {
				out[k] = withoutProse(e)
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = withoutProse(e)
		}
		return out
	}
	return v
}

func records(c config) error {
	raw, err := os.ReadFile(c.schema)
	if err != nil {
		return err
	}
	var p pinnedSchema
	if err := json.Unmarshal(raw, &p); err != nil {
		return fmt.Errorf("decode %s: %w", c.schema, err)
	}
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}", c.wire).Output()
	if err != nil {
		return fmt.Errorf("find package %s: %w", c.wire, err)
	}
	w, err := parseWire(strings.TrimSpace(string(out)))
	if err != nil {
		return err
	}
	src, err := generateRecords(c, &p, w)
	if err != nil {
		return err
	}
	name := filepath.Join(c.out, "zz_generated_records.go")
	formatted, err := format.Source(src)
	if err != nil {
		os.WriteFile(name+".broken", src, 0o644)
		return fmt.Errorf("format %s: %w", name, err)
	}
	return os.WriteFile(name, formatted, 0o644)
}

// wirePackage is what -records needs to know of the wire types' package.
type wirePackage struct {
	structs map[string]map[string]wireField // type name → JSON member name → field
	strings map[string]bool                 // named string types (enumerations)
}

type wireField struct {
	name string
	typ  string // as written in the package, e.g. *api.Time or []Attachment
}

// parseWire reads the type declarations of the Go package in dir.
func parseWire(dir string) (*wirePackage, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	w := &wirePackage{structs: map[string]map[string]wireField{}, strings: map[string]bool{}}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		for _, d := range file.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				switch t := ts.Type.(type) {
				case *ast.Ident:
					if t.Name == "string" {
						w.strings[ts.Name.Name] = true
					}
				case *ast.StructType:
					w.structs[ts.Name.Name] = structFields(t)
				}
			}
		}
	}
	return w, nil
}

// structFields returns the fields of t by the JSON member names
// encoding/json gives them.
func structFields(t *ast.StructType) map[string]wireField {
	fields := map[string]wireField{}
	for _, f := range t.Fields.List {
		tag := ""
		if f.Tag != nil {
			s, _ := strconv.Unquote(f.Tag.Value)
			tag = reflect.StructTag(s).Get("json")
		}
		jsonName, _, _ := strings.Cut(tag, ",")
		if jsonName == "-" {
			continue
		}
		for _, n := range f.Names {
			if !n.IsExported() {
				continue
			}
			name := jsonName
			if name == "" {
				name = n.Name
			}
			fields[name] = wireField{name: n.Name, typ: types.ExprString(f.Type)}
		}
	}
	return fields
}

// recordGen generates storage types and converters.
type recordGen struct {
	*gen
	schema *pinnedSchema
	wire   *wirePackage
	alias  string          // import name of the wire package
	used   map[string]bool // helpers and imports the code uses
	errs   []string
}

func generateRecords(c config, p *pinnedSchema, w *wirePackage) ([]byte, error) {
	if len(p.Roots) == 0 {
		return nil, fmt.Errorf("%s names no roots", c.schema)
	}
	g := &recordGen{gen: &gen{m: &model{Shapes: p.Shapes}, c: c}, schema: p, wire: w, alias: path.Base(c.wire) + "api", used: map[string]bool{}}
	reach := map[string]bool{}
	for _, r := range p.Roots {
		g.reachPinned(r, reach)
	}
	if len(g.errs) > 0 {
		return nil, g.failure()
	}
	var body bytes.Buffer
	for _, name := range sortedKeys(reach) {
		if s := p.Shapes[name]; s.Type == "structure" && !s.Document {
			g.shape(&body, name)
		}
	}
	if len(g.errs) > 0 {
		return nil, g.failure()
	}
	g.helpers(&body)

	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by tools/apigen -records from %s (the botocore %s model %s, pinned); DO NOT EDIT.\n\n", filepath.ToSlash(c.schema), p.Service, p.Botocore)
	fmt.Fprintf(&b, "package %s\n\nimport (\n", c.pkg)
	for _, std := range []string{"maps", "slices"} {
		if g.used[std] {
			fmt.Fprintf(&b, "%q\n", std)
		}
	}
	b.WriteString("\n")
	if g.used["api"] {
		b.WriteString("\"github.com/wharfhq/wharf/internal/api\"\n")
	}
	fmt.Fprintf(&b, "%s %q\n)\n\n", g.alias, c.wire)
	b.Write(body.Bytes())
	return b.Bytes(), nil
}

func (g *recordGen) failure() error {
	sort.Strings(g.errs)
	return fmt.Errorf("records from %s:\n\t%s", g.c.schema, strings.Join(g.errs, "\n\t"))
}

func (g *recordGen) errorf(format string, args ...any) {
	g.errs = append(g.errs, fmt.Sprintf(format, args...))
}

// reachPinned marks the shapes reachable from name, noting those the
// pinned schema lacks.
func (g *recordGen) reachPinned(name string, seen map[string]bool) {
	if seen[name] {
		return
	}
	s := g.m.Shapes[name]
	if s == nil {
		g.errorf("shape %s is not in the pinned schema; pin the model again (apigen -pin)", name)
		return
	}
	seen[name] = true
	for _, r := range s.Members {
		g.reachPinned(r.Shape, seen)
	}
	for _, r := range []*ref{s.Member, s.Key, s.Value} {
		if r != nil {
			g.reachPinned(r.Shape, seen)
		}
	}
}

// enumOnWire reports a member (or list of members) whose wire type is one
// of the wire package's enumerations: it is stored with that type, which
// holds the same string, so that domain code compares it with the wire
// package's constants.
func (g *recordGen) enumOnWire(r *ref, f wireField) bool {
	s := g.m.Shapes[r.Shape]
	switch s.Type {
	case "string":
		return g.wire.strings[f.typ]
	case "list":
		return g.m.Shapes[s.Member.Shape].Type == "string" && strings.HasPrefix(f.typ, "[]") && g.wire.strings[strings.TrimPrefix(f.typ, "[]")]
	}
	return false
}

// storeType is the Go type of a stored member: the wire type with plain
// strings for enumerations.
func (g *recordGen) storeType(r *ref) string {
	switch s := g.m.Shapes[r.Shape]; s.Type {
	case "string":
		return "string"
	case "list":
		return "[]" + g.storeElem(s.Member)
	case "map":
		return "map[string]" + g.storeElem(s.Value)
	}
	return g.goType(r)
}

func (g *recordGen) storeElem(r *ref) string {
	t := g.storeType(r)
	if s := g.m.Shapes[r.Shape]; s.Type == "structure" && !s.Document {
		return strings.TrimPrefix(t, "*")
	}
	return t
}

// shape writes the storage struct of a structure shape and its converters.
func (g *recordGen) shape(b *bytes.Buffer, name string) {
	s := g.m.Shapes[name]
	fields, ok := g.wire.structs[name]
	if !ok {
		g.errorf("shape %s: the wire package has no struct %s.%s", name, g.alias, name)
		return
	}
	for _, jn := range sortedKeys(fields) {
		if s.Members[jn] == nil {
			g.errorf("%s.%s.%s (JSON %q) is not in the pinned schema, so records would drop it; pin the model again (apigen -pin)", g.alias, name, fields[jn].name, jn)
		}
	}
	members := sortedKeys(s.Members)
	fmt.Fprintf(b, "// %s is the stored form of %s.%s.\ntype %s struct {\n", name, g.alias, name, name)
	for _, mn := range members {
		r := s.Members[mn]
		t := g.storeType(r)
		if f, ok := fields[mn]; ok && g.enumOnWire(r, f) {
			t = f.typ
			if strings.HasPrefix(t, "[]") {
				t = "[]" + g.alias + "." + strings.TrimPrefix(t, "[]")
			} else {
				t = g.alias + "." + t
			}
		}
		if strings.Contains(t, "api.") {
			g.used["api"] = true
		}
		fmt.Fprintf(b, "%s %s `json:%q`\n", exported(mn), t, mn+g.omitTag(r))
	}
	b.WriteString("}\n\n")

	var from, to bytes.Buffer
	for _, mn := range members {
		f, ok := fields[mn]
		if !ok {
			g.errorf("%s.%s: %s.%s has no member with JSON name %q; stored records hold it, so it must not be dropped: keep it on the wire type, or bump the records' version and decode the old layout", name, mn, g.alias, name, mn)
			continue
		}
		fe, te, ok := g.convert(name, mn, s.Members[mn], f)
		if !ok {
			continue
		}
		fmt.Fprintf(&from, "%s: %s,\n", exported(mn), fe)
		fmt.Fprintf(&to, "%s: %s,\n", f.name, te)
	}
	fmt.Fprintf(b, "// %sFromWire returns the stored form of w.\nfunc %sFromWire(w *%s.%s) %s {\nreturn %s{\n%s}\n}\n\n", name, name, g.alias, name, name, name, from.Bytes())
	fmt.Fprintf(b, "// Wire returns the wire form of x.\nfunc (x *%s) Wire() %s.%s {\nreturn %s.%s{\n%s}\n}\n\n", name, g.alias, name, g.alias, name, to.Bytes())
}

// convert returns the expressions that convert member mn of shape owner
// from the wire field f (w.F) and back to it (x.F). Values are copied, so
// that the two forms share no memory (documents aside).
func (g *recordGen) convert(owner, mn string, r *ref, f wireField) (from, to string, ok bool) {
	w, x := "w."+f.name, "x."+exported(mn)
	s := g.m.Shapes[r.Shape]
	mismatch := func() (string, string, bool) {
		g.errorf("%s.%s: the pinned schema stores %s, and %s.%s.%s is %s; convert it in the generator or pin the model again", owner, mn, g.storeType(r), g.alias, owner, f.name, f.typ)
		return "", "", false
	}
	unsupported := func() (string, string, bool) {
		g.errorf("%s.%s: -records cannot convert a %s of %s yet", owner, mn, s.Type, g.storeType(r))
		return "", "", false
	}
	if g.enumOnWire(r, f) {
		if s.Type == "list" {
			g.used["slices"] = true
			return "slices.Clone(" + w + ")", "slices.Clone(" + x + ")", true
		}
		return w, x, true
	}
	switch s.Type {
	case "string":
		switch {
		case f.typ == "string":
			return w, x, true
		case g.wire.strings[f.typ]:
			return "string(" + w + ")", g.alias + "." + f.typ + "(" + x + ")", true
		}
		return mismatch()
	case "integer", "long", "double", "float", "boolean", "timestamp":
		t := g.storeType(r)
		if f.typ != t {
			return mismatch()
		}
		if strings.HasPrefix(t, "*") {
			g.used["copyPtr"] = true
			return "copyPtr(" + w + ")", "copyPtr(" + x + ")", true
		}
		return w, x, true
	case "blob":
		if f.typ != "[]byte" {
			return mismatch()
		}
		g.used["slices"] = true
		return "slices.Clone(" + w + ")", "slices.Clone(" + x + ")", true
	case "structure":
		if s.Document {
			if f.typ != "any" && f.typ != "interface{}" {
				return mismatch()
			}
			return w, x, true
		}
		if f.typ != "*"+r.Shape {
			return mismatch()
		}
		g.used["convertPtr"] = true
		return fmt.Sprintf("convertPtr(%s, %sFromWire)", w, r.Shape), fmt.Sprintf("convertPtr(%s, (*%s).Wire)", x, r.Shape), true
	case "list":
		elem, wireElem := g.m.Shapes[s.Member.Shape], strings.TrimPrefix(f.typ, "[]")
		if !strings.HasPrefix(f.typ, "[]") {
			return mismatch()
		}
		switch elem.Type {
		case "structure":
			if elem.Document {
				return unsupported()
			}
			if wireElem != s.Member.Shape {
				return mismatch()
			}
			g.used["convertSlice"] = true
			return fmt.Sprintf("convertSlice(%s, %sFromWire)", w, s.Member.Shape), fmt.Sprintf("convertSlice(%s, (*%s).Wire)", x, s.Member.Shape), true
		case "string":
			switch {
			case wireElem == "string":
				g.used["slices"] = true
				return "slices.Clone(" + w + ")", "slices.Clone(" + x + ")", true
			case g.wire.strings[wireElem]:
				g.used["enumStrings"], g.used["stringEnums"] = true, true
				return "enumStrings(" + w + ")", fmt.Sprintf("stringEnums[%s.%s](%s)", g.alias, wireElem, x), true
			}
			return mismatch()
		case "integer", "long", "double", "float", "boolean":
			if f.typ != g.storeType(r) {
				return mismatch()
			}
			g.used["slices"] = true
			return "slices.Clone(" + w + ")", "slices.Clone(" + x + ")", true
		}
		return unsupported()
	case "map":
		key, value := g.m.Shapes[s.Key.Shape], g.m.Shapes[s.Value.Shape]
		if key.Type != "string" || value.Type != "string" {
			return unsupported()
		}
		if f.typ != "map[string]string" {
			return mismatch()
		}
		g.used["maps"] = true
		return "maps.Clone(" + w + ")", "maps.Clone(" + x + ")", true
	}
	return unsupported()
}

// helpers writes the generic helpers the converters use.
func (g *recordGen) helpers(b *bytes.Buffer) {
	if g.used["convertPtr"] {
		b.WriteString(`// convertPtr converts *p with f; nil stays nil.
func convertPtr[T, U any](p *T, f func(*T) U) *U {
	if p == nil {
		return nil
	}
	u := f(p)
	return &u
}

`)
	}
	if g.used["convertSlice"] {
		b.WriteString(`// convertSlice converts every element of s with f; nil stays nil and
// empty stays empty, as JSON tells them apart.
func convertSlice[T, U any](s []T, f func(*T) U) []U {
	if s == nil {
		return nil
	}
	out := make([]U, len(s))
	for i := range s {
		out[i] = f(&s[i])
	}
	return out
}

`)
	}
	if g.used["copyPtr"] {
		b.WriteString(`// copyPtr returns a pointer to a copy of *p; nil stays nil.
func copyPtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

`)
	}
	if g.used["enumStrings"] {
		b.WriteString(`// enumStrings returns enumeration values as plain strings.
func enumStrings[T ~string](s []T) []string {
	if s == nil {
		return nil
	}
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = string(v)
	}
	return out
}

// stringEnums returns plain strings as values of the enumeration T.
func stringEnums[T ~string](s []string) []T {
	if s == nil {
		return nil
	}
	out := make([]T, len(s))
	for i, v := range s {
		out[i] = T(v)
	}
	return out
}

`)
	}
}
