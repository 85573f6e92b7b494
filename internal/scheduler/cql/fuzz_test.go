package cql

import (
	"testing"
	"time"
)

// fuzzInstances are the instances a round trip must agree on.
var fuzzInstances = []*Instance{
	web, gpu, bare,
	{
		Attributes:        map[string]string{"a": "1", "b": "", "x": "y z", "c": "-2.5e3"},
		AgentConnected:    true,
		AgentVersion:      "2.0.0-rc.1",
		EC2InstanceID:     "i-0",
		RegisteredAt:      time.Date(2000, 1, 1, 0, 0, 0, 500, time.UTC),
		RunningTasksCount: 100,
		TaskGroups:        []string{"a", "b", "family:x"},
	},
}

// FuzzParse checks that Parse never panics, that its errors are
// *SyntaxError pointing into the input, and that a parsed expression's
// String parses back to an expression with the same String and the same
// Match results.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"attribute:ecs.instance-type == t2.small",
		"attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
		"attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d",
		"task:group == service:production",
		"not(task:group == database)",
		"runningTasksCount == 1",
		"agentVersion < 1.14.5",
		"registeredAt < 2018-02-13",
		"ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']",
		"agentConnected != false && registeredAt >= 2018-06-18T22:28:28+00:00",
		"(attribute:a > 0 or attribute:b !exists) and !(task:group not_in [x, \"y z\"])",
		"attribute:x =~ '(?i)a b' || attribute:x !~ (a|[)])\\Q)\\E",
		"attribute:x matches \\p{Alpha}+\\u0041\\0101[\\h]",
		"NOT attribute:x EXISTS AND agentVersion GREATER_THAN_EQUAL v1.0.0-beta",
		"((",
		"attribute:x == 'unterminated",
		"runningTasksCount =~ 1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			se, ok := err.(*SyntaxError)
			if !ok {
				t.Fatalf("Parse(%q) error %T %v is not a *SyntaxError", s, err, err)
			}
			if se.Pos < 0 || se.Pos > len(s) {
				t.Fatalf("Parse(%q) error position %d outside [0, %d]: %v", s, se.Pos, len(s), err)
			}
			if se.Msg == "" {
				t.Fatalf("Parse(%q) error has no message", s)
			}
			return
		}
		if e == nil {
			t.Fatalf("Parse(%q) returned neither an expression nor an error", s)
		}
		rendered := e.String()
		// The canonical form spells operators out and adds spaces, so it
		// may pass the length limit that the input was within.
		again, err := parse(rendered)
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q, which does not parse: %v", s, rendered, err)
		}
		if got := again.String(); got != rendered {
			t.Fatalf("Parse(%q) renders as %q, which renders as %q", s, rendered, got)
		}
		for i, in := range fuzzInstances {
			if a, b := e.Match(in), again.Match(in); a != b {
				t.Fatalf("instance %d: Parse(%q).Match = %v but its rendering %q gives %v", i, s, a, rendered, b)
			}
		}
	})
}
