package cql

import (
	"regexp"
	"strings"
	"time"
)

// Instance is what an expression is evaluated against: one container instance.
type Instance struct {
	Attributes        map[string]string
	AgentConnected    bool
	AgentVersion      string
	EC2InstanceID     string
	RegisteredAt      time.Time
	RunningTasksCount int
	TaskGroups        []string // groups of the tasks placed on the instance
}

// Expr is a parsed expression.
type Expr interface {
	Match(in *Instance) bool
	String() string // a canonical rendering, e.g. for logs
}

type subject int

const (
	subjAgentConnected subject = iota + 1
	subjAgentVersion
	subjAttribute
	subjEC2InstanceID
	subjRegisteredAt
	subjRunningTasksCount
	subjTaskGroup
)

var subjectNames = [...]string{
	subjAgentConnected:    "agentConnected",
	subjAgentVersion:      "agentVersion",
	subjAttribute:         "attribute:",
	subjEC2InstanceID:     "ec2InstanceId",
	subjRegisteredAt:      "registeredAt",
	subjRunningTasksCount: "runningTasksCount",
	subjTaskGroup:         "task:group",
}

type operator int

const (
	opEq operator = iota + 1
	opNe
	opGt
	opGe
	opLt
	opLe
	opExists
	opNotExists
	opIn
	opNotIn
	opMatches
	opNotMatches
)

// opSymbols are the canonical spellings, used by String.
var opSymbols = [...]string{
	opEq:         "==",
	opNe:         "!=",
	opGt:         ">",
	opGe:         ">=",
	opLt:         "<",
	opLe:         "<=",
	opExists:     "exists",
	opNotExists:  "!exists",
	opIn:         "in",
	opNotIn:      "!in",
	opMatches:    "=~",
	opNotMatches: "!~",
}

// predicate is subject operator [argument].
type predicate struct {
	subj subject
	attr string // attribute name, for subjAttribute
	op   operator
	args []string // arguments as written, without quotes

	// Arguments parsed for the subject, set as it needs them.
	re     *regexp.Regexp // =~ and !~
	bools  []bool         // agentConnected
	count  int64          // runningTasksCount
	when   timeRange      // registeredAt
	num    float64        // attribute ordering: args[0] as a number,
	isNum  bool           // when it is one
	asList bool           // in and not_in: render args as a list
}

type andExpr []Expr

type orExpr []Expr

type notExpr struct{ x Expr }

func (p *predicate) String() string {
	var b strings.Builder
	b.WriteString(subjectNames[p.subj])
	b.WriteString(p.attr)
	b.WriteByte(' ')
	b.WriteString(opSymbols[p.op])
	switch {
	case p.op == opExists || p.op == opNotExists:
	case p.asList:
		b.WriteString(" [")
		for i, a := range p.args {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(renderValue(a))
		}
		b.WriteByte(']')
	case p.re != nil:
		b.WriteByte(' ')
		b.WriteString(renderPattern(p.args[0]))
	default:
		b.WriteByte(' ')
		b.WriteString(renderValue(p.args[0]))
	}
	return b.String()
}

func (e andExpr) String() string {
	parts := make([]string, len(e))
	for i, x := range e {
		if _, ok := x.(orExpr); ok {
			parts[i] = "(" + x.String() + ")"
		} else {
			parts[i] = x.String()
		}
	}
	return strings.Join(parts, " && ")
}

func (e orExpr) String() string {
	parts := make([]string, len(e))
	for i, x := range e {
		parts[i] = x.String()
	}
	return strings.Join(parts, " || ")
}

func (e notExpr) String() string { return "!(" + e.x.String() + ")" }

func (e andExpr) Match(in *Instance) bool {
	for _, x := range e {
		if !x.Match(in) {
			return false
		}
	}
	return true
}

func (e orExpr) Match(in *Instance) bool {
	for _, x := range e {
		if x.Match(in) {
			return true
		}
	}
	return false
}

func (e notExpr) Match(in *Instance) bool { return !e.x.Match(in) }

// renderValue writes a value so that the lexer reads it back unchanged:
// bare when it is a nonempty word, else quoted with a quote it does not
// contain. Values come from the lexer, which never yields one holding both
// kinds of quote.
func renderValue(v string) string {
	if v != "" && scanWord(v, 0) == len(v) {
		return v
	}
	return quote(v)
}

// renderPattern is renderValue for regular expressions. A bare pattern
// must end where the pattern scanner ends it both at the end of input and
// before the ")" of an enclosing group.
func renderPattern(v string) string {
	if v != "" && scanPattern(v, 0) == len(v) && scanPattern(v+")", 0) == len(v) {
		return v
	}
	return quote(v)
}

func quote(v string) string {
	if strings.Contains(v, "'") {
		return `"` + v + `"`
	}
	return "'" + v + "'"
}
