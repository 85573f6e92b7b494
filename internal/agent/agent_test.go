package agent

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wharfhq/wharf/internal/agent/metadata"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
)

func dep(name string, on ...string) ecsapi.ContainerDefinition {
	cd := ecsapi.ContainerDefinition{Name: name}
	for _, o := range on {
		cd.DependsOn = append(cd.DependsOn, ecsapi.ContainerDependency{ContainerName: o, Condition: ecsapi.ContainerConditionStart})
	}
	return cd
}

func TestStopWaves(t *testing.T) {
	// app depends on db and init; sidecar on app.
	waves := stopWaves([]ecsapi.ContainerDefinition{dep("db"), dep("init"), dep("app", "db", "init"), dep("sidecar", "app"), dep("lone")})
	want := [][]string{{"sidecar", "lone"}, {"app"}, {"db", "init"}}
	if !slices.EqualFunc(waves, want, slices.Equal[[]string]) {
		t.Fatalf("waves %v, want %v", waves, want)
	}
	if w := stopWaves([]ecsapi.ContainerDefinition{dep("a", "b"), dep("b", "a")}); len(w) != 1 || len(w[0]) != 2 {
		t.Fatalf("a cycle gave %v", w)
	}
}

func TestCreateOrder(t *testing.T) {
	cds := []ecsapi.ContainerDefinition{
		{Name: "app", VolumesFrom: []ecsapi.VolumeFrom{{SourceContainer: "data"}}},
		{Name: "data"},
		{Name: "log", VolumesFrom: []ecsapi.VolumeFrom{{SourceContainer: "app"}}},
	}
	if got := createOrder(cds); !slices.Equal(got, []string{"data", "app", "log"}) {
		t.Fatalf("order %v", got)
	}
}

func TestDependencies(t *testing.T) {
	code := func(n int32) *int32 { return &n }
	m := &taskManager{containers: map[string]*ctr{}}
	for _, cd := range []ecsapi.ContainerDefinition{{Name: "init"}, {Name: "db"}} {
		m.containers[cd.Name] = &ctr{def: &cd}
	}
	check := func(cond ecsapi.ContainerCondition, on string) (bool, string) {
		cd := &ecsapi.ContainerDefinition{Name: "app", DependsOn: []ecsapi.ContainerDependency{{ContainerName: on, Condition: cond}}}
		return m.dependenciesMet(&ctr{def: cd})
	}
	for _, tc := range []struct {
		name      string
		set       func()
		cond      ecsapi.ContainerCondition
		on        string
		met       bool
		impossble bool
	}{
		{"start waits", nil, ecsapi.ContainerConditionStart, "db", false, false},
		{"start met", func() { m.containers["db"].started = true }, ecsapi.ContainerConditionStart, "db", true, false},
		{"healthy waits", func() { m.containers["db"].health = ecsapi.HealthStatusUnknown }, ecsapi.ContainerConditionHealthy, "db", false, false},
		{"healthy met", func() { m.containers["db"].health = ecsapi.HealthStatusHealthy }, ecsapi.ContainerConditionHealthy, "db", true, false},
		{"complete waits", func() { m.containers["init"].started = true }, ecsapi.ContainerConditionComplete, "init", false, false},
		{"success fails", func() { m.containers["init"].status, m.containers["init"].exitCode = "STOPPED", code(1) }, ecsapi.ContainerConditionSuccess, "init", false, true},
		{"complete met anyway", nil, ecsapi.ContainerConditionComplete, "init", true, false},
		{"success met", func() { m.containers["init"].exitCode = code(0) }, ecsapi.ContainerConditionSuccess, "init", true, false},
		{"healthy of an exited container fails", func() { m.containers["db"].status = "STOPPED" }, ecsapi.ContainerConditionHealthy, "db", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.set != nil {
				tc.set()
			}
			met, why := check(tc.cond, tc.on)
			if met != tc.met || (why != "") != tc.impossble {
				t.Fatalf("met %v why %q", met, why)
			}
		})
	}
}

func TestSpec(t *testing.T) {
	a := &Agent{cfg: Config{Cluster: "c", StopTimeout: 30e9}, metadata: metadata.New(nil), metadataPort: 51679, instanceArn: "arn:ci"}
	mem, res, sto := int32(256), int32(128), int32(7)
	td := ecsapi.TaskDefinition{
		Family: "f", Revision: 2, NetworkMode: ecsapi.NetworkModeBridge,
		Volumes: []ecsapi.Volume{{Name: "data", Host: &ecsapi.HostVolumeProperties{SourcePath: "/srv"}}, {Name: "scratch"}},
		ContainerDefinitions: []ecsapi.ContainerDefinition{{
			Name: "web", Image: "img", Cpu: 0, Memory: &mem, MemoryReservation: &res, StopTimeout: &sto,
			Environment:      []ecsapi.KeyValuePair{{Name: "A", Value: "1"}},
			PortMappings:     []ecsapi.PortMapping{{ContainerPort: &mem}},
			MountPoints:      []ecsapi.MountPoint{{SourceVolume: "data", ContainerPath: "/data"}, {SourceVolume: "scratch", ContainerPath: "/tmp"}},
			DockerLabels:     map[string]string{"team": "x", labelTaskArn: "spoofed"},
			LogConfiguration: &ecsapi.LogConfiguration{LogDriver: ecsapi.LogDriverAwslogs, Options: map[string]string{"awslogs-group": "g"}},
		}},
	}
	m := &taskManager{a: a, td: td, task: ecsapi.Task{TaskArn: "arn:aws:ecs:r:1:task/c/0123456789abcdef0123456789abcdef",
		Overrides: &ecsapi.TaskOverride{ContainerOverrides: []ecsapi.ContainerOverride{{Name: "web", Environment: []ecsapi.KeyValuePair{{Name: "A", Value: "2"}}}}}},
		containers: map[string]*ctr{}}
	c := &ctr{def: &m.td.ContainerDefinitions[0], token: "tok", dockerName: containerName(td.Family, td.Revision, "web")}
	m.containers["web"] = c
	spec, err := m.spec(c)
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Join(spec.Env, " ")
	if !strings.Contains(env, "A=2") || !strings.Contains(env, "ECS_CONTAINER_METADATA_URI_V4=http://") || !strings.Contains(env, ":51679/v4/tok") {
		t.Fatalf("env %v", spec.Env)
	}
	if !regexp.MustCompile(`^ecs-f-2-web-[0-9a-f]{20}$`).MatchString(spec.Name) || spec.CPUShares != 2 || spec.MemoryLimit != 256<<20 || spec.MemoryReservation != 128<<20 || spec.StopTimeout != 7e9 {
		t.Fatalf("spec %+v", spec)
	}
	if spec.NetworkMode != "bridge" || len(spec.PortBindings) != 1 || spec.PortBindings[0].HostPort != 0 || spec.PortBindings[0].Protocol != "tcp" {
		t.Fatalf("network %s %+v", spec.NetworkMode, spec.PortBindings)
	}
	if len(spec.Mounts) != 2 || spec.Mounts[0].Source != "/srv" || spec.Mounts[0].Volume || !spec.Mounts[1].Volume || spec.Mounts[1].Source != "wharf-0123456789ab-scratch" {
		t.Fatalf("mounts %+v", spec.Mounts)
	}
	if spec.Labels[labelTaskArn] != m.task.TaskArn || spec.Labels["team"] != "x" || spec.Labels[labelInstance] != "arn:ci" || spec.LogDriver != "json-file" || spec.Labels["wharf.log-option.awslogs-group"] != "g" {
		t.Fatalf("labels %v driver %s", spec.Labels, spec.LogDriver)
	}
	m.td.NetworkMode, m.pauseID = ecsapi.NetworkModeAwsvpc, "pause-id"
	if spec, _ := m.spec(c); spec.NetworkMode != "container:pause-id" || len(spec.PortBindings) != 0 {
		t.Fatalf("awsvpc spec %s %+v", spec.NetworkMode, spec.PortBindings)
	}
}

func TestContainerName(t *testing.T) {
	for _, tc := range []struct {
		family   string
		revision int32
		name     string
		want     string
	}{
		{"web", 3, "nginx", `^ecs-web-3-nginx-[0-9a-f]{20}$`},
		{"shop_api", 12, "log_router.v2", `^ecs-shop_api-12-logrouterv2-[0-9a-f]{20}$`},
		{"vpc", 1, pauseContainerName, `^ecs-vpc-1-internalecspause-[0-9a-f]{20}$`},
		{"Web", 1, "App-1", `^ecs-Web-1-App-1-[0-9a-f]{20}$`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := containerName(tc.family, tc.revision, tc.name)
			if !regexp.MustCompile(tc.want).MatchString(got) {
				t.Fatalf("containerName(%q, %d, %q) = %q, want %s", tc.family, tc.revision, tc.name, got, tc.want)
			}
			if again := containerName(tc.family, tc.revision, tc.name); again == got {
				t.Fatalf("two containers named %q", got)
			}
		})
	}
}
