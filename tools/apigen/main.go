// Command apigen generates the wire types, input validation and operation
// table of an AWS JSON 1.1 service from its botocore service model. It copies
// no documentation text from the model.
//
//	apigen -service ecs -package ecs -out internal/api/ecs
//
// Two more modes serve stored records (see records.go): -pin writes the
// shapes reachable from -roots to a pinned schema file, and -records
// generates storage types and their wire converters from such a file.
//
//	apigen -pin internal/ecs/state/schema/ecs.json -service ecs -roots Cluster,Task
//	apigen -records -schema schema/ecs.json -package state -wire github.com/wharfhq/wharf/internal/api/ecs -out .
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"go/format"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode"
)

type model struct {
	Metadata   map[string]any        `json:"metadata"`
	Operations map[string]operation  `json:"operations"`
	Shapes     map[string]*shapeSpec `json:"shapes"`
}

type operation struct {
	Name     string `json:"name"`
	Input    *ref   `json:"input"`
	Output   *ref   `json:"output"`
	ReadOnly bool   `json:"readonly"`
}

type ref struct {
	Shape          string `json:"shape"`
	Box            bool   `json:"box"`
	IdempotencyTok bool   `json:"idempotencyToken"`
}

type shapeSpec struct {
	Type      string          `json:"type"`
	Members   map[string]*ref `json:"members"`
	Required  []string        `json:"required"`
	Member    *ref            `json:"member"`
	Key       *ref            `json:"key"`
	Value     *ref            `json:"value"`
	Enum      []string        `json:"enum"`
	Min       *float64        `json:"min"`
	Max       *float64        `json:"max"`
	Pattern   string          `json:"pattern"`
	Box       bool            `json:"box"`
	Exception bool            `json:"exception"`
	Document  bool            `json:"document"`
}

type config struct {
	service, pkg, out, modelPath, invalidCode, unsupportedCode, enumForm string

	pin, roots, schema, wire string
	records                  bool
}

func main() {
	var c config
	flag.StringVar(&c.service, "service", "", "botocore service directory name, e.g. ecs")
	flag.StringVar(&c.pkg, "package", "", "Go package name of the output")
	flag.StringVar(&c.out, "out", ".", "output directory")
	flag.StringVar(&c.modelPath, "model", "", "path of service-2.json(.gz); found in the installed botocore when empty")
	flag.StringVar(&c.invalidCode, "invalid-code", "InvalidParameterException", "error code for input that fails the model's constraints")
	flag.StringVar(&c.unsupportedCode, "unsupported-code", "UnsupportedFeatureException", "error code for operations the server does not implement")
	flag.StringVar(&c.enumForm, "enum-form", "model", `how a value outside an enumeration is reported: "model" (in the "N validation errors detected" list) or "one-of" ("<field> should be one of [A,B]", as ECS; the package defines enumLabels, a map of member names to the words ECS uses instead)`)
	flag.StringVar(&c.pin, "pin", "", "write the shapes reachable from -roots, without documentation, to this schema file instead of generating code")
	flag.StringVar(&c.roots, "roots", "", "with -pin: comma-separated root shapes, e.g. Cluster,Task")
	flag.BoolVar(&c.records, "records", false, "generate storage types and wire converters (zz_generated_records.go) from the -schema pinned with -pin")
	flag.StringVar(&c.schema, "schema", "", "with -records: the pinned schema file")
	flag.StringVar(&c.wire, "wire", "", "with -records: import path of the package of the wire types")
	flag.Parse()
	switch {
	case c.pin != "":
		if c.service == "" || c.roots == "" {
			log.Fatal("apigen: -pin needs -service and -roots")
		}
		if err := pin(c); err != nil {
			log.Fatalf("apigen: %v", err)
		}
		return
	case c.records:
		if c.schema == "" || c.pkg == "" || c.wire == "" {
			log.Fatal("apigen: -records needs -schema, -package and -wire")
		}
		if err := records(c); err != nil {
			log.Fatalf("apigen: %v", err)
		}
		return
	}
	if c.service == "" || c.pkg == "" {
		log.Fatal("apigen: -service and -package are required")
	}
	if c.enumForm != "model" && c.enumForm != "one-of" {
		log.Fatalf("apigen: -enum-form must be model or one-of, not %q", c.enumForm)
	}
	if err := run(c); err != nil {
		log.Fatalf("apigen: %v", err)
	}
}

func run(c config) error {
	path, version, err := modelPath(c)
	if err != nil {
		return err
	}
	c.modelPath = path
	m, err := load(c.modelPath)
	if err != nil {
		return err
	}
	g := &gen{m: m, c: c, version: version}
	files := map[string]func() []byte{
		"zz_generated_types.go":    g.types,
		"zz_generated_validate.go": g.validation,
		"zz_generated_service.go":  g.service,
	}
	for name, f := range files {
		src := f()
		out, err := format.Source(src)
		if err != nil {
			os.WriteFile(filepath.Join(c.out, name+".broken"), src, 0o644)
			return fmt.Errorf("format %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(c.out, name), out, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// modelPath returns the model file of c.service and the botocore version it
// comes from: -model if given (version "unknown"), else the newest API
// version in the installed botocore.
func modelPath(c config) (path, version string, err error) {
	if c.modelPath != "" {
		return c.modelPath, "unknown", nil
	}
	dir, version, err := botocoreData()
	if err != nil {
		return "", "", err
	}
	matches, _ := filepath.Glob(filepath.Join(dir, c.service, "*", "service-2.json*"))
	if len(matches) == 0 {
		return "", "", fmt.Errorf("no model for %q under %s", c.service, dir)
	}
	sort.Strings(matches)
	return matches[len(matches)-1], version, nil
}

// botocoreData asks the installed botocore where its models live.
func botocoreData() (dir, version string, err error) {
	out, err := exec.Command("python3", "-c", "import botocore,os;print(os.path.join(os.path.dirname(botocore.__file__),'data'));print(botocore.__version__)").Output()
	if err != nil {
		return "", "", fmt.Errorf("find botocore (pip install botocore, or pass -model): %w", err)
	}
	lines := strings.Fields(string(out))
	if len(lines) != 2 {
		return "", "", fmt.Errorf("unexpected botocore answer %q", out)
	}
	return lines[0], lines[1], nil
}

func load(path string) (*model, error) {
	raw, err := readModel(path)
	if err != nil {
		return nil, err
	}
	var m model
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return &m, nil
}

// readModel returns the bytes of a model file, gunzipped if it ends in .gz.
func readModel(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		r = gz
	}
	return io.ReadAll(r)
}

type gen struct {
	m       *model
	c       config
	version string

	reachIn  map[string]bool // structures reachable from operation inputs
	reachAll map[string]bool // shapes reachable from inputs or outputs
}

func (g *gen) header(b *bytes.Buffer, imports ...string) {
	fmt.Fprintf(b, "// Code generated by tools/apigen from the botocore %s model %s; DO NOT EDIT.\n\n", g.c.service, g.version)
	fmt.Fprintf(b, "package %s\n\n", g.c.pkg)
	if len(imports) > 0 {
		b.WriteString("import (\n")
		for _, i := range imports {
			fmt.Fprintf(b, "%q\n", i)
		}
		b.WriteString(")\n\n")
	}
}

func (g *gen) walk(name string, seen map[string]bool) {
	if seen[name] {
		return
	}
	seen[name] = true
	s := g.m.Shapes[name]
	for _, r := range s.Members {
		g.walk(r.Shape, seen)
	}
	for _, r := range []*ref{s.Member, s.Key, s.Value} {
		if r != nil {
			g.walk(r.Shape, seen)
		}
	}
}

func (g *gen) reach() {
	if g.reachIn != nil {
		return
	}
	g.reachIn, g.reachAll = map[string]bool{}, map[string]bool{}
	for _, op := range g.m.Operations {
		if op.Input != nil {
			g.walk(op.Input.Shape, g.reachIn)
			g.walk(op.Input.Shape, g.reachAll)
		}
		if op.Output != nil {
			g.walk(op.Output.Shape, g.reachAll)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func exported(s string) string {
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

var bigRepeat = regexp.MustCompile(`\{(\d+),\d{4,}\}`)

var nonWord = regexp.MustCompile(`[^A-Za-z0-9]+`)

// enumConst names the constant of an enum value: LaunchType + "EC2" → LaunchTypeEc2.
func enumConst(typ, value string) string {
	var b strings.Builder
	b.WriteString(typ)
	for _, part := range nonWord.Split(value, -1) {
		if part == "" {
			continue
		}
		rest := part[1:]
		if strings.ToUpper(part) == part {
			rest = strings.ToLower(rest)
		}
		b.WriteString(strings.ToUpper(part[:1]) + rest)
	}
	return b.String()
}

// goType is the Go type of a member that refers to shape name.
func (g *gen) goType(r *ref) string {
	s := g.m.Shapes[r.Shape]
	boxed := r.Box || s.Box
	switch s.Type {
	case "string":
		if len(s.Enum) > 0 {
			return r.Shape
		}
		return "string"
	case "integer":
		if boxed {
			return "*int32"
		}
		return "int32"
	case "long":
		if boxed {
			return "*int64"
		}
		return "int64"
	case "double", "float":
		if boxed {
			return "*float64"
		}
		return "float64"
	case "boolean":
		if boxed {
			return "*bool"
		}
		return "bool"
	case "timestamp":
		return "*api.Time"
	case "blob":
		return "[]byte"
	case "structure":
		if s.Document {
			return "any"
		}
		return "*" + r.Shape
	case "list":
		return "[]" + g.elemType(s.Member)
	case "map":
		return "map[string]" + g.elemType(s.Value)
	}
	panic("unknown shape type " + s.Type)
}

// elemType is the Go type of a list element or map value: structures are
// held by value there.
func (g *gen) elemType(r *ref) string {
	t := g.goType(r)
	if s := g.m.Shapes[r.Shape]; s.Type == "structure" && !s.Document {
		return strings.TrimPrefix(t, "*")
	}
	return t
}

// omitTag is how a member is left out of JSON: boxed numbers and booleans
// when absent; lists and maps only when nil, so that an empty list the
// server means to send is sent, as AWS sends it.
func (g *gen) omitTag(r *ref) string {
	s := g.m.Shapes[r.Shape]
	switch s.Type {
	case "integer", "long", "double", "float", "boolean":
		if r.Box || s.Box {
			return ",omitempty"
		}
		return ""
	case "list", "map":
		return ",omitzero"
	}
	return ",omitempty"
}

func (g *gen) types() []byte {
	g.reach()
	var b bytes.Buffer
	g.header(&b, "github.com/wharfhq/wharf/internal/api")
	b.WriteString("var _ api.Time\n\n")
	for _, name := range sortedKeys(g.m.Shapes) {
		s := g.m.Shapes[name]
		if !g.reachAll[name] || s.Exception {
			continue
		}
		switch {
		case s.Type == "string" && len(s.Enum) > 0:
			fmt.Fprintf(&b, "type %s string\n\nconst (\n", name)
			seen := map[string]bool{}
			for _, v := range s.Enum {
				c := enumConst(name, v)
				for seen[c] {
					c += "_"
				}
				seen[c] = true
				fmt.Fprintf(&b, "%s %s = %q\n", c, name, v)
			}
			b.WriteString(")\n\n")
			fmt.Fprintf(&b, "// Values returns every value of %s.\nfunc (%s) Values() []string { return %sValues }\n\n", name, name, lowerFirst(name))
			fmt.Fprintf(&b, "var %sValues = []string{", lowerFirst(name))
			for _, v := range s.Enum {
				fmt.Fprintf(&b, "%q,", v)
			}
			b.WriteString("}\n\n")
		case s.Type == "structure" && !s.Document:
			fmt.Fprintf(&b, "type %s struct {\n", name)
			for _, mn := range sortedKeys(s.Members) {
				r := s.Members[mn]
				tag := mn + g.omitTag(r)
				fmt.Fprintf(&b, "%s %s `json:%q`\n", exported(mn), g.goType(r), tag)
			}
			b.WriteString("}\n\n")
		}
	}
	return b.Bytes()
}

func lowerFirst(s string) string {
	r := []rune(s)
	r[0] = unicode.ToLower(r[0])
	return string(r)
}

// goPattern turns a model pattern into a Go regexp plus extra conditions for
// the look-around constructs Go's regexp lacks.
func goPattern(p string) (re string, notPrefix string, maxLen int, err error) {
	if m := regexp.MustCompile(`^\^?\(\?!([^()]*)\)`).FindStringSubmatch(p); m != nil {
		notPrefix = m[1]
		p = "^" + p[len(m[0]):]
	}
	if m := regexp.MustCompile(`\(\?=\^\.\{1,(\d+)\}\$\)`).FindStringSubmatch(p); m != nil {
		fmt.Sscan(m[1], &maxLen)
		p = strings.Replace(p, m[0], "", 1)
	}
	// Go's regexp caps repeat counts at 1000; the length limits of the
	// shape bound such strings anyway.
	p = bigRepeat.ReplaceAllString(p, "{$1,}")
	if !strings.HasPrefix(p, "^") {
		p = "^(?:" + p + ")"
	}
	if !strings.HasSuffix(p, "$") || strings.HasSuffix(p, `\$`) {
		p += "$"
	}
	_, err = regexp.Compile(p)
	return p, notPrefix, maxLen, err
}

func (g *gen) validation() []byte {
	g.reach()
	var b bytes.Buffer
	var body bytes.Buffer
	patterns := map[string]string{}
	inputs := map[string]bool{}
	for _, o := range g.m.Operations {
		if o.Input != nil {
			inputs[o.Input.Shape] = true
		}
	}

	for _, name := range sortedKeys(g.m.Shapes) {
		s := g.m.Shapes[name]
		if !g.reachIn[name] || s.Type != "structure" || s.Document || s.Exception || (!inputs[name] && !g.needsChecks(name, map[string]bool{})) {
			continue
		}
		fmt.Fprintf(&body, "func (x *%s) validate(v *api.Validator, path string) {\n", name)
		fmt.Fprintf(&body, "if x == nil { return }\n")
		required := map[string]bool{}
		for _, r := range s.Required {
			required[r] = true
		}
		for _, mn := range sortedKeys(s.Members) {
			r := s.Members[mn]
			field := "x." + exported(mn)
			p := fmt.Sprintf("join(path, %q)", mn)
			g.memberChecks(&body, field, p, r, required[mn], patterns, 0)
		}
		body.WriteString("}\n\n")
	}
	for _, op := range sortedKeys(g.m.Operations) {
		o := g.m.Operations[op]
		if o.Input == nil {
			continue
		}
		fmt.Fprintf(&body, "// Validate checks x against the constraints of the service model.\n")
		fmt.Fprintf(&body, "func (x *%s) Validate() error {\nvar v api.Validator\nx.validate(&v, \"\")\nreturn v.Err(%q)\n}\n\n", o.Input.Shape, g.c.invalidCode)
	}

	imports := []string{"github.com/wharfhq/wharf/internal/api"}
	src := body.String()
	if strings.Contains(src, "utf8.") {
		imports = append(imports, "unicode/utf8")
	}
	if strings.Contains(src, "strconv.") {
		imports = append(imports, "strconv")
	}
	if strings.Contains(src, "strings.") {
		imports = append(imports, "strings")
	}
	if len(patterns) > 0 {
		imports = append(imports, "regexp")
	}
	sort.Strings(imports)
	g.header(&b, imports...)
	b.WriteString("func join(path, member string) string {\nif path == \"\" { return member }\nreturn path + \".\" + member\n}\n\n")
	if len(patterns) > 0 {
		b.WriteString("var (\n")
		for _, p := range sortedKeys(patterns) {
			fmt.Fprintf(&b, "%s = regexp.MustCompile(%q)\n", patterns[p], p)
		}
		b.WriteString(")\n\n")
	}
	b.WriteString(src)
	return b.Bytes()
}

// memberChecks writes the checks of one value at path p.
func (g *gen) memberChecks(b *bytes.Buffer, field, p string, r *ref, required bool, patterns map[string]string, depth int) {
	s := g.m.Shapes[r.Shape]
	t := g.goType(r)
	var inner bytes.Buffer
	if g.needsChecks(r.Shape, map[string]bool{}) {
		g.valueChecks(&inner, field, p, r, patterns, depth)
	}
	if !required && inner.Len() == 0 {
		return
	}
	var missing, present string
	switch {
	case strings.HasPrefix(field, "(&"):
		// An element of a slice of structures is never missing.
		b.Write(inner.Bytes())
		return
	case strings.HasPrefix(t, "*") || strings.HasPrefix(t, "[]") || strings.HasPrefix(t, "map[") || t == "any":
		missing, present = field+" == nil", field+" != nil"
	case t == "string" || len(s.Enum) > 0:
		missing, present = field+` == ""`, field+` != ""`
	default:
		// Unboxed numbers and booleans cannot be told absent from zero.
		b.Write(inner.Bytes())
		return
	}
	switch {
	case required && inner.Len() == 0:
		fmt.Fprintf(b, "if %s { v.Required(%s) }\n", missing, p)
	case required:
		fmt.Fprintf(b, "if %s { v.Required(%s) } else {\n%s}\n", missing, p, inner.Bytes())
	default:
		fmt.Fprintf(b, "if %s {\n%s}\n", present, inner.Bytes())
	}
}

// valueChecks writes the constraint checks of a present value.
func (g *gen) valueChecks(b *bytes.Buffer, field, p string, r *ref, patterns map[string]string, depth int) {
	s := g.m.Shapes[r.Shape]
	t := g.goType(r)
	val := field
	if strings.HasPrefix(t, "*") && s.Type != "structure" {
		val = "*" + field
	}
	switch s.Type {
	case "string":
		if len(s.Enum) > 0 {
			if g.c.enumForm == "one-of" {
				fmt.Fprintf(b, "if !api.In(string(%s), %sValues) { v.OneOf(%s, %sValues, enumLabels) }\n", val, lowerFirst(r.Shape), p, lowerFirst(r.Shape))
				return
			}
			fmt.Fprintf(b, "if !api.In(string(%s), %sValues) { v.Enum(%s, string(%s), %sValues) }\n", val, lowerFirst(r.Shape), p, val, lowerFirst(r.Shape))
			return
		}
		if s.Min != nil && *s.Min > 0 {
			fmt.Fprintf(b, "if utf8.RuneCountInString(%s) < %d { v.Add(\"Value '%%s' at '%%s' failed to satisfy constraint: Member must have length greater than or equal to %d\", %s, %s) }\n", val, int(*s.Min), int(*s.Min), val, p)
		}
		if s.Max != nil {
			fmt.Fprintf(b, "if utf8.RuneCountInString(%s) > %d { v.Add(\"Value at '%%s' failed to satisfy constraint: Member must have length less than or equal to %d\", %s) }\n", val, int(*s.Max), int(*s.Max), p)
		}
		if s.Pattern != "" {
			re, notPrefix, maxLen, err := goPattern(s.Pattern)
			if err != nil {
				log.Fatalf("apigen: pattern of %s: %v", r.Shape, err)
			}
			v, ok := patterns[re]
			if !ok {
				v = fmt.Sprintf("pattern%d", len(patterns))
				patterns[re] = v
			}
			cond := fmt.Sprintf("!%s.MatchString(%s)", v, val)
			if notPrefix != "" {
				cond += fmt.Sprintf(" || strings.HasPrefix(%s, %q)", val, notPrefix)
			}
			if maxLen > 0 {
				cond += fmt.Sprintf(" || len(%s) > %d", val, maxLen)
			}
			fmt.Fprintf(b, "if %s { v.Add(\"Value '%%s' at '%%s' failed to satisfy constraint: Member must satisfy regular expression pattern: %%s\", %s, %s, %q) }\n", cond, val, p, s.Pattern)
		}
	case "integer", "long", "double", "float":
		if s.Min != nil {
			fmt.Fprintf(b, "if %s < %v { v.Add(\"Value '%%v' at '%%s' failed to satisfy constraint: Member must have value greater than or equal to %v\", %s, %s) }\n", val, *s.Min, *s.Min, val, p)
		}
		if s.Max != nil {
			fmt.Fprintf(b, "if %s > %v { v.Add(\"Value '%%v' at '%%s' failed to satisfy constraint: Member must have value less than or equal to %v\", %s, %s) }\n", val, *s.Max, *s.Max, val, p)
		}
	case "structure":
		if !s.Document {
			fmt.Fprintf(b, "%s.validate(v, %s)\n", field, p)
		}
	case "list":
		if s.Min != nil && *s.Min > 0 {
			fmt.Fprintf(b, "if len(%s) < %d { v.Add(\"Value at '%%s' failed to satisfy constraint: Member must have length greater than or equal to %d\", %s) }\n", field, int(*s.Min), int(*s.Min), p)
		}
		if s.Max != nil {
			fmt.Fprintf(b, "if len(%s) > %d { v.Add(\"Value at '%%s' failed to satisfy constraint: Member must have length less than or equal to %d\", %s) }\n", field, int(*s.Max), int(*s.Max), p)
		}
		if g.needsChecks(s.Member.Shape, map[string]bool{}) {
			it := fmt.Sprintf("e%d", depth)
			idx := fmt.Sprintf("i%d", depth)
			elem := it
			if g.m.Shapes[s.Member.Shape].Type == "structure" {
				elem = "(&" + field + "[" + idx + "])"
				fmt.Fprintf(b, "for %s := range %s {\n", idx, field)
			} else {
				fmt.Fprintf(b, "for %s, %s := range %s {\n", idx, it, field)
			}
			ep := fmt.Sprintf("%s+\".\"+strconv.Itoa(%s+1)+\".member\"", p, idx)
			g.memberChecks(b, elem, ep, &ref{Shape: s.Member.Shape}, false, patterns, depth+1)
			b.WriteString("}\n")
		}
	case "map":
		if g.needsChecks(s.Key.Shape, map[string]bool{}) || g.needsChecks(s.Value.Shape, map[string]bool{}) {
			k, e := fmt.Sprintf("k%d", depth), fmt.Sprintf("m%d", depth)
			fmt.Fprintf(b, "for %s, %s := range %s {\n_ = %s\n", k, e, field, e)
			g.memberChecks(b, k, fmt.Sprintf("%s+\".\"+%s", p, k), &ref{Shape: s.Key.Shape}, false, patterns, depth+1)
			if g.m.Shapes[s.Value.Shape].Type == "structure" {
				fmt.Fprintf(b, "%s := %s\n", e+"v", e)
				e = "(&" + e + "v)"
			}
			g.memberChecks(b, e, fmt.Sprintf("%s+\".\"+%s", p, k), &ref{Shape: s.Value.Shape}, false, patterns, depth+1)
			b.WriteString("}\n")
		}
	}
}

// needsChecks reports whether values of shape name have any constraint.
func (g *gen) needsChecks(name string, seen map[string]bool) bool {
	if seen[name] {
		return false
	}
	seen[name] = true
	s := g.m.Shapes[name]
	switch s.Type {
	case "structure":
		if s.Document {
			return false
		}
		if len(s.Required) > 0 {
			return true
		}
		for _, m := range s.Members {
			if g.needsChecks(m.Shape, seen) {
				return true
			}
		}
		return false
	case "list":
		return s.Min != nil || s.Max != nil || g.needsChecks(s.Member.Shape, seen)
	case "map":
		return g.needsChecks(s.Key.Shape, seen) || g.needsChecks(s.Value.Shape, seen)
	default:
		return len(s.Enum) > 0 || s.Min != nil || s.Max != nil || s.Pattern != ""
	}
}

func (g *gen) service() []byte {
	var b bytes.Buffer
	g.header(&b, "context", "github.com/wharfhq/wharf/internal/api")
	fmt.Fprintf(&b, "// TargetPrefix is the service's X-Amz-Target prefix.\nconst TargetPrefix = %q\n\n", g.m.Metadata["targetPrefix"])
	signing, _ := g.m.Metadata["signingName"].(string)
	if signing == "" {
		signing, _ = g.m.Metadata["endpointPrefix"].(string)
	}
	fmt.Fprintf(&b, "// SigningName is the service name in SigV4 credential scopes.\nconst SigningName = %q\n\n", signing)
	fmt.Fprintf(&b, "// InvalidInputCode is the error code for input that fails the model's constraints.\nconst InvalidInputCode = %q\n\n", g.c.invalidCode)

	ops := sortedKeys(g.m.Operations)
	b.WriteString("// API is every operation of the service.\ntype API interface {\n")
	for _, name := range ops {
		in, out := g.opTypes(name)
		fmt.Fprintf(&b, "%s(ctx context.Context, in *%s) (*%s, error)\n", name, in, out)
	}
	b.WriteString("}\n\n")

	b.WriteString("// Unimplemented answers every operation with an error; embed it in an\n// implementation that serves a subset of the API.\ntype Unimplemented struct{}\n\n")
	for _, name := range ops {
		in, out := g.opTypes(name)
		fmt.Fprintf(&b, "func (Unimplemented) %s(context.Context, *%s) (*%s, error) { return nil, unsupported(%q) }\n", name, in, out, name)
	}
	fmt.Fprintf(&b, "\nfunc unsupported(op string) error {\nreturn api.ClientError(%q, \"Wharf does not support the \"+op+\" operation yet\")\n}\n\n", g.c.unsupportedCode)
	b.WriteString("// Operations returns the operation table of s, keyed by operation name.\n")
	b.WriteString("func Operations(s API) map[string]api.Operation {\nreturn map[string]api.Operation{\n")
	for _, name := range ops {
		in, _ := g.opTypes(name)
		fmt.Fprintf(&b, "%q: {ReadOnly: %v, Invoke: func(ctx context.Context, decode func(any) error) (any, error) {\n", name, g.m.Operations[name].ReadOnly || isRead(name))
		fmt.Fprintf(&b, "in := new(%s)\nif err := decode(in); err != nil { return nil, err }\n", in)
		fmt.Fprintf(&b, "if err := in.Validate(); err != nil { return nil, err }\n")
		fmt.Fprintf(&b, "out, err := s.%s(ctx, in)\nif err != nil { return nil, err }\nreturn out, nil\n}},\n", name)
	}
	b.WriteString("}\n}\n")
	return b.Bytes()
}

func isRead(op string) bool {
	for _, p := range []string{"Describe", "List", "Get", "Discover"} {
		if strings.HasPrefix(op, p) {
			return true
		}
	}
	return false
}

func (g *gen) opTypes(name string) (in, out string) {
	o := g.m.Operations[name]
	in, out = "struct{}", "struct{}"
	if o.Input != nil {
		in = o.Input.Shape
	}
	if o.Output != nil {
		out = o.Output.Shape
	}
	return in, out
}
