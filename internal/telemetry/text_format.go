package telemetry

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Bounds on what one proxy's text may hold.
const (
	maxNameLen  = 1 << 10 // a metric or label name
	maxValueLen = 1 << 10 // a label value
	maxLabels   = 32      // labels of one series
)

// series is the identity of one time series and how it aggregates.
type series struct {
	key        string // name and sorted labels: what aggregation matches on
	name       string // sample name, e.g. TargetResponseTime_bucket
	labels     string // as the proxy wrote them, escaped, without braces
	family     string // e.g. TargetResponseTime
	cumulative bool   // counter or histogram: kept in the sum when its proxy retires

	// The order within the family: labels without le, then
	// _bucket/_sum/_count, then le.
	base string
	rank int
	le   float64
}

type sample struct {
	*series
	value float64
}

// family is a metric family's metadata; typ is "" without a TYPE line.
type family struct{ typ, help string }

// text is one proxy's parsed metrics.
type text struct {
	samples  map[string]sample // by key
	families map[string]family // those with samples
}

type label struct{ name, value string }

type rawSample struct {
	name   string
	labels []label
	value  float64
}

// parse reads the subset of the Prometheus text format 0.0.4 that proxies
// write: HELP and TYPE comments, samples with optional labels and
// timestamp (ignored). Summaries are not supported.
func parse(s string, maxSeries int) (*text, error) {
	types := make(map[string]string)
	helps := make(map[string]string)
	var raws []rawSample
	for n := 1; s != ""; n++ {
		var ln string
		ln, s, _ = strings.Cut(s, "\n")
		var err error
		switch {
		case strings.TrimLeft(ln, " \t") == "":
		case strings.HasPrefix(ln, "# HELP "):
			var name, help string
			if name, help, err = metaLine(ln[len("# HELP "):]); err == nil {
				helps[name] = unescapeHelp(help)
			}
		case strings.HasPrefix(ln, "# TYPE "):
			var name, typ string
			if name, typ, err = metaLine(ln[len("# TYPE "):]); err != nil {
				break
			}
			switch typ = strings.TrimRight(typ, " \t"); {
			case types[name] != "":
				err = fmt.Errorf("second TYPE line for %s", name)
			case typ != "counter" && typ != "gauge" && typ != "histogram" && typ != "untyped":
				err = fmt.Errorf("unsupported type %q for %s", typ, name)
			default:
				types[name] = typ
			}
		case strings.HasPrefix(ln, "#"):
		case len(raws) == maxSeries:
			err = fmt.Errorf("more than %d series", maxSeries)
		default:
			var r rawSample
			if r, err = parseSample(ln); err == nil {
				raws = append(raws, r)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
	}
	t := &text{samples: make(map[string]sample, len(raws)), families: make(map[string]family)}
	for _, r := range raws {
		fam, typ := r.name, types[r.name]
		if typ == "" {
			if base, ok := histogramFamily(r.name); ok && types[base] == "histogram" {
				fam, typ = base, "histogram"
			}
		} else if typ == "histogram" {
			return nil, fmt.Errorf("sample %s of a histogram needs a _bucket, _sum or _count suffix", r.name)
		}
		s := newSeries(r.name, fam, r.labels, typ == "counter" || typ == "histogram")
		if _, dup := t.samples[s.key]; dup {
			return nil, fmt.Errorf("series %s appears twice", s.key)
		}
		t.samples[s.key] = sample{s, r.value}
		t.families[fam] = family{typ: typ, help: helps[fam]}
	}
	return t, nil
}

// metaLine splits what follows "# HELP " or "# TYPE ".
func metaLine(s string) (name, rest string, err error) {
	s = strings.TrimLeft(s, " \t")
	name = s[:nameLen(s, true)]
	rest = s[len(name):]
	switch {
	case name == "" || len(name) > maxNameLen:
		return "", "", errors.New("expected a metric name")
	case rest != "" && rest[0] != ' ' && rest[0] != '\t':
		return "", "", fmt.Errorf("unexpected %q after metric name %s", rest[0], name)
	}
	return name, strings.TrimLeft(rest, " \t"), nil
}

func histogramFamily(name string) (string, bool) {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			return base, true
		}
	}
	return "", false
}

// nameLen is the length of the name at the start of s: [a-zA-Z_:][a-zA-Z0-9_:]*,
// without colons for label names.
func nameLen(s string, colon bool) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || colon && c == ':' || i > 0 && '0' <= c && c <= '9') {
			return i
		}
	}
	return len(s)
}

func parseSample(ln string) (rawSample, error) {
	var r rawSample
	r.name = ln[:nameLen(ln, true)]
	if r.name == "" || len(r.name) > maxNameLen {
		return r, errors.New("expected a metric name")
	}
	rest := ln[len(r.name):]
	if strings.HasPrefix(rest, "{") {
		var err error
		if r.labels, rest, err = parseLabels(rest[1:]); err != nil {
			return r, fmt.Errorf("%s: %w", r.name, err)
		}
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 || len(fields) > 2 || (rest[0] != ' ' && rest[0] != '\t') {
		return r, fmt.Errorf("%s: expected a space, a value and an optional timestamp", r.name)
	}
	var err error
	if r.value, err = strconv.ParseFloat(fields[0], 64); err != nil {
		return r, fmt.Errorf("%s: bad value %q", r.name, fields[0])
	}
	if len(fields) == 2 {
		if _, err := strconv.ParseInt(fields[1], 10, 64); err != nil {
			return r, fmt.Errorf("%s: bad timestamp %q", r.name, fields[1])
		}
	}
	return r, nil
}

// parseLabels reads labels up to and including the closing brace.
func parseLabels(s string) ([]label, string, error) {
	var labels []label
	for {
		s = strings.TrimLeft(s, " \t")
		if strings.HasPrefix(s, "}") {
			return labels, s[1:], nil
		}
		name := s[:nameLen(s, false)]
		if name == "" || len(name) > maxNameLen {
			return nil, "", errors.New("expected a label name or }")
		}
		s = strings.TrimLeft(s[len(name):], " \t")
		if !strings.HasPrefix(s, "=") {
			return nil, "", fmt.Errorf("expected = after label %s", name)
		}
		s = strings.TrimLeft(s[1:], " \t")
		if !strings.HasPrefix(s, `"`) {
			return nil, "", fmt.Errorf("expected a quoted value for label %s", name)
		}
		value, rest, err := unquote(s[1:])
		if err != nil {
			return nil, "", fmt.Errorf("label %s: %w", name, err)
		}
		if slices.ContainsFunc(labels, func(l label) bool { return l.name == name }) {
			return nil, "", fmt.Errorf("label %s appears twice", name)
		}
		if len(labels) == maxLabels {
			return nil, "", fmt.Errorf("more than %d labels", maxLabels)
		}
		labels = append(labels, label{name, value})
		s = strings.TrimLeft(rest, " \t")
		if strings.HasPrefix(s, ",") {
			s = s[1:]
		} else if !strings.HasPrefix(s, "}") {
			return nil, "", fmt.Errorf("expected , or } after label %s", name)
		}
	}
}

// unquote reads a label value up to its closing quote.
func unquote(s string) (value, rest string, err error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if b.Len() > maxValueLen {
			return "", "", fmt.Errorf("value longer than %d bytes", maxValueLen)
		}
		switch c := s[i]; c {
		case '"':
			if !utf8.ValidString(b.String()) {
				return "", "", errors.New("value is not UTF-8")
			}
			return b.String(), s[i+1:], nil
		case '\\':
			if i++; i == len(s) {
				return "", "", errors.New("unterminated value")
			}
			switch s[i] {
			case '\\', '"':
				b.WriteByte(s[i])
			case 'n':
				b.WriteByte('\n')
			default:
				return "", "", fmt.Errorf(`unknown escape \%c`, s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", errors.New("unterminated value")
}

func unescapeHelp(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	return strings.NewReplacer(`\\`, `\`, `\n`, "\n").Replace(s)
}

var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)

func newSeries(name, fam string, labels []label, cumulative bool) *series {
	s := &series{name: name, family: fam, cumulative: cumulative, labels: formatLabels(labels, "")}
	sorted := slices.SortedFunc(slices.Values(labels), func(a, b label) int { return strings.Compare(a.name, b.name) })
	s.key = name + "{" + formatLabels(sorted, "") + "}"
	s.base = s.labels
	if fam != name {
		s.rank = slices.Index([]string{"_bucket", "_sum", "_count"}, name[len(fam):])
		if s.rank == 0 {
			s.base = formatLabels(labels, "le")
			for _, l := range labels {
				if l.name == "le" {
					s.le, _ = strconv.ParseFloat(l.value, 64)
				}
			}
		}
	}
	return s
}

// formatLabels writes labels as name="value",... leaving out skip.
func formatLabels(labels []label, skip string) string {
	var b []byte
	for _, l := range labels {
		if l.name == skip {
			continue
		}
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = append(b, l.name...)
		b = append(b, `="`...)
		for i := 0; i < len(l.value); i++ {
			switch c := l.value[i]; c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, `\n`...)
			default:
				b = append(b, c)
			}
		}
		b = append(b, '"')
	}
	return string(b)
}

func compareSeries(a, b sample) int {
	return cmp.Or(strings.Compare(a.base, b.base), cmp.Compare(a.rank, b.rank), cmp.Compare(a.le, b.le),
		strings.Compare(a.labels, b.labels), strings.Compare(a.name, b.name))
}

// appendValue formats v as Prometheus does: integers without a decimal point.
func appendValue(b []byte, v float64) []byte {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.AppendFloat(b, v, 'f', -1, 64)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// writeText writes samples in the text format, grouped by family, families
// sorted by name.
func writeText(w io.Writer, families map[string]family, samples map[string]sample) (int64, error) {
	byFamily := make(map[string][]sample)
	for _, s := range samples {
		byFamily[s.family] = append(byFamily[s.family], s)
	}
	var b []byte
	for _, name := range slices.Sorted(maps.Keys(byFamily)) {
		f := families[name]
		if f.help != "" {
			b = fmt.Appendf(b, "# HELP %s %s\n", name, helpEscaper.Replace(f.help))
		}
		if f.typ != "" {
			b = fmt.Appendf(b, "# TYPE %s %s\n", name, f.typ)
		}
		ss := byFamily[name]
		slices.SortFunc(ss, compareSeries)
		for _, s := range ss {
			b = append(b, s.name...)
			if s.labels != "" {
				b = append(append(append(b, '{'), s.labels...), '}')
			}
			b = append(appendValue(append(b, ' '), s.value), '\n')
		}
	}
	n, err := w.Write(b)
	return int64(n), err
}
