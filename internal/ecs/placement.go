package ecs

import (
	"errors"

	"github.com/wharfhq/wharf/internal/scheduler/cql"
)

// checkMemberOf validates one placement constraint.
func checkMemberOf(kind, expression string) error {
	switch kind {
	case "memberOf":
		if expression == "" {
			return invalidParameter("A memberOf placement constraint needs an expression, e.g. \"attribute:ecs.instance-type =~ t2.*\".")
		}
		if _, err := cql.Parse(expression); err != nil {
			var se *cql.SyntaxError
			if errors.As(err, &se) {
				return invalidParameter("Invalid placement constraint expression %q: %s.", expression, se.Error())
			}
			return invalidParameter("Invalid placement constraint expression %q: %v.", expression, err)
		}
	case "distinctInstance":
		if expression != "" {
			return invalidParameter("A distinctInstance placement constraint takes no expression.")
		}
	default:
		return invalidParameter("Unknown placement constraint type %q: use memberOf or distinctInstance.", kind)
	}
	return nil
}
