package ecs

// TaskLifecycle lists a task's lastStatus values in order (the model types
// them as plain strings). A task only moves forward along it: the agent
// reports, and the control plane accepts, no step back.
var TaskLifecycle = []string{"PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"}

// TaskStage is status's place in TaskLifecycle, -1 for a status not in it.
func TaskStage(status string) int {
	for i, s := range TaskLifecycle {
		if s == status {
			return i
		}
	}
	return -1
}
