package telemetry

import (
	"math"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name, in string
		want     map[string]float64 // by key
		family   string             // of every sample
		typ      string
	}{
		{"counter", "# HELP c Things.\n# TYPE c counter\nc{b=\"2\",a=\"1\"} 3\n", map[string]float64{`c{a="1",b="2"}`: 3}, "c", "counter"},
		{"no labels, timestamp, comments, blank lines", "# a comment\n\nc 1.5 1700000000000\n  \n", map[string]float64{`c{}`: 1.5}, "c", ""},
		{"empty braces, spaces, trailing comma", "c{ } 1\nd{ a = \"x\" , } 2\n", map[string]float64{`c{}`: 1, `d{a="x"}`: 2}, "", ""},
		{"escapes", `c{a="q\"b\\n\n"} 1` + "\n", map[string]float64{`c{a="q\"b\\n\n"}`: 1}, "c", ""},
		{"histogram", "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 3.5\nh_count 2\n",
			map[string]float64{`h_bucket{le="+Inf"}`: 2, `h_sum{}`: 3.5, `h_count{}`: 2}, "h", "histogram"},
		{"suffix of a non-histogram", "# TYPE h gauge\nh_count 2\n", map[string]float64{`h_count{}`: 2}, "h_count", ""},
		{"no final newline", "c 1", map[string]float64{`c{}`: 1}, "c", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			txt, err := parse(tc.in, 10)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if len(txt.samples) != len(tc.want) {
				t.Errorf("got %d samples, want %d", len(txt.samples), len(tc.want))
			}
			for k, v := range tc.want {
				s, ok := txt.samples[k]
				if !ok || s.value != v {
					t.Errorf("%s: got %v (present %v), want %v", k, s.value, ok, v)
					continue
				}
				if tc.family != "" && (s.family != tc.family || txt.families[s.family].typ != tc.typ) {
					t.Errorf("%s: family %s %q, want %s %q", k, s.family, txt.families[s.family].typ, tc.family, tc.typ)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	long := strings.Repeat("x", maxValueLen+1)
	cases := []struct{ name, in, want string }{
		{"no value", "c\n", "line 1: c: expected a space"},
		{"bad value", "c one\n", `bad value "one"`},
		{"bad timestamp", "c 1 soon\n", `bad timestamp "soon"`},
		{"trailing field", "c 1 2 3\n", "expected a space, a value"},
		{"no space", "c{a=\"b\"}1\n", "expected a space"},
		{"no name", "{a=\"b\"} 1\n", "expected a metric name"},
		{"unterminated value", "c{a=\"b} 1\n", "line 1: c: label a: unterminated value"},
		{"unknown escape", `c{a="\t"} 1`, `unknown escape \t`},
		{"unquoted value", "c{a=b} 1\n", "expected a quoted value"},
		{"missing comma", "c{a=\"b\" d=\"e\"} 1\n", "expected , or }"},
		{"label twice", "c{a=\"b\",a=\"c\"} 1\n", "label a appears twice"},
		{"long value", `c{a="` + long + `"} 1`, "longer than"},
		{"not UTF-8", "c{a=\"\xff\"} 1\n", "not UTF-8"},
		{"series twice", "c 1\nc{} 2\n", "series c{} appears twice"},
		{"too many series", "a 1\nb 1\nc 1\n", "line 3: more than 2 series"},
		{"unsupported type", "# TYPE s summary\n", `unsupported type "summary"`},
		{"type twice", "# TYPE c counter\n# TYPE c gauge\n", "second TYPE line"},
		{"bad type name", "# TYPE c-d counter\n", "unexpected '-'"},
		{"bare histogram sample", "# TYPE h histogram\nh 1\n", "needs a _bucket, _sum or _count suffix"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(tc.in, 2)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parse(%q): got error %v, want one containing %q", tc.in, err, tc.want)
			}
		})
	}
}

func TestAppendValue(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", 42: "42", -3: "-3", 1.75: "1.75", 1e15: "1e+15", 123456789: "123456789",
		0.0001: "0.0001", math.Inf(1): "+Inf", math.NaN(): "NaN",
	} {
		if got := string(appendValue(nil, v)); got != want {
			t.Errorf("appendValue(%v) = %q, want %q", v, got, want)
		}
	}
}

// FuzzParse checks that the parser never panics and that what it accepts
// round-trips: written out and parsed again, it is the same series.
func FuzzParse(f *testing.F) {
	f.Add(proxyText("apple", 3, 1))
	f.Add("# TYPE h histogram\nh_bucket{a=\"x\",le=\"0.5\"} 1\nh_bucket{le=\"+Inf\",a=\"x\"} 2 17\nh_sum{a=\"x\"} 0.25\nh_count{a=\"x\"} 2\n")
	f.Add("# HELP c a \\\\ b \\n c\nc{a=\"q\\\"\\\\\\n\"} NaN\nd -Inf\n# TYPE e untyped\ne_count 1e300\n")
	f.Add("c{ a = \"b\" , } 0x1p-3\n\n# comment\n")
	f.Fuzz(func(t *testing.T, in string) {
		first, err := parse(in, 100)
		if err != nil {
			return
		}
		var b strings.Builder
		if _, err := writeText(&b, first.families, first.samples); err != nil {
			t.Fatal(err)
		}
		second, err := parse(b.String(), 100)
		if err != nil {
			t.Fatalf("output does not parse: %v\ninput:\n%q\noutput:\n%q", err, in, b.String())
		}
		if len(second.samples) != len(first.samples) {
			t.Fatalf("%d samples, then %d\ninput:\n%q\noutput:\n%q", len(first.samples), len(second.samples), in, b.String())
		}
		for k, s := range first.samples {
			r, ok := second.samples[k]
			same := ok && (r.value == s.value && math.Signbit(r.value) == math.Signbit(s.value) || math.IsNaN(r.value) && math.IsNaN(s.value))
			if !same || r.labels != s.labels || r.family != s.family || r.cumulative != s.cumulative ||
				second.families[r.family] != first.families[s.family] {
				t.Fatalf("series %s changed: %+v %v, then %+v %v\noutput:\n%q", k, *s.series, s.value, r.series, r.value, b.String())
			}
		}
	})
}
