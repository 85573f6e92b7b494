package integration

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/wharfhq/wharf/internal/testenv"
)

// TestRestartKeepsState stops a server and starts a new one on the same
// embedded etcd data directory: every object must come back as it was,
// and the new server must carry on from the stored state (revision
// numbers, reservations, client tokens, pagination tokens).
func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	srv := testenv.StartServer(t, dir)
	e := &env{srv: srv, ecs: srv.ECS()}
	seed := seedState(t, e)
	before := viewSeed(t, e.ecs, seed)
	checkSeeded(t, "before the restart", before, seed)
	srv.Stop()

	srv = testenv.StartServer(t, dir)
	e = &env{srv: srv, ecs: srv.ECS()}
	after := viewSeed(t, e.ecs, seed)
	checkSeeded(t, "after the restart", after, seed)
	sameView(t, "across the restart", before, after)
	checkCarriesOn(t, e, seed, after)
}

// seeded names what seedState created.
type seeded struct {
	clusterArn  string
	clusterTags []types.Tag
	web1, web2  string // task definition ARNs; web:1 is deregistered
	web2Tags    []types.Tag
	instance    string
	task        string // PENDING, from web:1
	taskTags    []types.Tag
	stopped     string // STOPPED by StopTask, from web:2
	serviceArn  string
	serviceTags []types.Tag
	// runInput repeats the RunTask that started task, client token
	// included.
	runInput *ecs.RunTaskInput
	// attrToken continues ListAttributes after its first page.
	attrToken string
}

const (
	seedCluster   = "prod"
	seedService   = "api"
	seedCPU       = 2048
	seedMemory    = 4096
	seedTaskCPU   = 128 // env.taskDef's container CPU
	seedTaskMem   = 256
	seedHostPort  = 8080
	seedAttrPage  = 2
	seedRunToken  = "restart-run-1"
	seedStopCause = "seeded stop"
)

func seedTags(kv ...string) []types.Tag {
	var out []types.Tag
	for i := 0; i < len(kv); i += 2 {
		out = append(out, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return out
}

// seedState creates, through the API, one of each kind of object that the
// server keeps: a tagged cluster, two task definition revisions (the first
// deregistered), a container instance with a custom attribute, a running
// and a stopped task, a service and an account setting.
func seedState(t *testing.T, e *env) seeded {
	t.Helper()
	ctx := ctxT(t)
	s := seeded{
		clusterTags: seedTags("team", "payments", "env", "staging"),
		web2Tags:    seedTags("tier", "frontend"),
		taskTags:    seedTags("owner", "ci"),
		serviceTags: seedTags("app", "api"),
	}
	cl := must(e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{
		ClusterName: aws.String(seedCluster),
		Tags:        s.clusterTags,
		Settings:    []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("enabled")}},
	}))(t)
	s.clusterArn = aws.ToString(cl.Cluster.ClusterArn)

	s.web1 = e.taskDef(t, "web", seedTaskMem, 0)
	td := must(e.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("web"),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name:         aws.String("app"),
			Image:        aws.String("nginx:1.27"),
			Cpu:          seedTaskCPU,
			Memory:       aws.Int32(seedTaskMem),
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(80), HostPort: aws.Int32(seedHostPort)}},
			Environment:  []types.KeyValuePair{{Name: aws.String("MODE"), Value: aws.String("restart")}},
		}},
		Tags: s.web2Tags,
	}))(t)
	s.web2 = aws.ToString(td.TaskDefinition.TaskDefinitionArn)

	s.instance = e.instance(t, seedCluster, seedCPU, seedMemory, types.Attribute{Name: aws.String("stack"), Value: aws.String("blue")})
	must(e.ecs.PutAttributes(ctx, &ecs.PutAttributesInput{
		Cluster:    aws.String(seedCluster),
		Attributes: []types.Attribute{{Name: aws.String("rack"), Value: aws.String("r1"), TargetId: aws.String(s.instance)}},
	}))(t)

	s.runInput = &ecs.RunTaskInput{
		Cluster:        aws.String(seedCluster),
		TaskDefinition: aws.String(s.web1),
		ClientToken:    aws.String(seedRunToken),
		StartedBy:      aws.String("restart-test"),
		Group:          aws.String("batch"),
		Tags:           s.taskTags,
	}
	run := must(e.ecs.RunTask(ctx, s.runInput))(t)
	if len(run.Tasks) != 1 || len(run.Failures) != 0 {
		t.Fatalf("RunTask web:1: %d tasks, failures %s", len(run.Tasks), jsonText(run.Failures))
	}
	s.task = aws.ToString(run.Tasks[0].TaskArn)
	run = must(e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String(seedCluster), TaskDefinition: aws.String(s.web2)}))(t)
	if len(run.Tasks) != 1 {
		t.Fatalf("RunTask web:2: %d tasks, failures %s", len(run.Tasks), jsonText(run.Failures))
	}
	s.stopped = aws.ToString(run.Tasks[0].TaskArn)
	must(e.ecs.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(seedCluster), Task: aws.String(s.stopped), Reason: aws.String(seedStopCause)}))(t)
	must(e.ecs.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(s.web1)}))(t)

	svc := must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{
		Cluster:        aws.String(seedCluster),
		ServiceName:    aws.String(seedService),
		TaskDefinition: aws.String("web"),
		DesiredCount:   aws.Int32(0),
		Tags:           s.serviceTags,
	}))(t)
	s.serviceArn = aws.ToString(svc.Service.ServiceArn)
	// Let the service scheduler settle the service before anything is
	// compared.
	waitService(t, e, seedCluster, seedService, "the seeded service's rollout to complete", func(s types.Service) bool {
		return len(s.Deployments) == 1 && s.Deployments[0].RolloutState == types.DeploymentRolloutStateCompleted
	})

	must(e.ecs.PutAccountSetting(ctx, &ecs.PutAccountSettingInput{Name: types.SettingNameContainerInsights, Value: aws.String("enhanced")}))(t)

	page := must(e.ecs.ListAttributes(ctx, &ecs.ListAttributesInput{
		Cluster: aws.String(seedCluster), TargetType: types.TargetTypeContainerInstance, MaxResults: aws.Int32(seedAttrPage),
	}))(t)
	if page.NextToken == nil {
		t.Fatalf("ListAttributes with maxResults %d returned no nextToken; attributes %s", seedAttrPage, jsonText(page.Attributes))
	}
	s.attrToken = aws.ToString(page.NextToken)
	return s
}

// seedView is what the API shows of the seeded objects.
type seedView struct {
	Cluster          types.Cluster
	Clusters         []string // ListClusters, the seeded cluster only
	TaskDefs         map[string]types.TaskDefinition
	TaskDefTags      map[string][]types.Tag
	ActiveTaskDefs   []string
	InactiveTaskDefs []string
	Families         []string
	Instance         types.ContainerInstance
	Instances        []string
	Tasks            map[string]types.Task
	RunningTasks     []string
	StoppedTasks     []string
	Service          types.Service
	Services         []string
	Attributes       []types.Attribute
	AttributesPage2  []types.Attribute // ListAttributes continued with seeded.attrToken
	Settings         []types.Setting
	Tags             map[string][]types.Tag // ListTagsForResource by ARN
}

// viewSeed describes and lists everything seedState created.
func viewSeed(t *testing.T, c *ecs.Client, s seeded) seedView {
	t.Helper()
	ctx := ctxT(t)
	cl := aws.String(seedCluster)
	var st seedView

	clusters := must(c.DescribeClusters(ctx, &ecs.DescribeClustersInput{
		Clusters: []string{seedCluster},
		Include:  []types.ClusterField{types.ClusterFieldTags, types.ClusterFieldSettings, types.ClusterFieldStatistics, types.ClusterFieldConfigurations},
	}))(t)
	if len(clusters.Clusters) != 1 {
		t.Fatalf("DescribeClusters %s: clusters %d, failures %s", seedCluster, len(clusters.Clusters), jsonText(clusters.Failures))
	}
	st.Cluster = clusters.Clusters[0]
	// Other tests' clusters may share the store: keep the seeded one.
	st.Clusters = slices.DeleteFunc(must(c.ListClusters(ctx, &ecs.ListClustersInput{}))(t).ClusterArns, func(arn string) bool { return arn != s.clusterArn })

	st.TaskDefs, st.TaskDefTags = map[string]types.TaskDefinition{}, map[string][]types.Tag{}
	for _, arn := range []string{s.web1, s.web2} {
		td := must(c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
			TaskDefinition: aws.String(arn), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags},
		}))(t)
		st.TaskDefs[arn], st.TaskDefTags[arn] = *td.TaskDefinition, td.Tags
	}
	st.ActiveTaskDefs = must(c.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("web")}))(t).TaskDefinitionArns
	st.InactiveTaskDefs = must(c.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("web"), Status: types.TaskDefinitionStatusInactive}))(t).TaskDefinitionArns
	st.Families = must(c.ListTaskDefinitionFamilies(ctx, &ecs.ListTaskDefinitionFamiliesInput{FamilyPrefix: aws.String("web")}))(t).Families

	cis := must(c.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{
		Cluster: cl, ContainerInstances: []string{s.instance}, Include: []types.ContainerInstanceField{types.ContainerInstanceFieldTags},
	}))(t)
	if len(cis.ContainerInstances) != 1 {
		t.Fatalf("DescribeContainerInstances %s: failures %s", s.instance, jsonText(cis.Failures))
	}
	st.Instance = cis.ContainerInstances[0]
	st.Instances = must(c.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: cl}))(t).ContainerInstanceArns

	tasks := must(c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: cl, Tasks: []string{s.task, s.stopped}, Include: []types.TaskField{types.TaskFieldTags}}))(t)
	if len(tasks.Tasks) != 2 {
		t.Fatalf("DescribeTasks: %d tasks, failures %s", len(tasks.Tasks), jsonText(tasks.Failures))
	}
	st.Tasks = map[string]types.Task{}
	for _, task := range tasks.Tasks {
		st.Tasks[aws.ToString(task.TaskArn)] = task
	}
	st.RunningTasks = must(c.ListTasks(ctx, &ecs.ListTasksInput{Cluster: cl}))(t).TaskArns
	st.StoppedTasks = must(c.ListTasks(ctx, &ecs.ListTasksInput{Cluster: cl, DesiredStatus: types.DesiredStatusStopped}))(t).TaskArns

	svcs := must(c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: cl, Services: []string{seedService}, Include: []types.ServiceField{types.ServiceFieldTags}}))(t)
	if len(svcs.Services) != 1 {
		t.Fatalf("DescribeServices %s: failures %s", seedService, jsonText(svcs.Failures))
	}
	st.Service = svcs.Services[0]
	st.Services = must(c.ListServices(ctx, &ecs.ListServicesInput{Cluster: cl}))(t).ServiceArns

	st.Attributes = must(c.ListAttributes(ctx, &ecs.ListAttributesInput{Cluster: cl, TargetType: types.TargetTypeContainerInstance}))(t).Attributes
	st.AttributesPage2 = must(c.ListAttributes(ctx, &ecs.ListAttributesInput{
		Cluster: cl, TargetType: types.TargetTypeContainerInstance, MaxResults: aws.Int32(seedAttrPage), NextToken: aws.String(s.attrToken),
	}))(t).Attributes
	st.Settings = must(c.ListAccountSettings(ctx, &ecs.ListAccountSettingsInput{}))(t).Settings

	st.Tags = map[string][]types.Tag{}
	for _, arn := range []string{s.clusterArn, s.web2, s.instance, s.task, s.serviceArn} {
		st.Tags[arn] = must(c.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String(arn)}))(t).Tags
	}
	return st
}

// checkSeeded checks, field by field, that st shows what seedState
// created.
func checkSeeded(t *testing.T, when string, st seedView, s seeded) {
	t.Helper()
	errorf := func(format string, args ...any) {
		t.Helper()
		t.Errorf(when+": "+format, args...)
	}
	eq := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			errorf("%s = %v, want %v", what, got, want)
		}
	}
	eqTags := func(what string, got, want []types.Tag) {
		t.Helper()
		if g, w := tagMapOf(got), tagMapOf(want); !reflect.DeepEqual(g, w) {
			errorf("%s tags = %v, want %v", what, g, w)
		}
	}

	cl := st.Cluster
	eq("cluster ARN", aws.ToString(cl.ClusterArn), "arn:aws:ecs:us-east-1:123456789012:cluster/"+seedCluster)
	eq("cluster status", aws.ToString(cl.Status), "ACTIVE")
	eqTags("cluster", cl.Tags, s.clusterTags)
	if len(cl.Settings) != 1 || cl.Settings[0].Name != types.ClusterSettingNameContainerInsights || aws.ToString(cl.Settings[0].Value) != "enabled" {
		errorf("cluster settings = %s, want containerInsights=enabled", jsonText(cl.Settings))
	}
	eq("cluster registeredContainerInstancesCount", cl.RegisteredContainerInstancesCount, int32(1))
	eq("cluster pendingTasksCount", cl.PendingTasksCount, int32(1))
	eq("cluster runningTasksCount", cl.RunningTasksCount, int32(0))
	eq("cluster activeServicesCount", cl.ActiveServicesCount, int32(1))
	eq("ListClusters", st.Clusters, []string{s.clusterArn})

	web1, web2 := st.TaskDefs[s.web1], st.TaskDefs[s.web2]
	eq("web:1 ARN", aws.ToString(web1.TaskDefinitionArn), "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1")
	eq("web:1 revision", web1.Revision, int32(1))
	eq("web:1 status", web1.Status, types.TaskDefinitionStatusInactive)
	if web1.DeregisteredAt == nil {
		errorf("web:1 has no deregisteredAt")
	}
	eq("web:2 ARN", aws.ToString(web2.TaskDefinitionArn), "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2")
	eq("web:2 revision", web2.Revision, int32(2))
	eq("web:2 status", web2.Status, types.TaskDefinitionStatusActive)
	if len(web2.ContainerDefinitions) != 1 {
		errorf("web:2 has %d containers, want 1", len(web2.ContainerDefinitions))
	} else {
		cd := web2.ContainerDefinitions[0]
		eq("web:2 image", aws.ToString(cd.Image), "nginx:1.27")
		eq("web:2 memory", aws.ToInt32(cd.Memory), int32(seedTaskMem))
		if len(cd.PortMappings) != 1 || aws.ToInt32(cd.PortMappings[0].HostPort) != seedHostPort {
			errorf("web:2 port mappings = %s, want host port %d", jsonText(cd.PortMappings), seedHostPort)
		}
		if len(cd.Environment) != 1 || aws.ToString(cd.Environment[0].Value) != "restart" {
			errorf("web:2 environment = %s", jsonText(cd.Environment))
		}
	}
	eqTags("web:2", st.TaskDefTags[s.web2], s.web2Tags)
	eqTags("web:1", st.TaskDefTags[s.web1], nil)
	eq("ACTIVE web revisions", st.ActiveTaskDefs, []string{s.web2})
	eq("INACTIVE web revisions", st.InactiveTaskDefs, []string{s.web1})
	eq("families", st.Families, []string{"web"})

	ci := st.Instance
	eq("instance ARN", aws.ToString(ci.ContainerInstanceArn), s.instance)
	eq("instance status", aws.ToString(ci.Status), "ACTIVE")
	eq("instance remaining CPU", remaining(ci, "CPU"), int32(seedCPU-seedTaskCPU))
	eq("instance remaining MEMORY", remaining(ci, "MEMORY"), int32(seedMemory-seedTaskMem))
	for _, r := range ci.RemainingResources {
		if aws.ToString(r.Name) == "PORTS" && slices.Contains(r.StringSetValue, fmt.Sprint(seedHostPort)) {
			errorf("host port %d still reserved after its task stopped: %v", seedHostPort, r.StringSetValue)
		}
	}
	eq("instance pendingTasksCount", ci.PendingTasksCount, int32(1))
	eq("instance runningTasksCount", ci.RunningTasksCount, int32(0))
	attrs := map[string]string{}
	for _, a := range ci.Attributes {
		attrs[aws.ToString(a.Name)] = aws.ToString(a.Value)
	}
	eq("instance attribute stack", attrs["stack"], "blue")
	eq("instance attribute rack", attrs["rack"], "r1")
	eq("ListContainerInstances", st.Instances, []string{s.instance})
	if len(st.Attributes) != len(ci.Attributes) {
		errorf("ListAttributes returned %d attributes, the instance has %d", len(st.Attributes), len(ci.Attributes))
	}
	if len(st.AttributesPage2) != seedAttrPage {
		errorf("ListAttributes continued from the seeded token returned %d attributes, want %d", len(st.AttributesPage2), seedAttrPage)
	}

	task := st.Tasks[s.task]
	eq("task status", aws.ToString(task.LastStatus)+"/"+aws.ToString(task.DesiredStatus), "PENDING/RUNNING")
	eq("task definition of the task", aws.ToString(task.TaskDefinitionArn), s.web1)
	eq("task instance", aws.ToString(task.ContainerInstanceArn), s.instance)
	eq("task group", aws.ToString(task.Group), "batch")
	eq("task startedBy", aws.ToString(task.StartedBy), "restart-test")
	eqTags("task", task.Tags, s.taskTags)
	stopped := st.Tasks[s.stopped]
	eq("stopped task status", aws.ToString(stopped.LastStatus)+"/"+aws.ToString(stopped.DesiredStatus), "STOPPED/STOPPED")
	eq("stopped task stopCode", stopped.StopCode, types.TaskStopCodeUserInitiated)
	eq("stopped task reason", aws.ToString(stopped.StoppedReason), seedStopCause)
	eq("stopped task definition", aws.ToString(stopped.TaskDefinitionArn), s.web2)
	eq("ListTasks RUNNING", st.RunningTasks, []string{s.task})
	eq("ListTasks STOPPED", st.StoppedTasks, []string{s.stopped})

	svc := st.Service
	eq("service ARN", aws.ToString(svc.ServiceArn), "arn:aws:ecs:us-east-1:123456789012:service/"+seedCluster+"/"+seedService)
	eq("service status", aws.ToString(svc.Status), "ACTIVE")
	eq("service desiredCount", svc.DesiredCount, int32(0))
	eq("service task definition", aws.ToString(svc.TaskDefinition), s.web2)
	eqTags("service", svc.Tags, s.serviceTags)
	if len(svc.Deployments) != 1 || aws.ToString(svc.Deployments[0].Status) != "PRIMARY" || aws.ToString(svc.Deployments[0].TaskDefinition) != s.web2 {
		errorf("service deployments = %s, want one PRIMARY deployment of %s", jsonText(svc.Deployments), s.web2)
	}
	eq("ListServices", st.Services, []string{s.serviceArn})

	if len(st.Settings) != 1 || st.Settings[0].Name != types.SettingNameContainerInsights || aws.ToString(st.Settings[0].Value) != "enhanced" ||
		aws.ToString(st.Settings[0].PrincipalArn) != "arn:aws:iam::123456789012:root" {
		errorf("account settings = %s, want containerInsights=enhanced for the root principal", jsonText(st.Settings))
	}

	eqTags("ListTagsForResource cluster", st.Tags[s.clusterArn], s.clusterTags)
	eqTags("ListTagsForResource web:2", st.Tags[s.web2], s.web2Tags)
	eqTags("ListTagsForResource instance", st.Tags[s.instance], nil)
	eqTags("ListTagsForResource task", st.Tags[s.task], s.taskTags)
	eqTags("ListTagsForResource service", st.Tags[s.serviceArn], s.serviceTags)
}

// checkCarriesOn checks that a server started on stored state continues
// it: client tokens replay, revisions and reservations go on from where
// they were.
func checkCarriesOn(t *testing.T, e *env, s seeded, st seedView) {
	t.Helper()
	ctx := ctxT(t)
	cl := aws.String(seedCluster)

	replay := must(e.ecs.RunTask(ctx, s.runInput))(t)
	if len(replay.Tasks) != 1 || aws.ToString(replay.Tasks[0].TaskArn) != s.task {
		t.Errorf("RunTask repeated with client token %q started %s, want the stored answer %s", seedRunToken, jsonText(replay.Tasks), s.task)
	}
	if n := len(must(e.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: cl}))(t).TaskArns); n != 1 {
		t.Errorf("after replaying RunTask %d tasks run, want 1", n)
	}

	arn := e.taskDef(t, "web", seedTaskMem, 0)
	if want := "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3"; arn != want {
		t.Errorf("next registration of web is %s, want %s", arn, want)
	}

	// web:2 maps host port 8080, which the stopped task released.
	run := must(e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: cl, TaskDefinition: aws.String(s.web2)}))(t)
	if len(run.Tasks) != 1 {
		t.Fatalf("RunTask web:2 after the restart: failures %s", jsonText(run.Failures))
	}
	ci := must(e.ecs.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{Cluster: cl, ContainerInstances: []string{s.instance}}))(t).ContainerInstances[0]
	if got, want := remaining(ci, "CPU"), remaining(st.Instance, "CPU")-seedTaskCPU; got != want {
		t.Errorf("remaining CPU after one more task = %d, want %d", got, want)
	}
	if got, want := ci.PendingTasksCount, st.Instance.PendingTasksCount+1; got != want {
		t.Errorf("pendingTasksCount after one more task = %d, want %d", got, want)
	}
}

func tagMapOf(ts []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range ts {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}

// sameView fails the test with every field in which two views differ.
func sameView(t *testing.T, when string, before, after seedView) {
	t.Helper()
	for _, d := range diffJSON(before, after) {
		t.Errorf("%s: changed %s", when, d)
	}
}

// diffJSON compares the JSON forms of a and b and returns the paths at
// which they differ, with both values.
func diffJSON(a, b any) []string {
	var av, bv any
	for _, x := range []struct {
		in  any
		out *any
	}{{a, &av}, {b, &bv}} {
		raw, err := json.Marshal(x.in)
		if err != nil {
			return []string{fmt.Sprintf("encode: %v", err)}
		}
		if err := json.Unmarshal(raw, x.out); err != nil {
			return []string{fmt.Sprintf("decode: %v", err)}
		}
	}
	var diffs []string
	var walk func(path string, a, b any)
	walk = func(path string, a, b any) {
		switch at := a.(type) {
		case map[string]any:
			bt, ok := b.(map[string]any)
			if !ok {
				break
			}
			keys := map[string]bool{}
			for k := range at {
				keys[k] = true
			}
			for k := range bt {
				keys[k] = true
			}
			sorted := make([]string, 0, len(keys))
			for k := range keys {
				sorted = append(sorted, k)
			}
			sort.Strings(sorted)
			for _, k := range sorted {
				walk(path+"."+k, at[k], bt[k])
			}
			return
		case []any:
			bt, ok := b.([]any)
			if !ok || len(bt) != len(at) {
				break
			}
			for i := range at {
				walk(fmt.Sprintf("%s[%d]", path, i), at[i], bt[i])
			}
			return
		}
		if !reflect.DeepEqual(a, b) {
			diffs = append(diffs, fmt.Sprintf("%s: %s → %s", path, jsonText(a), jsonText(b)))
		}
	}
	walk("", av, bv)
	return diffs
}
