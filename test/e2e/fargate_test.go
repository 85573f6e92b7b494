package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/servicediscovery"

	"github.com/wharfhq/wharf/internal/testenv"
)

// fargatePool is where hosts of Fargate capacity register.
const fargatePool = "~fargate"

const labelContainerName = "com.amazonaws.ecs.container-name"

// TestFargateService drives a FARGATE service with the AWS CLI, on two
// hosts of Fargate capacity (`wharf agent --fargate`): the cluster's
// default strategy splits its tasks over FARGATE and FARGATE_SPOT, the
// tasks spread over both zones and show ECS's Fargate fields, each
// container runs in a gVisor sandbox of its own (its own kernel, and no
// process of another container in sight), tasks reach each other and are
// reached on their awsvpc addresses, and a stopped task is replaced.
func TestFargateService(t *testing.T) {
	testenv.MustHaveRuntime(t, "runsc")
	// A Spot interruption's notice shorter than the agents' stop timeout
	// shows that the notice bounds the stop.
	e := newEnv(t, withServerFlags("--spot-interruption-notice", "4s"), withStopTimeout(30*time.Second))
	host1 := e.addNode("fargate-1", testenv.Region+"a", "--fargate")
	e.addNode("fargate-2", testenv.Region+"b", "--fargate")
	e.aws(callWait, "ecs", "put-cluster-capacity-providers", "--cluster", e.cluster,
		"--capacity-providers", "FARGATE", "FARGATE_SPOT",
		"--default-capacity-provider-strategy", "capacityProvider=FARGATE,base=1,weight=1", "capacityProvider=FARGATE_SPOT,weight=1")

	out := e.cliJSON(callWait, map[string]any{
		"family": "fweb", "requiresCompatibilities": []string{"FARGATE"}, "networkMode": "awsvpc", "cpu": "256", "memory": "512",
		"containerDefinitions": []map[string]any{
			{"name": "web", "image": e.image, "essential": true, "command": []string{"sh", "-c", webScript("8080")}},
			{"name": "side", "image": e.image, "essential": false, "command": []string{"sh", "-c", "trap '' TERM; sleep 3600"}},
		},
	}, "ecs", "register-task-definition")
	var reg struct {
		TaskDefinition struct{ TaskDefinitionArn string } `json:"taskDefinition"`
	}
	if err := json.Unmarshal(out, &reg); err != nil {
		t.Fatalf("register-task-definition: %v: %s", err, out)
	}
	td := reg.TaskDefinition.TaskDefinitionArn
	e.aws(callWait, "ecs", "create-service", "--cluster", e.cluster, "--service-name", "fweb", "--task-definition", td,
		"--desired-count", "3", "--network-configuration", "awsvpcConfiguration={subnets=[subnet-1]}")
	var tasks []types.Task
	waitFor(t, "three RUNNING Fargate tasks", serviceWait, func() (bool, string) {
		svc := e.service("fweb")
		tasks = e.serviceTasks("fweb", types.DesiredStatusRunning)
		return svc.RunningCount == 3 && len(tasks) == 3, deployments(svc)
	})

	providers, zones := map[string]int{}, map[string]int{}
	for _, task := range tasks {
		providers[aws.ToString(task.CapacityProviderName)]++
		zones[aws.ToString(task.AvailabilityZone)]++
		sandbox := slices.ContainsFunc(task.Attributes, func(a types.Attribute) bool {
			return aws.ToString(a.Name) == "wharf.sandbox" && aws.ToString(a.Value) == "gvisor"
		})
		if !sandbox || task.ContainerInstanceArn != nil || task.LaunchType != types.LaunchTypeFargate || aws.ToString(task.PlatformVersion) != "1.4.0" ||
			aws.ToString(task.PlatformFamily) != "Linux" || task.EphemeralStorage == nil || len(task.Attachments) != 1 ||
			task.PullStartedAt == nil || task.PullStoppedAt == nil {
			t.Errorf("Fargate task %s", jsonOf(task))
		}
	}
	if providers["FARGATE"] != 2 || providers["FARGATE_SPOT"] != 1 || len(zones) != 2 {
		t.Errorf("providers %v, zones %v; want FARGATE 2 (base 1, then 1:1) and FARGATE_SPOT 1, over two zones", providers, zones)
	}

	host, err := exec.Command("uname", "-r").Output()
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, task := range tasks {
		ip := aws.ToString(taskContainer(t, task, "web").NetworkInterfaces[0].PrivateIpv4Address)
		ips = append(ips, ip)
		for _, c := range e.containersOf(aws.ToString(task.TaskArn)) {
			if c.Labels[labelContainerName] != "web" {
				continue
			}
			if rt := e.inspect(c.ID).HostConfig.Runtime; rt != "runsc" {
				t.Errorf("task %s's web container runs with %q, want runsc", taskID(aws.ToString(task.TaskArn)), rt)
			}
			// The task's containers share a cgroup of its size.
			parent := "/wharf/" + taskID(aws.ToString(task.TaskArn))
			if got := e.inspect(c.ID).HostConfig.CgroupParent; got != parent {
				t.Errorf("the web container's cgroup parent is %q, want %q", got, parent)
			} else {
				// cgroup v1's memory controller, or v2's unified tree.
				limit, err := os.ReadFile("/sys/fs/cgroup/memory" + parent + "/memory.limit_in_bytes")
				if err != nil {
					limit, err = os.ReadFile("/sys/fs/cgroup" + parent + "/memory.max")
				}
				if err != nil || strings.TrimSpace(string(limit)) != "536870912" {
					t.Errorf("the task's memory limit is %q (%v), want 512 MiB", limit, err)
				}
			}
			kernel, _ := e.exec(c.ID, "uname -r")
			if strings.TrimSpace(kernel) == strings.TrimSpace(string(host)) {
				t.Errorf("the web container sees the host's kernel %s", kernel)
			}
			ps, _ := e.exec(c.ID, "ps -o args")
			if strings.Contains(ps, "sleep 3600") || !strings.Contains(ps, "httpd") {
				t.Errorf("the web container sees processes outside its sandbox:\n%s", ps)
			}
		}
		waitHTTP(t, "http://"+ip+":8080/index.html", "pong")
	}
	// The task metadata endpoint gives Fargate's fields.
	for _, c := range e.containersOf(aws.ToString(tasks[0].TaskArn)) {
		if c.Labels[labelContainerName] != "web" {
			continue
		}
		get := `u=${ECS_CONTAINER_METADATA_URI_V4#http://}; h=${u%%/*}; printf "GET /${u#*/}/task HTTP/1.0\r\n\r\n" | timeout 10 nc ${h%:*} ${h#*:}`
		out, code := e.exec(c.ID, get)
		_, body, _ := strings.Cut(out, "\r\n\r\n")
		var md struct {
			Cluster, LaunchType, AvailabilityZone string
			Limits                                struct{ CPU float64 }
			EphemeralStorageMetrics               *struct{ Utilized, Reserved int64 }
		}
		if err := json.Unmarshal([]byte(body), &md); code != 0 || err != nil {
			t.Fatalf("task metadata: exit %d, %v:\n%s", code, err, out)
		}
		if md.Cluster != aws.ToString(tasks[0].ClusterArn) || md.LaunchType != "FARGATE" || md.AvailabilityZone != aws.ToString(tasks[0].AvailabilityZone) ||
			md.Limits.CPU != 0.25 || md.EphemeralStorageMetrics == nil || md.EphemeralStorageMetrics.Reserved != 20<<10 {
			t.Errorf("task metadata of a Fargate task:\n%s", body)
		}
	}

	// One task calls another on its awsvpc address. With gVisor's host
	// network, busybox wget's reads fail (EAGAIN), so nc asks.
	first := e.containersOf(aws.ToString(tasks[0].TaskArn))
	for _, c := range first {
		if c.Labels[labelContainerName] == "web" {
			get := `printf 'GET /index.html HTTP/1.0\r\n\r\n' | timeout 10 nc ` + ips[1] + " 8080"
			if out, code := e.exec(c.ID, get); code != 0 || !strings.HasSuffix(strings.TrimSpace(out), "pong") {
				t.Errorf("task to task: exit %d, %q", code, out)
			}
		}
	}

	// A restarted host's agent adopts its sandboxes: the same tasks keep
	// running in the same containers.
	ids := func() map[string]string {
		out := map[string]string{}
		for _, task := range tasks {
			for _, c := range e.containersOf(aws.ToString(task.TaskArn)) {
				out[c.ID] = c.State
			}
		}
		return out
	}
	before := ids()
	host1.proc.kill(t)
	e.waitConnected(host1.arn, false)
	e.startNode(host1)
	holds(t, "the Fargate tasks unchanged after their host's agent restarted", 3*time.Second, func() (bool, string) {
		svc := e.service("fweb")
		now := taskArns(e.serviceTasks("fweb", types.DesiredStatusRunning))
		if svc.RunningCount != 3 || !slices.Equal(slices.Sorted(slices.Values(now)), slices.Sorted(slices.Values(taskArns(tasks)))) {
			return false, deployments(svc)
		}
		after := ids()
		return maps.Equal(before, after), fmt.Sprintf("containers %v, were %v", after, before)
	})

	// Fargate takes a Spot task's capacity back: SIGTERM now (httpd dies
	// of it), SIGKILL when the notice ends (the side container
	// ignores SIGTERM), stopCode SpotInterruption, and the service replaces it.
	var spot, regular types.Task
	for _, task := range tasks {
		if aws.ToString(task.CapacityProviderName) == "FARGATE_SPOT" {
			spot = task
		} else {
			regular = task
		}
	}
	if out, err := e.spotInterrupt(aws.ToString(regular.TaskArn)); err == nil || !strings.Contains(out, "is not a running FARGATE_SPOT task") {
		t.Errorf("interrupting a FARGATE task: %v, %s", err, out)
	}
	if out, err := e.spotInterrupt(aws.ToString(spot.TaskArn)); err != nil {
		t.Fatalf("wharf spot-interrupt: %v\n%s", err, out)
	}
	done := e.waitStopped(aws.ToString(spot.TaskArn))
	if done.StopCode != types.TaskStopCodeSpotInterruption || aws.ToString(done.StoppedReason) != "Your Spot Task was interrupted." {
		t.Errorf("interrupted task: stopCode %s, reason %q", done.StopCode, aws.ToString(done.StoppedReason))
	}
	if web, side := taskContainer(t, done, "web"), taskContainer(t, done, "side"); aws.ToInt32(web.ExitCode) != 143 || aws.ToInt32(side.ExitCode) != 137 {
		t.Errorf("exit codes: web %d (want 143, SIGTERM), side %d (want 137, SIGKILL at the notice's end)", aws.ToInt32(web.ExitCode), aws.ToInt32(side.ExitCode))
	}
	if took := done.StoppedAt.Sub(*done.StoppingAt); took > 20*time.Second {
		t.Errorf("the interrupted task took %v to stop; the notice is 4 s, the stop timeout 30 s", took)
	}
	// Nothing of its sandboxes is left running: no sandbox, gofer or shim.
	for _, c := range e.containersOf(aws.ToString(spot.TaskArn)) {
		waitFor(t, "the processes of container "+c.ID[:12]+" gone", 10*time.Second, func() (bool, string) {
			left := processesOf(c.ID)
			return len(left) == 0, strings.Join(left, "\n")
		})
	}
	waitFor(t, "the interrupted task replaced on FARGATE_SPOT", serviceWait, func() (bool, string) {
		svc := e.service("fweb")
		now := e.serviceTasks("fweb", types.DesiredStatusRunning)
		spots := 0
		for _, task := range now {
			if aws.ToString(task.CapacityProviderName) == "FARGATE_SPOT" && aws.ToString(task.LastStatus) == "RUNNING" {
				spots++
			}
		}
		return svc.RunningCount == 3 && len(now) == 3 && spots == 1 && !slices.Contains(taskArns(now), aws.ToString(spot.TaskArn)), deployments(svc)
	})
	tasks = e.serviceTasks("fweb", types.DesiredStatusRunning)

	stopped := aws.ToString(tasks[0].TaskArn)
	e.aws(callWait, "ecs", "stop-task", "--cluster", e.cluster, "--task", stopped, "--reason", "e2e: replace me")
	waitFor(t, "the stopped task replaced", serviceWait, func() (bool, string) {
		svc := e.service("fweb")
		now := taskArns(e.serviceTasks("fweb", types.DesiredStatusRunning))
		return svc.RunningCount == 3 && len(now) == 3 && !slices.Contains(now, stopped), deployments(svc)
	})
}

// spotInterrupt runs `wharf spot-interrupt` on a task of the cluster.
func (e *env) spotInterrupt(task string) (string, error) {
	cmd := exec.Command(e.bin, "spot-interrupt", "--cluster", e.cluster, "--task", task)
	cmd.Env = append(os.Environ(), "AWS_ENDPOINT_URL="+e.endpoint, "AWS_REGION="+testenv.Region,
		"AWS_ACCESS_KEY_ID="+testenv.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+testenv.SecretAccessKey)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestFargateServiceConnect, on `wharf dev` (one EC2 node and its one host
// of Fargate capacity): a FARGATE service of Service Connect registers
// its tasks in Cloud Map and answers an EC2 task calling it by alias
// through the mesh.
func TestFargateServiceConnect(t *testing.T) {
	testenv.MustHaveRuntime(t, "runsc")
	e := startDev(t, 1)
	e.aws(callWait, "ecs", "update-cluster", "--cluster", e.cluster, "--service-connect-defaults", "namespace=shop")
	e.aws(callWait, "ecs", "put-cluster-capacity-providers", "--cluster", e.cluster, "--capacity-providers", "FARGATE",
		"--default-capacity-provider-strategy", "capacityProvider=FARGATE,weight=1")

	api := e.webDef("api", "api", types.NetworkModeAwsvpc)
	api["requiresCompatibilities"], api["cpu"], api["memory"] = []string{"FARGATE"}, "256", "512"
	e.cliJSON(callWait, api, "ecs", "register-task-definition")
	front := e.webDef("front", "front", types.NetworkModeBridge)
	front["containerDefinitions"].([]map[string]any)[0]["portMappings"] = []any{}
	e.cliJSON(callWait, front, "ecs", "register-task-definition")

	e.cliJSON(callWait, map[string]any{
		"cluster": e.cluster, "serviceName": "api", "taskDefinition": "api", "desiredCount": 2,
		"networkConfiguration": map[string]any{"awsvpcConfiguration": map[string]any{"subnets": []string{"subnet-1"}}},
		"serviceConnectConfiguration": map[string]any{"enabled": true, "services": []any{
			map[string]any{"portName": "web", "discoveryName": "api", "clientAliases": []map[string]any{{"port": 80}}},
		}},
	}, "ecs", "create-service")
	e.cliJSON(callWait, map[string]any{
		"cluster": e.cluster, "serviceName": "front", "taskDefinition": "front", "desiredCount": 1, "launchType": "EC2",
		"serviceConnectConfiguration": map[string]any{"enabled": true},
	}, "ecs", "create-service")
	e.servicesStable("api", "front")

	_, apis := e.waitStable("api", e.latest("api"))
	var ips []string
	for _, task := range apis {
		if task.LaunchType != types.LaunchTypeFargate || aws.ToString(task.CapacityProviderName) != "FARGATE" {
			t.Errorf("api task %s: launch type %s, capacity provider %s", taskID(aws.ToString(task.TaskArn)), task.LaunchType, aws.ToString(task.CapacityProviderName))
		}
		ips = append(ips, aws.ToString(taskContainer(t, task, "app").NetworkInterfaces[0].PrivateIpv4Address))
	}
	// The SDK, as Debian's CLI sends DiscoverInstances to a data- host.
	sd := testenv.CloudMap(e.endpoint)
	waitFor(t, "both api tasks in Cloud Map", 10*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), callWait)
		defer cancel()
		out, err := sd.DiscoverInstances(ctx, &servicediscovery.DiscoverInstancesInput{NamespaceName: aws.String("shop"), ServiceName: aws.String("api")})
		if err != nil {
			return false, err.Error()
		}
		var got []string
		for _, in := range out.Instances {
			got = append(got, in.Attributes["AWS_INSTANCE_IPV4"])
		}
		return slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(ips))), fmt.Sprintf("instances at %v, tasks at %v", got, ips)
	})

	_, fronts := e.waitStable("front", e.latest("front"))
	id := e.appContainer(fronts[0])
	for range 4 {
		if body, ok := e.get(id, "http://api/"); !ok || body != "api" {
			t.Fatalf("front → http://api/ (a FARGATE service): %q", body)
		}
	}
}

// processesOf lists the command lines of the host's processes that name a
// container id: its shim and, under gVisor, its sandbox and gofer.
func processesOf(id string) []string {
	var out []string
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		b, err := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), id) {
			out = append(out, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}
