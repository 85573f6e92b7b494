package cql

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// Instances the tests evaluate against.
var (
	// web is a busy, connected T2 instance.
	web = &Instance{
		Attributes: map[string]string{
			"ecs.instance-type":     "t2.micro",
			"ecs.availability-zone": "us-east-1a",
			"ecs.os-type":           "linux",
			"stack":                 "prod",
			"cores":                 "8",
			"flag":                  "", // set, without a value
		},
		AgentConnected:    true,
		AgentVersion:      "1.14.5",
		EC2InstanceID:     "i-abcd1234",
		RegisteredAt:      time.Date(2018, 6, 18, 22, 28, 28, 0, time.UTC),
		RunningTasksCount: 3,
		TaskGroups:        []string{"service:production", "family:web", "service:production"},
	}
	// gpu is a G2 instance in us-east-1d running one database task.
	gpu = &Instance{
		Attributes: map[string]string{
			"ecs.instance-type":     "g2.2xlarge",
			"ecs.availability-zone": "us-east-1d",
			"stack":                 "dev",
		},
		AgentConnected:    true,
		AgentVersion:      "v1.15.0-beta.2",
		EC2InstanceID:     "i-wxyx7890",
		RegisteredAt:      time.Date(2018, 2, 1, 0, 0, 0, 0, time.UTC),
		RunningTasksCount: 1,
		TaskGroups:        []string{"database"},
	}
	// bare is a disconnected, empty external instance with nothing set.
	bare = &Instance{}
)

type matchCase struct {
	expr string
	in   *Instance
	want bool
}

func runMatch(t *testing.T, cases []matchCase) {
	t.Helper()
	for _, tc := range cases {
		name := tc.expr + "/" + instanceName(tc.in)
		t.Run(name, func(t *testing.T) {
			e, err := Parse(tc.expr)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.expr, err)
			}
			if got := e.Match(tc.in); got != tc.want {
				t.Errorf("Parse(%q).Match(%s) = %v, want %v", tc.expr, instanceName(tc.in), got, tc.want)
			}
		})
	}
}

func instanceName(in *Instance) string {
	switch in {
	case web:
		return "web"
	case gpu:
		return "gpu"
	case bare:
		return "bare"
	}
	return "other"
}

func TestMatchAgentConnected(t *testing.T) {
	runMatch(t, []matchCase{
		{"agentConnected == true", web, true},
		{"agentConnected == true", bare, false},
		{"agentConnected equals false", bare, true},
		{"agentConnected equals FALSE", web, false},
		{"agentConnected != true", web, false},
		{"agentConnected not_equals True", bare, true},
		{"agentConnected in [true, false]", web, true},
		{"agentConnected in [false]", web, false},
		{"agentConnected not_in [false]", web, true},
		{"agentConnected !in [false]", bare, false},
		{"agentConnected =~ t.*", web, true},
		{"agentConnected matches 't.*'", bare, false},
		{"agentConnected !~ t.*", bare, true},
		{"agentConnected not_matches true", web, false},
	})
}

func TestMatchAgentVersion(t *testing.T) {
	runMatch(t, []matchCase{
		{"agentVersion == 1.14.5", web, true},
		{"agentVersion == v1.14.5", web, true},
		{"agentVersion == 1.14.5.0", web, true},
		{"agentVersion == 1.14.4", web, false},
		{"agentVersion equals 1.14", web, false},
		{"agentVersion != 1.14.5", web, false},
		{"agentVersion not_equals 1.9.0", web, true},
		{"agentVersion > 1.9.0", web, true}, // numerically, not as strings
		{"agentVersion > 1.14.5", web, false},
		{"agentVersion greater_than 1.14.4", web, true},
		{"agentVersion >= 1.14.5", web, true},
		{"agentVersion greater_than_equal 1.15", web, false},
		{"agentVersion < 1.14.10", web, true},
		{"agentVersion < 1.14.5", web, false},
		{"agentVersion less_than 2", web, true},
		{"agentVersion <= 1.14.5", web, true},
		{"agentVersion less_than_equal 1.14.4", web, false},
		// A pre-release sorts before its release and after the one before.
		{"agentVersion < 1.15.0", gpu, true},
		{"agentVersion > 1.15.0-beta.1", gpu, true},
		{"agentVersion > 1.15.0-beta.10", gpu, false},
		{"agentVersion > 1.15.0-alpha", gpu, true},
		{"agentVersion == 1.15.0-beta.2+build7", gpu, true},
		// No version: nothing holds.
		{"agentVersion != 1.0.0", bare, false},
		{"agentVersion < 99", bare, false},
	})
}

func TestMatchAttribute(t *testing.T) {
	runMatch(t, []matchCase{
		{"attribute:ecs.instance-type == t2.micro", web, true},
		{"attribute:ecs.instance-type == t2.small", web, false},
		{"attribute:ecs.instance-type == t2.*", web, false}, // no wildcards in ==
		{"attribute:ecs.instance-type equals 't2.micro'", web, true},
		{"attribute:ecs.instance-type == T2.MICRO", web, false},
		{"attribute:flag == ''", web, true},
		{"attribute:flag == x", web, false},
		{"attribute:stack != prod", web, false},
		{"attribute:stack != prod", gpu, true},
		{"attribute:stack not_equals prod", bare, false}, // not set
		// Numbers compare as numbers, other values as strings.
		{"attribute:cores > 10", web, false},
		{"attribute:cores > 7.5", web, true},
		{"attribute:cores greater_than 8", web, false},
		{"attribute:cores >= 8", web, true},
		{"attribute:cores >= 8.5", web, false},
		{"attribute:cores greater_than_equal 8e0", web, true},
		{"attribute:cores < 10", web, true},
		{"attribute:cores < 8", web, false},
		{"attribute:cores less_than -1", web, false},
		{"attribute:cores <= 8.0", web, true},
		{"attribute:cores <= 7", web, false},
		{"attribute:cores less_than_equal 08", web, true},
		{"attribute:ecs.availability-zone > us-east-1", web, true},
		{"attribute:ecs.availability-zone < us-east-1b", web, true},
		{"attribute:ecs.availability-zone >= us-east-1b", web, false},
		{"attribute:ecs.os-type <= linux", web, true},
		{"attribute:cores < abc", web, true}, // "8" < "abc" as strings
		{"attribute:cores > 1", bare, false},
		{"attribute:stack exists", web, true},
		{"attribute:flag exists", web, true},
		{"attribute:stack exists", bare, false},
		{"attribute:stack !exists", web, false},
		{"attribute:stack !exists", bare, true},
		{"attribute:nope not_exists", web, true},
		{"attribute:flag not_exists", web, false},
		{"attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", web, true},
		{"attribute:ecs.availability-zone in [us-east-1c]", web, false},
		{"attribute:ecs.availability-zone in [us-east-1a]", bare, false},
		{"attribute:ecs.availability-zone not_in [us-east-1c]", web, true},
		{"attribute:ecs.availability-zone !in [us-east-1a, us-east-1b]", web, false},
		{"attribute:ecs.availability-zone not_in [us-east-1a]", bare, false},
		{"attribute:ecs.instance-type =~ t2.*", web, true},
		{"attribute:ecs.instance-type =~ g2.*", web, false},
		{"attribute:ecs.instance-type =~ 2.*", web, false}, // whole value
		{"attribute:ecs.instance-type matches (t2|m5)\\.(micro|large)", web, true},
		{"attribute:ecs.instance-type =~ '(?i)T2\\.MICRO'", web, true},
		{"attribute:ecs.instance-type !~ g2.*", web, true},
		{"attribute:ecs.instance-type not_matches t2\\..*", web, false},
		{"attribute:ecs.instance-type !~ g2.*", bare, false},
		{`attribute:a\b/c_d-e.f exists`, &Instance{Attributes: map[string]string{`a\b/c_d-e.f`: "x"}}, true},
	})
}

func TestMatchEC2InstanceID(t *testing.T) {
	runMatch(t, []matchCase{
		{"ec2InstanceId == i-abcd1234", web, true},
		{"ec2InstanceId equals i-wxyx7890", web, false},
		{"ec2InstanceId == i-abcd1234", bare, false},
		{"ec2InstanceId != i-wxyx7890", web, true},
		{"ec2InstanceId not_equals i-abcd1234", web, false},
		{"ec2InstanceId != i-abcd1234", bare, false},
		{"ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", web, true},
		{"ec2InstanceId in [i-0]", web, false},
		{"ec2InstanceId not_in [i-0]", web, true},
		{"ec2InstanceId !in [\"i-abcd1234\"]", web, false},
		{"ec2InstanceId =~ i-[0-9a-f]{8}", web, true},
		{"ec2InstanceId matches i-x.*", web, false},
		{"ec2InstanceId !~ i-x.*", web, true},
		{"ec2InstanceId not_matches i-.*", web, false},
	})
}

func TestMatchRegisteredAt(t *testing.T) {
	// web registered at 2018-06-18T22:28:28Z.
	runMatch(t, []matchCase{
		{"registeredAt == 2018-06-18", web, true},
		{"registeredAt == 2018-06-19", web, false},
		{"registeredAt == 2018-06-18T22:28:28Z", web, true},
		{"registeredAt == 2018-06-18T22:28:28+00:00", web, true},
		{"registeredAt == 2018-06-18T22:28:28", web, true},
		{"registeredAt == 2018-06-18T23:28:28+01:00", web, true},
		{"registeredAt equals 2018-06-18T22:28:29Z", web, false},
		{"registeredAt == 2018-06-18T22:28:28.000Z", web, true},
		{"registeredAt == 2018-06-18T22:28:28.001Z", web, false},
		{"registeredAt != 2018-06-18", web, false},
		{"registeredAt not_equals 2018-06-17", web, true},
		{"registeredAt < 2018-02-13", web, false},
		{"registeredAt < 2018-02-13", gpu, true},
		{"registeredAt < 2018-06-19", web, true},
		{"registeredAt less_than 2018-06-18", web, false}, // same day
		{"registeredAt <= 2018-06-18", web, true},
		{"registeredAt less_than_equal 2018-06-17", web, false},
		{"registeredAt > 2018-06-17", web, true},
		{"registeredAt greater_than 2018-06-18", web, false},
		{"registeredAt > 2018-06-18T22:28:27.5Z", web, true},
		{"registeredAt >= 2018-06-18", web, true},
		{"registeredAt greater_than_equal 2018-06-19", web, false},
		{"registeredAt >= 2018-06-18T22:28:28", web, true},
		{"registeredAt < 2030-01-01", bare, false}, // never registered
		{"registeredAt != 2030-01-01", bare, false},
	})
}

func TestMatchRunningTasksCount(t *testing.T) {
	runMatch(t, []matchCase{
		{"runningTasksCount == 3", web, true},
		{"runningTasksCount == 1", web, false},
		{"runningTasksCount == 0", bare, true},
		{"runningTasksCount equals 0", web, false},
		{"runningTasksCount != 3", web, false},
		{"runningTasksCount not_equals 0", web, true},
		{"runningTasksCount > 2", web, true},
		{"runningTasksCount greater_than 3", web, false},
		{"runningTasksCount >= 3", web, true},
		{"runningTasksCount greater_than_equal 4", web, false},
		{"runningTasksCount < 4", web, true},
		{"runningTasksCount less_than 3", web, false},
		{"runningTasksCount <= 3", web, true},
		{"runningTasksCount less_than_equal 2", web, false},
		{"runningTasksCount > -1", bare, true},
	})
}

func TestMatchTaskGroup(t *testing.T) {
	runMatch(t, []matchCase{
		// Affinity.
		{"task:group == service:production", web, true},
		{"task:group == service:production", gpu, false},
		{"task:group equals family:web", web, true},
		{"task:group == service:production", bare, false},
		// Anti-affinity, written both ways.
		{"not(task:group == database)", web, true},
		{"not(task:group == database)", gpu, false},
		{"not(task:group == database)", bare, true},
		{"task:group != database", web, true},
		{"task:group != database", gpu, false},
		{"task:group not_equals database", bare, true},
		{"task:group in [a, family:web]", web, true},
		{"task:group in [a, b]", web, false},
		{"task:group not_in [a, b]", web, true},
		{"task:group !in [family:web]", web, false},
		{"task:group !in [family:web]", bare, true},
		{"task:group =~ service:.*", web, true},
		{"task:group matches db.*", gpu, false},
		{"task:group !~ service:.*", web, false},
		{"task:group not_matches service:.*", gpu, true},
		{"task:group exists", web, true},
		{"task:group exists", bare, false},
		{"task:group !exists", bare, true},
		{"task:group not_exists", gpu, false},
	})
}

func TestMatchCompound(t *testing.T) {
	const (
		yes = "runningTasksCount == 3" // true on web
		no  = "runningTasksCount == 9" // false on web
	)
	runMatch(t, []matchCase{
		{yes + " || " + no + " && " + no, web, true}, // && binds tighter
		{"(" + yes + " || " + no + ") && " + no, web, false},
		{no + " && " + no + " || " + yes, web, true},
		{no + " and (" + no + " or " + yes + ")", web, false},
		{"!" + yes + " && " + no, web, false}, // ! binds tighter
		{"!(" + yes + " && " + no + ")", web, true},
		{"not " + yes + " or " + yes, web, true},
		{"NOT " + yes + " AND " + yes, web, false},
		{"! ! " + yes, web, true},
		{"not not not " + yes, web, false},
		{"((" + yes + "))", web, true},
		{yes + " && " + yes + " && " + yes, web, true},
		{no + " || " + no + " || " + no, web, false},
		{"runningTasksCount==3&&agentConnected==true", web, true},
		{"runningTasksCount==3||attribute:x==y", web, true},
		{"!(runningTasksCount>=3)", web, false},
		{"attribute:x !exists&&!(agentConnected==false)", web, true},
		{"attribute:ecs.instance-type=~t2.*&&runningTasksCount==9", web, false},
		{"attribute:ecs.instance-type=~g2.*||runningTasksCount==3", web, true},
		{"(attribute:ecs.instance-type=~(t2|g2).*)&&agentConnected==true", web, true},
		{"not(attribute:stack == prod) and not(task:group == database)", bare, true},
	})
}

// TestAWSExamples evaluates the examples of the ECS documentation.
func TestAWSExamples(t *testing.T) {
	runMatch(t, []matchCase{
		{"attribute:ecs.instance-type == t2.small", web, false},
		{"attribute:ecs.instance-type == g2.2xlarge", gpu, true},
		{"attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", web, true},
		{"attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", gpu, false},
		{"attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d", gpu, false},
		{"attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d",
			&Instance{Attributes: map[string]string{"ecs.instance-type": "g2.8xlarge", "ecs.availability-zone": "us-east-1a"}}, true},
		{"task:group == service:production", web, true},
		{"not(task:group == database)", gpu, false},
		{"runningTasksCount == 1", gpu, true},
		{"agentVersion < 1.14.5", web, false},
		{"agentVersion < 1.14.5", &Instance{AgentVersion: "1.9.0"}, true},
		{"registeredAt < 2018-02-13", gpu, true},
		{"ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", gpu, true},
		{"attribute:ecs.instance-type =~ t2.*", web, true},
		{"task:group == databases", gpu, false},
		{"attribute:stack == prod", web, true},
		{"attribute:stack != prod", web, false},
		{"attribute:ecs.instance-type in [t2.small, t2.medium]", web, false},
		{"attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone == us-east-1a", web, true},
		{"(attribute:ecs.availability-zone == us-east-1a or attribute:ecs.availability-zone == us-east-1d) and runningTasksCount < 2", gpu, true},
	})
}

func TestString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"attribute:ecs.instance-type equals t2.micro", "attribute:ecs.instance-type == t2.micro"},
		{"  runningTasksCount   GREATER_THAN_EQUAL  1 ", "runningTasksCount >= 1"},
		{"attribute:x not_exists", "attribute:x !exists"},
		{"attribute:x NOT_IN [a,b]", "attribute:x !in [a, b]"},
		{"attribute:x not_matches a", "attribute:x !~ a"},
		{"task:group == a or task:group == b and task:group == c", "task:group == a || task:group == b && task:group == c"},
		{"(task:group == a or task:group == b) and task:group == c", "(task:group == a || task:group == b) && task:group == c"},
		{"task:group == a and (task:group == b and task:group == c)", "task:group == a && task:group == b && task:group == c"},
		{"(task:group == a or (task:group == b or task:group == c))", "task:group == a || task:group == b || task:group == c"},
		{"not(task:group == database)", "!(task:group == database)"},
		{"not not task:group == database", "!(!(task:group == database))"},
		{"not (task:group == a and task:group == b)", "!(task:group == a && task:group == b)"},
		{"ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", "ec2InstanceId in [i-abcd1234, i-wxyx7890]"},
		{"attribute:x == 'hello world'", "attribute:x == 'hello world'"},
		{`attribute:x == "it's"`, `attribute:x == "it's"`},
		{`attribute:x == ''`, `attribute:x == ''`},
		{`attribute:x == 'and'`, `attribute:x == and`},
		{`attribute:x in ['a,b', "]"]`, `attribute:x in ['a,b', ']']`},
		{"attribute:x =~ '(a|b) c'", "attribute:x =~ '(a|b) c'"},
		{"attribute:x =~ (a|b)", "attribute:x =~ (a|b)"},
		{"attribute:x =~ a|b||task:group exists", "attribute:x =~ a|b || task:group exists"},
		{"attribute:x =~ 'a||b'", "attribute:x =~ 'a||b'"},
		{"attribute:x =~ (a||b)", "attribute:x =~ (a||b)"},
		{"attribute:x =~ [|][|]", "attribute:x =~ [|][|]"},
		{"(attribute:x =~ (a|b))", "attribute:x =~ (a|b)"},
		{"attribute:x =~ '[)]'", "attribute:x =~ [)]"},
		{"attribute:x =~ '[ ]'", "attribute:x =~ '[ ]'"},
		{"attribute:x =~ 'a\\)'", "attribute:x =~ a\\)"},
		{"attribute:x =~ '\\Q(\\E'", "attribute:x =~ \\Q(\\E"},
		{"!(attribute:x =~ \\Q(\\E)", "!(attribute:x =~ \\Q(\\E)"},
		{"registeredAt < 2018-06-18T22:28:28+00:00", "registeredAt < 2018-06-18T22:28:28+00:00"},
		{"agentConnected == TRUE", "agentConnected == TRUE"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			e, err := Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if got := e.String(); got != tc.want {
				t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got, tc.want)
			}
			again, err := Parse(tc.want)
			if err != nil {
				t.Fatalf("Parse(%q) of the rendering: %v", tc.want, err)
			}
			if got := again.String(); got != tc.want {
				t.Errorf("rendering is not stable: %q became %q", tc.want, got)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	long := "attribute:x == " + strings.Repeat("a", maxLen-len("attribute:x == "))
	for _, tc := range []struct {
		name  string
		in    string
		pos   int
		token string
		msg   string // a substring of Msg
	}{
		{"empty", "", 0, "", "empty expression"},
		{"blank", "   ", 3, "", "empty expression"},
		{"unknown subject", "foo == bar", 0, "foo", "unknown subject; use agentConnected, agentVersion, attribute:<name>"},
		{"subject case", "AgentConnected == true", 0, "AgentConnected", "did you mean agentConnected?"},
		{"unknown task subject", "task:family == x", 0, "task:family", "unknown subject"},
		{"empty attribute name", "attribute: == a", 0, "attribute:", "invalid attribute name"},
		{"bad attribute name", "attribute:a:b == c", 0, "attribute:a:b", "invalid attribute name"},
		{"long attribute name", "attribute:" + strings.Repeat("n", 129) + " exists", 0, "attribute:" + strings.Repeat("n", 129), "invalid attribute name"},
		{"missing operator", "attribute:ecs.instance-type t2.micro", 28, "t2.micro", "expected an operator"},
		{"operator at end", "runningTasksCount", 17, "", "expected an operator: ==, !=, >, >=, <, <="},
		{"single equals", "attribute:x = y", 12, "=", `a single "=" is not an operator`},
		{"single ampersand", "agentConnected == true & runningTasksCount == 0", 23, "&", `write "&&"`},
		{"single bar", "agentConnected == true | runningTasksCount == 0", 23, "|", `write "||"`},
		{"tilde", "attribute:x ~ a", 12, "~", `"~" is not an operator`},
		{"matches on count", "runningTasksCount =~ 1", 18, "=~", "operator =~ does not apply to runningTasksCount; use ==, !=, >, >=, <, <="},
		{"order on connected", "agentConnected > true", 15, ">", "does not apply to agentConnected"},
		{"exists on ec2InstanceId", "ec2InstanceId exists", 14, "exists", "does not apply to ec2InstanceId"},
		{"in on registeredAt", "registeredAt in [2018-01-01]", 13, "in", "does not apply to registeredAt"},
		{"order on task group", "task:group > a", 11, ">", "does not apply to task:group"},
		{"matches on version", "agentVersion =~ 1.*", 13, "=~", "does not apply to agentVersion"},
		{"not_exists on count", "runningTasksCount !exists", 18, "!exists", "does not apply"},
		{"missing value", "runningTasksCount == ", 21, "", "expected a value after =="},
		{"list for ==", "attribute:x == [a]", 15, "[", "expected a value"},
		{"count not a number", "runningTasksCount == x", 21, "x", "whole number"},
		{"count fraction", "runningTasksCount > 1.5", 20, "1.5", "whole number"},
		{"bad version", "agentVersion < 1.x", 15, "1.x", "agent version"},
		{"bad date", "registeredAt < yesterday", 15, "yesterday", "expected a date or time"},
		{"bad date day", "registeredAt < 2018-02-30", 15, "2018-02-30", "expected a date or time"},
		{"bad bool", "agentConnected == yes", 18, "yes", "true or false"},
		{"bad bool in list", "agentConnected in [true, 'no']", 25, "'no'", "true or false"},
		{"in without list", "attribute:x in a", 15, "a", "expected an argument list"},
		{"empty list", "attribute:x in []", 16, "]", "empty argument list"},
		{"trailing comma", "attribute:x in [a,]", 18, "]", "expected a value in the argument list"},
		{"missing comma", "attribute:x in [a b]", 18, "b", `expected "," or "]"`},
		{"unclosed list", "attribute:x in [a", 17, "", `expected "," or "]"`},
		{"unterminated string", "attribute:x == 'abc", 15, "'abc", "unterminated string"},
		{"unclosed paren", "(runningTasksCount == 1", 23, "", `")" to close the "(" at position 0`},
		{"extra paren", "runningTasksCount == 1)", 22, ")", `")" without a matching "("`},
		{"empty parens", "()", 1, ")", "expected a subject"},
		{"trailing tokens", "runningTasksCount == 1 runningTasksCount == 2", 23, "runningTasksCount", `expected "and", "or" or the end`},
		{"trailing value", "attribute:x exists foo", 19, "foo", `expected "and", "or"`},
		{"dangling and", "runningTasksCount == 1 && ", 26, "", "expected a subject"},
		{"double or", "runningTasksCount == 1 || || runningTasksCount == 2", 26, "||", "expected a subject"},
		{"dangling not", "not", 3, "", "expected a subject"},
		{"parenthesised subject", "(attribute:x) == y", 12, ")", "expected an operator"},
		{"missing pattern", "(attribute:x =~ )", 16, ")", "expected a regular expression"},
		{"pattern at end", "attribute:x =~", 14, "", "expected a regular expression"},
		{"unbalanced pattern", "attribute:x =~ (a", 15, "(a", "missing closing )"},
		{"backreference", "attribute:x =~ (a)\\1", 15, "(a)\\1", "backreferences"},
		{"lookahead", "attribute:x =~ a(?=b)", 15, "a(?=b)", "lookahead"},
		{"possessive", "attribute:x =~ a*+", 15, "a*+", "possessive"},
		{"intersection", "attribute:x =~ [a-z&&[def]]", 15, "[a-z&&[def]]", "intersection"},
		{"bad escape", "attribute:x =~ \\y", 15, "\\y", "invalid escape sequence"},
		{"unquoted space in pattern", "attribute:x =~ a\\ b", 15, "a\\", "quote a pattern that contains spaces"},
		{"empty build metadata", "agentVersion > 1.0.0+", 15, "1.0.0+", "agent version"},
		{"too long", long + "a", maxLen, "", "expression is 2001 characters long; the limit is 2000"},
		{"too long, multibyte", strings.Repeat("é", maxLen+1), 2 * maxLen, "", "the limit is 2000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.in)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) = %v, want a *SyntaxError", tc.in, err)
			}
			if se.Pos != tc.pos || se.Token != tc.token || !strings.Contains(se.Msg, tc.msg) {
				t.Errorf("Parse(%q) = {Pos: %d, Token: %q, Msg: %q}, want {Pos: %d, Token: %q, Msg containing %q}",
					tc.in, se.Pos, se.Token, se.Msg, tc.pos, tc.token, tc.msg)
			}
		})
	}
	t.Run("at the limit", func(t *testing.T) {
		if len(long) != maxLen {
			t.Fatalf("test input is %d long", len(long))
		}
		if _, err := Parse(long); err != nil {
			t.Errorf("Parse of %d characters: %v", maxLen, err)
		}
	})
}

func TestSyntaxErrorMessage(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"attribute:x foo", `invalid expression at position 12 near "foo": expected an operator: ==, !=, >, >=, <, <=, exists, !exists, in, !in, =~, !~`},
		{"attribute:x ==", `invalid expression at position 14: expected a value after ==`},
	} {
		_, err := Parse(tc.in)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%q) error = %v, want %s", tc.in, err, tc.want)
		}
	}
}

func TestJavaRegexp(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		value   string
		want    bool
	}{
		{`t2.*`, "t2.micro", true},
		{`t2.*`, "xt2.micro", false},
		{`t2`, "t2.micro", false},
		{`a|b`, "b", true},
		{`\p{Alpha}+`, "abc", true},
		{`\p{Alpha}+`, "ab1", false},
		{`\P{Digit}+`, "abc", true},
		{`[\p{Lower}\p{Digit}]+`, "a1b2", true},
		{`[\P{Lower}]`, "a", false},
		{`\p{IsLatin}+`, "abc", true},
		{`\p{Lu}\p{IsLu}`, "AB", true},
		{`\pL+`, "ab", true},
		{`\e`, "\x1b", true},
		{`\cA`, "\x01", true},
		{`\u0041\u00e9`, "Aé", true},
		{`\ud83d\ude00`, "😀", true},
		{`\0101`, "A", true},
		{`\011`, "\t", true},
		{`a\h+b`, "a \u00a0b", true},
		{`a\Hb`, "axb", true},
		{`a\vb`, "a\nb", true},
		{`[\h]`, " ", true},
		{`a\Z`, "a", true},
		{`\Q.*\E`, ".*", true},
		{`\Q.*\E`, "ab", false},
		{`[\Qa-c\E]`, "-", true},
		{`[\Qa-c\E]`, "b", false},
		{`\Qa.b`, "a.b", true},
		{`a\Eb`, "ab", true},
		{`\x41\x{42}+`, "ABBBB", true},
		{`\x41\x{42}{2}`, "ABB", true},
		{`a{2}`, "aa", true},
		{`a{2,}?b`, "aaab", true},
		{`(?i)ABC`, "abc", true},
		{`(?iu:ABC)d`, "abcd", true},
		{`(?i-s:a.)`, "A\n", false},
		{`(?d)a`, "a", true},
		{`(?<zone>us)-east-1.`, "us-east-1a", true},
		{`[]a]+`, "]a", true},
		{`[^]a]`, "b", true},
	} {
		t.Run(tc.pattern+"/"+tc.value, func(t *testing.T) {
			re, err := compilePattern(tc.pattern)
			if err != nil {
				t.Fatalf("compilePattern(%q): %v", tc.pattern, err)
			}
			if got := re.MatchString(tc.value); got != tc.want {
				t.Errorf("%q (Go %q) matching %q = %v, want %v", tc.pattern, re, tc.value, got, tc.want)
			}
		})
	}
}

func TestJavaRegexpUnsupported(t *testing.T) {
	for _, tc := range []struct{ pattern, msg string }{
		{`(a)\1`, "backreferences"},
		{`(?<n>a)\k<n>`, "backreferences"},
		{`a(?=b)`, "lookahead"},
		{`a(?!b)`, "lookahead"},
		{`(?<=a)b`, "lookbehind"},
		{`(?<!a)b`, "lookbehind"},
		{`(?>a)`, "atomic"},
		{`a++`, "possessive"},
		{`a?+`, "possessive"},
		{`a{2}+`, "possessive"},
		{`[a-d[m-p]]`, "nested character classes"},
		{`[a-z&&[^b]]`, "intersection"},
		{`(?x) a`, "comments mode"},
		{`(?U)\w`, "UNICODE_CHARACTER_CLASS"},
		{`(?)a`, "empty flag group"},
		{`(?q)a`, "unknown flag"},
		{`a{b}`, "does not start a repetition"},
		{`\Ga`, `\G`},
		{`\R`, `\R`},
		{`\X`, `\X`},
		{`\b{g}`, `\b{g}`},
		{`\p{InGreek}`, "blocks"},
		{`\p{javaLowerCase}`, "not supported"},
		{`[\H]`, "inside a character class"},
		{`\u00`, "four hexadecimal digits"},
		{`\ud83d`, "surrogate"},
		{`\0`, "octal digits"},
		{`\c`, `\c must be followed`},
		{`a\`, "trailing backslash"},
		{`a{1001}`, "invalid repeat count"},
		{`a)|(b`, "unexpected )"},
		{`[[:alpha:]]`, "nested character classes"},
	} {
		t.Run(tc.pattern, func(t *testing.T) {
			_, err := compilePattern(tc.pattern)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("compilePattern(%q) = %v, want an error containing %q", tc.pattern, err, tc.msg)
			}
		})
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.10.0", "1.9.0", 1},
		{"1.9.0", "1.10.0", -1},
		{"1.14", "1.14.0", 0},
		{"v1.2.3", "1.2.3", 0},
		{"01.002", "1.2", 0},
		{"1.0.0-rc.1", "1.0.0", -1},
		{"1.0.0-alpha", "1.0.0-alpha.1", -1},
		{"1.0.0-alpha.1", "1.0.0-alpha.beta", -1},
		{"1.0.0-beta.11", "1.0.0-beta.2", 1},
		{"1.0.0+a", "1.0.0+b", 0},
		{"99999999999999999999999.0", "99999999999999999999998.9", 1},
	} {
		got, ok := compareVersions(tc.a, tc.b)
		if !ok || got != tc.want {
			t.Errorf("compareVersions(%q, %q) = %d, %v; want %d, true", tc.a, tc.b, got, ok, tc.want)
		}
	}
	for _, bad := range []string{"", "v", "1.", ".1", "1..2", "1.0-", "1.0+", "a.b", "1.0.0 "} {
		if _, ok := compareVersions(bad, "1.0"); ok {
			t.Errorf("compareVersions(%q, 1.0) accepted a malformed version", bad)
		}
	}
}

func TestMatchConcurrent(t *testing.T) {
	e, err := Parse("attribute:ecs.instance-type =~ t2.* && task:group in [service:production] || runningTasksCount < 2")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if !e.Match(web) || !e.Match(gpu) || !e.Match(bare) {
					t.Error("concurrent Match disagreed with itself")
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkMatch(b *testing.B) {
	for _, bc := range []struct{ name, expr string }{
		{"equals", "attribute:ecs.instance-type == t2.micro"},
		{"regexp", "attribute:ecs.instance-type =~ t2.*"},
		{"anti-affinity", "not(task:group == database)"},
		{"compound", "attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone in [us-east-1a, us-east-1b] and agentVersion >= 1.14.0 and not(task:group == database)"},
	} {
		e, err := Parse(bc.expr)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e.Match(web)
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	const expr = "attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone in [us-east-1a, us-east-1b] and not(task:group == database)"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(expr); err != nil {
			b.Fatal(err)
		}
	}
}
