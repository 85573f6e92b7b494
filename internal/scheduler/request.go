package scheduler

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/wharfhq/wharf/internal/scheduler/cql"
)

// Limits ECS puts on a placement request.
const (
	MaxConstraints = 10 // per task, the task definition's and the call's together
	MaxStrategies  = 5  // per RunTask, CreateService or UpdateService
)

// Constraint is a placement constraint: Type "distinctInstance" (no
// Expression) or "memberOf" (a cluster query language Expression).
type Constraint struct {
	Type       string
	Expression string
}

// Strategy is a placement strategy: Type "random" (Field unused),
// "spread" (Field "instanceId", "host" or "attribute:<name>") or
// "binpack" (Field "cpu" or "memory").
type Strategy struct {
	Type  string
	Field string
}

// Request asks for Count tasks of one demand to be placed.
type Request struct {
	Demand Demand
	Count  int

	// Group is the task group ("service:web", "family:batch"): spread and
	// distinctInstance count the tasks of this group, and memberOf's
	// task:group sees Node.Groups.
	Group string

	// Constraints are the task definition's and the call's, combined by
	// the caller; all of them bind.
	Constraints []Constraint

	// Strategies rank the instances that pass the filters, in order; each
	// breaks the ties the ones before it leave. Empty means random, RunTask's
	// default; services pass ServiceDefault explicitly.
	Strategies []Strategy

	// Rand drives random and the final tie-break; nil means a fresh random
	// seed. A *rand.Rand is not safe for concurrent use: don't share one
	// between goroutines.
	Rand *rand.Rand
}

// RequestError is an invalid placement request; its message is fit for an
// InvalidParameterException.
type RequestError struct {
	Msg string
	Err error // the cql.SyntaxError behind a bad memberOf expression, if any
}

func (e *RequestError) Error() string { return e.Msg }

func (e *RequestError) Unwrap() error { return e.Err }

// ServiceDefault is the placement strategy ECS gives a service created
// without one: balance the service's tasks over Availability Zones, then
// over the instances within each zone.
func ServiceDefault() []Strategy {
	return []Strategy{
		{Type: "spread", Field: "attribute:" + azAttribute},
		{Type: "spread", Field: "instanceId"},
	}
}

const azAttribute = "ecs.availability-zone"

// ValidateConstraints checks constraints as ECS does when a request carries
// them: at most MaxConstraints, known types, an expression exactly for
// memberOf, and one that parses. Errors are *RequestError.
func ValidateConstraints(cs []Constraint) error {
	_, err := compileConstraints(cs)
	return err
}

// ValidateStrategies checks strategies as ECS does: at most MaxStrategies,
// known types and fields. Errors are *RequestError.
func ValidateStrategies(ss []Strategy) error {
	_, err := compileStrategies(ss)
	return err
}

// constraint is a validated Constraint; expr is nil for distinctInstance.
type constraint struct {
	expr cql.Expr
}

func compileConstraints(cs []Constraint) ([]constraint, error) {
	if len(cs) > MaxConstraints {
		return nil, &RequestError{Msg: fmt.Sprintf(
			"too many placement constraints: %d; a task takes at most %d, counting its task definition's and the request's together",
			len(cs), MaxConstraints)}
	}
	out := make([]constraint, 0, len(cs))
	for i, c := range cs {
		switch c.Type {
		case "distinctInstance":
			if c.Expression != "" {
				return nil, &RequestError{Msg: fmt.Sprintf(
					"placement constraint %d: distinctInstance takes no expression; remove it, or use memberOf", i+1)}
			}
			out = append(out, constraint{})
		case "memberOf":
			if strings.TrimSpace(c.Expression) == "" {
				return nil, &RequestError{Msg: fmt.Sprintf(
					"placement constraint %d: memberOf needs an expression, e.g. attribute:ecs.instance-type =~ t2.*", i+1)}
			}
			e, err := cql.Parse(c.Expression)
			if err != nil {
				return nil, &RequestError{Msg: fmt.Sprintf("placement constraint %d: memberOf expression %q: %v", i+1, c.Expression, err), Err: err}
			}
			out = append(out, constraint{expr: e})
		default:
			return nil, &RequestError{Msg: fmt.Sprintf(
				"placement constraint %d: unknown type %q; use distinctInstance or memberOf", i+1, c.Type)}
		}
	}
	return out, nil
}

// rankKind is what a strategy ranks instances by.
type rankKind uint8

const (
	rankRandom rankKind = iota + 1
	rankNode            // spread(instanceId): tasks of the group on the instance
	rankAttr            // spread(attribute:x): tasks of the group on instances sharing x's value
	rankCPU             // binpack(cpu): remaining CPU
	rankMemory          // binpack(memory): remaining memory
)

// rule is a validated Strategy.
type rule struct {
	kind rankKind
	attr string // for rankAttr
}

func compileStrategies(ss []Strategy) ([]rule, error) {
	if len(ss) > MaxStrategies {
		return nil, &RequestError{Msg: fmt.Sprintf(
			"too many placement strategies: %d; a request takes at most %d", len(ss), MaxStrategies)}
	}
	out := make([]rule, 0, len(ss))
	for i, s := range ss {
		r, err := compileStrategy(s)
		if err != nil {
			return nil, &RequestError{Msg: fmt.Sprintf("placement strategy %d: %s", i+1, err)}
		}
		out = append(out, r)
	}
	return out, nil
}

func compileStrategy(s Strategy) (rule, error) {
	switch s.Type {
	case "random":
		return rule{kind: rankRandom}, nil // ECS ignores the field
	case "spread":
		switch {
		case s.Field == "instanceId" || s.Field == "host":
			return rule{kind: rankNode}, nil
		case strings.HasPrefix(s.Field, "attribute:"):
			name := strings.TrimPrefix(s.Field, "attribute:")
			if !validAttrName(name) {
				return rule{}, fmt.Errorf("spread field %q: an attribute name is 1 to 128 letters, digits, '.', '-', '_', '/' or '\\'", s.Field)
			}
			return rule{kind: rankAttr, attr: name}, nil
		case s.Field == "":
			return rule{}, errors.New("spread needs a field: instanceId, host or attribute:<name>, e.g. attribute:ecs.availability-zone")
		}
		return rule{}, fmt.Errorf("spread field %q: use instanceId, host or attribute:<name>, e.g. attribute:ecs.availability-zone", s.Field)
	case "binpack":
		switch s.Field {
		case "cpu":
			return rule{kind: rankCPU}, nil
		case "memory":
			return rule{kind: rankMemory}, nil
		}
		return rule{}, fmt.Errorf("binpack field %q: use cpu or memory", s.Field)
	}
	return rule{}, fmt.Errorf("unknown type %q; use random, spread or binpack", s.Type)
}

// validAttrName is the attribute name rule of PutAttributes.
func validAttrName(name string) bool {
	if name == "" || len(name) > 128 {
		return false
	}
	for _, c := range []byte(name) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '-' || c == '_' || c == '/' || c == '\\':
		default:
			return false
		}
	}
	return true
}

// chain is the part of rules that ranks: everything up to the first
// random, which picks uniformly and so leaves nothing for later rules.
func chain(rules []rule) []rule {
	for i, r := range rules {
		if r.kind == rankRandom {
			return rules[:i]
		}
	}
	return rules
}

func newRand(r *rand.Rand) *rand.Rand {
	if r != nil {
		return r
	}
	return rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
}
