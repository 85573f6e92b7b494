package e2e

import (
	"encoding/json"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// TestDaemonServiceWithCLI: on `wharf dev --nodes 2`, a DAEMON service
// created with the AWS CLI runs one container on each node.
func TestDaemonServiceWithCLI(t *testing.T) {
	e := startDev(t, 2)
	e.cliJSON(callWait, e.webDef("agentd", "agentd", types.NetworkModeBridge), "ecs", "register-task-definition")
	var out struct {
		Service struct{ SchedulingStrategy string }
	}
	if err := json.Unmarshal(e.aws(callWait, "ecs", "create-service", "--cluster", e.cluster, "--service-name", "agentd",
		"--task-definition", "agentd", "--scheduling-strategy", "DAEMON"), &out); err != nil {
		t.Fatal(err)
	}
	if out.Service.SchedulingStrategy != "DAEMON" {
		t.Fatalf("schedulingStrategy %q", out.Service.SchedulingStrategy)
	}
	e.servicesStable("agentd")
	svc, tasks := e.waitStable("agentd", e.latest("agentd"))
	on := map[string]int{}
	for _, task := range tasks {
		on[aws.ToString(task.ContainerInstanceArn)]++
		e.appContainer(task) // running on Docker
	}
	if svc.DesiredCount != 2 || len(tasks) != 2 || len(on) != 2 {
		t.Fatalf("desiredCount %d, %d tasks on %d instances; want one on each of the 2", svc.DesiredCount, len(tasks), len(on))
	}
}
