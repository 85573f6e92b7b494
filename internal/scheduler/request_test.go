package scheduler

import (
	"errors"
	"strings"
	"testing"

	"github.com/wharfhq/wharf/internal/scheduler/cql"
)

func TestPlaceRejectsInvalidRequests(t *testing.T) {
	many := func(n int, c Constraint) []Constraint {
		out := make([]Constraint, n)
		for i := range out {
			out[i] = c
		}
		return out
	}
	member := Constraint{Type: "memberOf", Expression: "attribute:ecs.os-type == linux"}
	for _, tc := range []struct {
		name string
		req  Request
		want string // a substring of the message; "" for valid
	}{
		{"valid", Request{Count: 1, Constraints: many(10, member), Strategies: []Strategy{
			{"spread", "attribute:ecs.availability-zone"}, {"spread", "instanceId"}, {"spread", "host"},
			{"binpack", "cpu"}, {"binpack", "memory"}}}, ""},
		{"random ignores its field", Request{Count: 1, Strategies: []Strategy{{"random", "whatever"}}}, ""},
		{"eleven constraints", Request{Count: 1, Constraints: many(11, member)}, "too many placement constraints: 11"},
		{"six strategies", Request{Count: 1, Strategies: []Strategy{
			{"random", ""}, {"random", ""}, {"random", ""}, {"random", ""}, {"random", ""}, {"random", ""}}}, "too many placement strategies: 6"},
		{"unknown constraint", Request{Count: 1, Constraints: []Constraint{{Type: "sameInstance"}}}, `unknown type "sameInstance"`},
		{"constraint type is case-sensitive", Request{Count: 1, Constraints: []Constraint{{Type: "DistinctInstance"}}}, "unknown type"},
		{"memberOf without expression", Request{Count: 1, Constraints: []Constraint{{Type: "memberOf"}}}, "memberOf needs an expression"},
		{"memberOf blank expression", Request{Count: 1, Constraints: []Constraint{{Type: "memberOf", Expression: "  "}}}, "memberOf needs an expression"},
		{"memberOf syntax", Request{Count: 1, Constraints: []Constraint{member, {Type: "memberOf", Expression: "attribute:a =="}}}, "placement constraint 2: memberOf expression"},
		{"distinctInstance with expression", Request{Count: 1, Constraints: []Constraint{{Type: "distinctInstance", Expression: "x"}}}, "distinctInstance takes no expression"},
		{"unknown strategy", Request{Count: 1, Strategies: []Strategy{{"pack", "cpu"}}}, `unknown type "pack"`},
		{"spread without field", Request{Count: 1, Strategies: []Strategy{{"spread", ""}}}, "spread needs a field"},
		{"spread bad field", Request{Count: 1, Strategies: []Strategy{{"spread", "cpu"}}}, `spread field "cpu"`},
		{"spread empty attribute", Request{Count: 1, Strategies: []Strategy{{"spread", "attribute:"}}}, "attribute name"},
		{"spread bad attribute", Request{Count: 1, Strategies: []Strategy{{"spread", "attribute:a b"}}}, "attribute name"},
		{"binpack bad field", Request{Count: 1, Strategies: []Strategy{{"binpack", "instanceId"}}}, `binpack field "instanceId"`},
		{"binpack field is case-sensitive", Request{Count: 1, Strategies: []Strategy{{"binpack", "MEMORY"}}}, "use cpu or memory"},
		{"negative count", Request{Count: -1}, "count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Place(nil, &tc.req)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Place: %v", err)
				}
				return
			}
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("Place error = %v, want a *RequestError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Place error = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestRequestErrorCarriesSyntaxError(t *testing.T) {
	err := ValidateConstraints([]Constraint{{Type: "memberOf", Expression: "attribute:ecs.instance-type ~= t2.*"}})
	var se *cql.SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("error %v does not wrap a *cql.SyntaxError", err)
	}
	if !strings.Contains(err.Error(), se.Msg) {
		t.Fatalf("error %q lacks cql's message %q", err, se.Msg)
	}
}

func TestValidateStrategies(t *testing.T) {
	if err := ValidateStrategies(ServiceDefault()); err != nil {
		t.Fatalf("ServiceDefault invalid: %v", err)
	}
	if err := ValidateStrategies([]Strategy{{"binpack", "gpu"}}); err == nil {
		t.Fatal("binpack(gpu) accepted")
	}
}

func TestServiceDefault(t *testing.T) {
	got := ServiceDefault()
	want := []Strategy{{"spread", "attribute:ecs.availability-zone"}, {"spread", "instanceId"}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("ServiceDefault = %v, want %v", got, want)
	}
	got[0].Field = "changed"
	if ServiceDefault()[0].Field != want[0].Field {
		t.Fatal("ServiceDefault returns a shared slice")
	}
}
