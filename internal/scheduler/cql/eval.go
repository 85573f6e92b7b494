package cql

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Match reports whether the instance satisfies the predicate. A subject
// without a value satisfies nothing but not_exists (see the package
// documentation).
func (p *predicate) Match(in *Instance) bool {
	switch p.subj {
	case subjAgentConnected:
		if p.re != nil {
			return p.matchRegexp(strconv.FormatBool(in.AgentConnected))
		}
		found := slices.Contains(p.bools, in.AgentConnected)
		return found == (p.op == opEq || p.op == opIn)
	case subjAgentVersion:
		c, ok := compareVersions(in.AgentVersion, p.args[0])
		return ok && p.holds(c)
	case subjAttribute:
		v, ok := in.Attributes[p.attr]
		switch p.op {
		case opExists:
			return ok
		case opNotExists:
			return !ok
		}
		return ok && p.matchString(v)
	case subjEC2InstanceID:
		return in.EC2InstanceID != "" && p.matchString(in.EC2InstanceID)
	case subjRegisteredAt:
		t := in.RegisteredAt
		if t.IsZero() {
			return false
		}
		switch p.op {
		case opEq:
			return !t.Before(p.when.lo) && t.Before(p.when.hi)
		case opNe:
			return t.Before(p.when.lo) || !t.Before(p.when.hi)
		case opLt:
			return t.Before(p.when.lo)
		case opLe:
			return t.Before(p.when.hi)
		case opGt:
			return !t.Before(p.when.hi)
		case opGe:
			return !t.Before(p.when.lo)
		}
	case subjRunningTasksCount:
		return p.holds(cmp.Compare(int64(in.RunningTasksCount), p.count))
	case subjTaskGroup:
		return p.matchGroups(in.TaskGroups)
	}
	return false
}

// holds reports whether a comparison result c (value against argument)
// satisfies an ordering operator.
func (p *predicate) holds(c int) bool {
	switch p.op {
	case opEq:
		return c == 0
	case opNe:
		return c != 0
	case opGt:
		return c > 0
	case opGe:
		return c >= 0
	case opLt:
		return c < 0
	case opLe:
		return c <= 0
	}
	return false
}

// matchString applies the operator to one string value.
func (p *predicate) matchString(v string) bool {
	switch p.op {
	case opEq:
		return v == p.args[0]
	case opNe:
		return v != p.args[0]
	case opGt, opGe, opLt, opLe:
		if p.isNum {
			if n, ok := parseNumber(v); ok {
				return p.holds(cmp.Compare(n, p.num))
			}
		}
		return p.holds(strings.Compare(v, p.args[0]))
	case opIn:
		return slices.Contains(p.args, v)
	case opNotIn:
		return !slices.Contains(p.args, v)
	case opMatches, opNotMatches:
		return p.matchRegexp(v)
	}
	return false
}

func (p *predicate) matchRegexp(v string) bool {
	return p.re.MatchString(v) == (p.op == opMatches)
}

// matchGroups applies the operator to the set of task groups on an
// instance: the positive operators hold when some group satisfies them,
// the negative ones when none satisfies their positive form.
func (p *predicate) matchGroups(groups []string) bool {
	some := func(f func(string) bool) bool { return slices.ContainsFunc(groups, f) }
	switch p.op {
	case opExists:
		return len(groups) > 0
	case opNotExists:
		return len(groups) == 0
	case opEq:
		return slices.Contains(groups, p.args[0])
	case opNe:
		return !slices.Contains(groups, p.args[0])
	case opIn:
		return some(func(g string) bool { return slices.Contains(p.args, g) })
	case opNotIn:
		return !some(func(g string) bool { return slices.Contains(p.args, g) })
	case opMatches:
		return some(p.re.MatchString)
	case opNotMatches:
		return !some(p.re.MatchString)
	}
	return false
}
