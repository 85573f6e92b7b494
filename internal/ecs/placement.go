package ecs

import (
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/ecs/state"
	"github.com/wharfhq/wharf/internal/scheduler"
)

// checkPlacement validates placement constraints and strategies as ECS
// does.
func checkPlacement(constraints []ecsapi.PlacementConstraint, strategies []ecsapi.PlacementStrategy) error {
	req := state.PlacementRequest(&ecsapi.TaskDefinition{}, scheduler.Demand{}, 0, "", constraints, strategies)
	if err := scheduler.ValidateConstraints(req.Constraints); err != nil {
		return invalidParameter("%s", err.Error())
	}
	if err := scheduler.ValidateStrategies(req.Strategies); err != nil {
		return invalidParameter("%s", err.Error())
	}
	return nil
}

// checkTaskDefConstraints validates a task definition's constraints: only
// memberOf is allowed there.
func checkTaskDefConstraints(pcs []ecsapi.TaskDefinitionPlacementConstraint) error {
	var cs []scheduler.Constraint
	for _, pc := range pcs {
		if pc.Type != ecsapi.TaskDefinitionPlacementConstraintTypeMemberOf {
			return invalidParameter("Task definitions take memberOf placement constraints only, not %q.", pc.Type)
		}
		cs = append(cs, scheduler.Constraint{Type: string(pc.Type), Expression: pc.Expression})
	}
	if err := scheduler.ValidateConstraints(cs); err != nil {
		return invalidParameter("%s", err.Error())
	}
	return nil
}
