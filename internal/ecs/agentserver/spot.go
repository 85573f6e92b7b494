package agentserver

import (
	"context"
	"math"
	"time"

	"github.com/wharfhq/wharf/internal/api/agentapi"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/ecs/state"
)

// SpotInterruptionReason is ECS's stoppedReason of an interrupted Fargate
// Spot task.
const SpotInterruptionReason = "Your Spot Task was interrupted."

// InterruptSpotTask stops a running FARGATE_SPOT task as Fargate does when
// it takes the capacity back: the agent sends SIGTERM at once and SIGKILL
// once the container's stopTimeout or the notice ends, whichever is first.
func (s *Server) InterruptSpotTask(ctx context.Context, in *agentapi.InterruptSpotTaskRequest) (*agentapi.InterruptSpotTaskResponse, error) {
	c := s.call(ctx)
	out, err := s.StopRef(ctx, c, in.Cluster, in.Task, func(t *state.TaskRecord) error {
		if t.CapacityProviderName != state.ProviderFargateSpot || t.DesiredStatus != "RUNNING" {
			return invalidParameter("Task %s is not a running FARGATE_SPOT task.", t.TaskArn)
		}
		return nil
	}, ecsapi.TaskStopCodeSpotInterruption, SpotInterruptionReason)
	if err != nil {
		return nil, err
	}
	s.log.Info("Fargate Spot task interrupted", "task_arn", out.TaskArn, "notice", s.spotNotice)
	return &agentapi.InterruptSpotTaskResponse{Task: out}, nil
}

// stopWithin is what is left of an interrupted Spot task's notice, in
// whole seconds and at least one; 0 for any other task.
func (s *Server) stopWithin(t *state.TaskRecord, now time.Time) int32 {
	if t.StopCode != ecsapi.TaskStopCodeSpotInterruption || t.DesiredStatus != "STOPPED" || t.StoppingAt == nil {
		return 0
	}
	left := s.spotNotice - now.Sub(t.StoppingAt.Time)
	return int32(max(1, math.Ceil(left.Seconds())))
}
