package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/scheduler"
)

// testdata/v1 holds records of layout 1 exactly as Wharf wrote them (at
// commit fbe5b65, before this package existed), one file per kind mapping
// store keys to records: a server with three hollow nodes ran a cluster,
// a deleted cluster, task definitions with most container fields set, an
// awsvpc task, a stopped task, and a service with a circuit breaker that
// was updated once and then rolled back once; one node's agent was then
// stopped. These files are never regenerated: they are what a release in
// the field has on disk. A new layout adds testdata/v2 beside them.

// goldenRecords reads one golden file, in key order.
func goldenRecords(t *testing.T, file string) (keys []string, raw map[string]json.RawMessage) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "v1", file))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(raw) == 0 {
		t.Fatalf("%s holds no records", file)
	}
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, raw
}

// checkGolden decodes every record of file as a T, and checks that it
// encodes back to the same JSON, and again after viaWire (which converts
// the record's stored shapes to the wire types and back). It returns the
// records by key for checks of their values.
func checkGolden[T any, P interface {
	*T
	Record
}](t *testing.T, file string, viaWire func(t *testing.T, r *T)) map[string]*T {
	t.Helper()
	keys, raw := goldenRecords(t, file)
	out := map[string]*T{}
	for _, key := range keys {
		t.Run(path.Base(key), func(t *testing.T) {
			r, err := Decode[T, P](raw[key])
			if err != nil {
				t.Fatalf("decode %s: %v", key, err)
			}
			sameJSON(t, key+" re-encoded", raw[key], r)
			if viaWire != nil {
				viaWire(t, r)
				sameJSON(t, key+" through the wire types", raw[key], r)
			}
			out[key] = r
		})
	}
	if len(out) != len(keys) {
		t.FailNow()
	}
	return out
}

// throughWire replaces *s by its conversion to the wire type and back,
// checking on the way that the wire type encodes to the same JSON as the
// stored shape.
func throughWire[S, W any](t *testing.T, what string, s *S, toWire func(*S) W, fromWire func(*W) S) {
	t.Helper()
	stored, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	w := toWire(s)
	sameJSON(t, what+" as the wire type", stored, &w)
	*s = fromWire(&w)
}

// sameJSON checks that v encodes to a JSON value equal to want.
func sameJSON(t *testing.T, what string, want []byte, v any) {
	t.Helper()
	got, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s: encode: %v", what, err)
	}
	var a, b any
	if err := json.Unmarshal(want, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got, &b); err != nil {
		t.Fatal(err)
	}
	var diffs []string
	diffJSON(a, b, "", &diffs)
	if len(diffs) > 0 {
		t.Errorf("%s differs from the golden record:\n\t%s", what, strings.Join(diffs, "\n\t"))
	}
}

// diffJSON lists where two decoded JSON values differ.
func diffJSON(want, got any, at string, out *[]string) {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			break
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				*out = append(*out, fmt.Sprintf("%s/%s: missing (golden %v)", at, k, wv))
				continue
			}
			diffJSON(wv, gv, at+"/"+k, out)
		}
		for k, gv := range g {
			if _, ok := w[k]; !ok {
				*out = append(*out, fmt.Sprintf("%s/%s: %v is not in the golden record", at, k, gv))
			}
		}
		return
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			break
		}
		for i := range w {
			diffJSON(w[i], g[i], fmt.Sprintf("%s/%d", at, i), out)
		}
		return
	}
	if !reflect.DeepEqual(want, got) {
		*out = append(*out, fmt.Sprintf("%s: %v, golden %v", at, got, want))
	}
}

// record returns the only record whose key ends with suffix.
func record[T any](t *testing.T, recs map[string]*T, suffix string) *T {
	t.Helper()
	var found *T
	for k, r := range recs {
		if strings.HasSuffix(k, suffix) {
			if found != nil {
				t.Fatalf("several golden records end with %q", suffix)
			}
			found = r
		}
	}
	if found == nil {
		t.Fatalf("no golden record ends with %q", suffix)
	}
	return found
}

func TestGoldenClusters(t *testing.T) {
	recs := checkGolden[ClusterRecord](t, "clusters.json", func(t *testing.T, r *ClusterRecord) {
		throughWire(t, "cluster", &r.Cluster, (*Cluster).Wire, ClusterFromWire)
	})
	c := record(t, recs, "/clusters/c")
	if c.ClusterArn != "arn:aws:ecs:us-east-1:123456789012:cluster/c" || c.Status != "ACTIVE" || c.InactiveAt != nil {
		t.Errorf("cluster c: %s %s inactive at %v", c.ClusterArn, c.Status, c.InactiveAt)
	}
	if w := c.Wire(); len(w.Tags) != 1 || w.Tags[0] != (ecsapi.Tag{Key: "team", Value: "platform"}) ||
		len(w.Settings) != 1 || w.Settings[0].Name != ecsapi.ClusterSettingNameContainerInsights || w.Settings[0].Value != "disabled" {
		t.Errorf("cluster c: tags %+v, settings %+v", w.Tags, w.Settings)
	}
	if gone := record(t, recs, "/clusters/gone"); gone.Status != "INACTIVE" || gone.InactiveAt == nil || gone.InactiveAt.IsZero() {
		t.Errorf("deleted cluster: %s inactive at %v", gone.Status, gone.InactiveAt)
	}
}

func TestGoldenTaskDefinitions(t *testing.T) {
	recs := checkGolden[TaskDefRecord](t, "taskdefs.json", func(t *testing.T, r *TaskDefRecord) {
		throughWire(t, "task definition", &r.TaskDefinition, (*TaskDefinition).Wire, TaskDefinitionFromWire)
		tags := WireTags(r.Tags)
		r.Tags = TagsFromWire(tags)
	})
	web := record(t, recs, "/taskdefs/web/0000000001")
	if web.TaskDefinitionArn != "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1" || web.Revision != 1 || web.NetworkMode != "bridge" ||
		!slices.Equal(web.RequiresCompatibilities, []ecsapi.Compatibility{"EC2"}) || len(web.ContainerDefinitions) != 2 {
		t.Fatalf("web:1: %+v", web.TaskDefinition)
	}
	if len(web.Tags) != 1 || web.Tags[0] != (Tag{Key: "app", Value: "web"}) {
		t.Errorf("web:1 tags %+v", web.Tags)
	}
	app := web.ContainerDefinitions[1]
	if app.Name != "app" || len(app.PortMappings) != 2 {
		t.Fatalf("container %+v", app)
	}
	udp := app.PortMappings[1]
	if udp.ContainerPort == nil || *udp.ContainerPort != 53 || udp.HostPort == nil || *udp.HostPort != 5353 || udp.Protocol != "udp" {
		t.Errorf("udp port mapping %+v", udp)
	}
	if hc := app.HealthCheck; hc == nil || hc.Command[0] != "CMD-SHELL" || hc.Retries == nil || *hc.Retries != 2 {
		t.Errorf("health check %+v", hc)
	}
	if len(app.DependsOn) != 1 || app.DependsOn[0] != (ContainerDependency{ContainerName: "init", Condition: "COMPLETE"}) {
		t.Errorf("dependsOn %+v", app.DependsOn)
	}
	if len(app.Ulimits) != 1 || app.Ulimits[0] != (Ulimit{Name: "nofile", SoftLimit: 4096, HardLimit: 8192}) {
		t.Errorf("ulimits %+v", app.Ulimits)
	}
	if len(web.Volumes) != 2 || web.Volumes[0].Host == nil || web.Volumes[0].Host.SourcePath != "/srv/data" || web.Volumes[1].DockerVolumeConfiguration.Scope != "task" {
		t.Errorf("volumes %+v", web.Volumes)
	}
	// Enumerations are plain strings in records and typed on the wire.
	w := web.Wire()
	if w.NetworkMode != ecsapi.NetworkModeBridge || w.ContainerDefinitions[1].PortMappings[1].Protocol != ecsapi.TransportProtocolUdp ||
		w.ContainerDefinitions[1].DependsOn[0].Condition != ecsapi.ContainerConditionComplete || w.ContainerDefinitions[1].LogConfiguration.LogDriver != ecsapi.LogDriverJsonFile {
		t.Errorf("wire enumerations: %s %s %s", w.NetworkMode, w.ContainerDefinitions[1].PortMappings[1].Protocol, w.ContainerDefinitions[1].DependsOn[0].Condition)
	}
	if vpc := record(t, recs, "/taskdefs/vpc/0000000001"); vpc.NetworkMode != "awsvpc" || vpc.Cpu != "256" || vpc.Memory != "512" {
		t.Errorf("vpc:1: %s %s %s", vpc.NetworkMode, vpc.Cpu, vpc.Memory)
	}
}

func TestGoldenFamilies(t *testing.T) {
	recs := checkGolden[FamilyRecord](t, "families.json", nil)
	if svc := record(t, recs, "/families/svc"); svc.LatestRevision != 3 {
		t.Errorf("family svc: latest revision %d", svc.LatestRevision)
	}
}

func TestGoldenInstances(t *testing.T) {
	recs := checkGolden[InstanceRecord](t, "instances.json", func(t *testing.T, r *InstanceRecord) {
		throughWire(t, "container instance", &r.ContainerInstance, (*ContainerInstance).Wire, ContainerInstanceFromWire)
	})
	disconnected := 0
	for key, r := range recs {
		if r.DisconnectedAt != nil {
			disconnected++
			if r.AgentConnected {
				t.Errorf("%s: disconnected at %v and connected", key, r.DisconnectedAt)
			}
		}
		if !strings.HasSuffix(r.ContainerInstanceArn, "/"+path.Base(key)) || r.Status != "ACTIVE" {
			t.Errorf("%s: %s %s", key, r.ContainerInstanceArn, r.Status)
		}
		var memory *Resource
		for i := range r.RemainingResources {
			if r.RemainingResources[i].Name == "MEMORY" {
				memory = &r.RemainingResources[i]
			}
		}
		if memory == nil || memory.IntegerValue <= 0 || memory.IntegerValue > 8192 {
			t.Errorf("%s: remaining memory %+v", key, memory)
		}
	}
	if disconnected != 1 {
		t.Errorf("%d disconnected instances, want the one whose agent was stopped", disconnected)
	}
}

func TestGoldenTasks(t *testing.T) {
	recs := checkGolden[TaskRecord](t, "tasks.json", func(t *testing.T, r *TaskRecord) {
		throughWire(t, "task", &r.Task, (*Task).Wire, TaskFromWire)
		r.Reserved = ReservationOf(r.Reserved.Demand())
	})
	var web, vpc *TaskRecord
	stopped := 0
	for key, r := range recs {
		if r.TaskArn != "arn:aws:ecs:us-east-1:123456789012:task/c/"+path.Base(key) {
			t.Errorf("%s: task ARN %s", key, r.TaskArn)
		}
		if !r.Acknowledged {
			t.Errorf("%s: not acknowledged", key)
		}
		if r.LastStatus == "STOPPED" {
			stopped++
		}
		switch r.TaskDefinitionArn {
		case "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1":
			web = r
		case "arn:aws:ecs:us-east-1:123456789012:task-definition/vpc:1":
			vpc = r
		default:
			if r.Service != "svc" {
				t.Errorf("%s: service %q", key, r.Service)
			}
		}
	}
	if web == nil || vpc == nil || stopped == 0 {
		t.Fatalf("web task %v, awsvpc task %v, %d stopped", web != nil, vpc != nil, stopped)
	}
	want := scheduler.Demand{CPU: 512, Memory: 1024, Ports: []int{8080}, PortsUDP: []int{5353}}
	if got := web.Reserved.Demand(); !reflect.DeepEqual(got, want) {
		t.Errorf("web task reserves %+v, want %+v", got, want)
	}
	if web.LastStatus != "STOPPED" || web.StoppedReason != "golden stop" || web.StopCode != "UserInitiated" || web.StoppedAt == nil {
		t.Errorf("web task: %s %q %s %v", web.LastStatus, web.StoppedReason, web.StopCode, web.StoppedAt)
	}
	if o := web.Overrides; o == nil || len(o.ContainerOverrides) != 1 || o.ContainerOverrides[0].Environment[0] != (KeyValuePair{Name: "EXTRA", Value: "1"}) {
		t.Errorf("web task overrides %+v", web.Overrides)
	}
	var app *Container
	for i := range web.Containers {
		if web.Containers[i].Name == "app" {
			app = &web.Containers[i]
		}
	}
	if app == nil || len(app.NetworkBindings) == 0 || app.NetworkBindings[0].HostPort == nil || *app.NetworkBindings[0].HostPort != 8080 {
		t.Errorf("web task's app container %+v", app)
	}
	if vpc.Reserved.ENI != 1 || len(vpc.Attachments) != 1 || vpc.Attachments[0].Type != "ElasticNetworkInterface" || vpc.Wire().Attachments[0].Details[0].Name == "" {
		t.Errorf("awsvpc task: ENI %d, attachments %+v", vpc.Reserved.ENI, vpc.Attachments)
	}
}

func TestGoldenServices(t *testing.T) {
	recs := checkGolden[ServiceRecord](t, "services.json", func(t *testing.T, r *ServiceRecord) {
		throughWire(t, "service", &r.Service, (*Service).Wire, ServiceFromWire)
		if r.LastCompleted != nil {
			throughWire(t, "last completed deployment", r.LastCompleted, (*Deployment).Wire, DeploymentFromWire)
		}
	})
	svc := record(t, recs, "/services/c/svc")
	if svc.ServiceArn != "arn:aws:ecs:us-east-1:123456789012:service/c/svc" || svc.DesiredCount != 2 || len(svc.Deployments) != 1 {
		t.Fatalf("service: %s desired %d, %d deployments", svc.ServiceArn, svc.DesiredCount, len(svc.Deployments))
	}
	if cb := svc.DeploymentConfiguration.DeploymentCircuitBreaker; cb == nil || !cb.Enable || !cb.Rollback {
		t.Errorf("circuit breaker %+v", cb)
	}
	lc := svc.LastCompleted
	if lc == nil || lc.RolloutState != "COMPLETED" || lc.Id != svc.Deployments[0].Id || lc.TaskDefinition != "arn:aws:ecs:us-east-1:123456789012:task-definition/svc:2" {
		t.Errorf("last completed %+v", lc)
	}
	if _, ok := svc.CountFrom[svc.Deployments[0].Id]; !ok {
		t.Errorf("the rolled back deployment has no count-from time: %v", svc.CountFrom)
	}
	if !strings.HasPrefix(svc.Revisions[svc.Deployments[0].Id], "arn:aws:ecs:us-east-1:123456789012:service-revision/c/svc/") {
		t.Errorf("revisions %v", svc.Revisions)
	}
	if !strings.HasPrefix(svc.CurrentServiceDeploymentKey, "ecs/us-east-1/service-deployments/c/svc/") || !svc.Steady {
		t.Errorf("current service deployment key %q, steady %v", svc.CurrentServiceDeploymentKey, svc.Steady)
	}
}

func TestGoldenIdempotency(t *testing.T) {
	recs := checkGolden[IdempotencyRecord](t, "idempotency.json", nil)
	// The CreateService with client token golden-svc-1 remembers the
	// service it answered with.
	r := record(t, recs, "/idempotency/CreateService/c/676f6c64656e2d7376632d31")
	var out ecsapi.Service
	if err := json.Unmarshal(r.Output, &out); err != nil || out.ServiceName != "svc" || out.ServiceArn != "arn:aws:ecs:us-east-1:123456789012:service/c/svc" {
		t.Errorf("stored answer %s: %v", r.Output, err)
	}
	if len(r.InputHash) != 64 || r.Expires.IsZero() {
		t.Errorf("input hash %q, expires %v", r.InputHash, r.Expires)
	}
}

func TestGoldenServiceDeployments(t *testing.T) {
	recs := checkGolden[ServiceDeploymentRecord](t, "service-deployments.json", func(t *testing.T, r *ServiceDeploymentRecord) {
		throughWire(t, "service deployment", &r.ServiceDeployment, (*ServiceDeployment).Wire, ServiceDeploymentFromWire)
	})
	statuses := map[ecsapi.ServiceDeploymentStatus]int{}
	for key, r := range recs {
		statuses[r.Status]++
		if !strings.HasSuffix(key, "-"+path.Base(r.ServiceDeploymentArn)) || !strings.HasPrefix(r.Target, "ecs-svc/") {
			t.Errorf("%s: ARN %s, target %q", key, r.ServiceDeploymentArn, r.Target)
		}
		if r.Status == "ROLLBACK_SUCCESSFUL" && (r.Rollback == nil || len(r.Sources) == 0) {
			t.Errorf("%s: rollback %+v, sources %v", key, r.Rollback, r.Sources)
		}
	}
	if statuses["SUCCESSFUL"] != 2 || statuses["ROLLBACK_SUCCESSFUL"] != 1 {
		t.Errorf("statuses %v", statuses)
	}
}

func TestGoldenServiceRevisions(t *testing.T) {
	recs := checkGolden[ServiceRevisionRecord](t, "service-revisions.json", func(t *testing.T, r *ServiceRevisionRecord) {
		throughWire(t, "service revision", &r.ServiceRevision, (*ServiceRevision).Wire, ServiceRevisionFromWire)
	})
	var images []string
	for key, r := range recs {
		if r.ServiceRevisionArn != "arn:aws:ecs:us-east-1:123456789012:service-revision/c/svc/"+path.Base(key) || r.LaunchType != "EC2" || len(r.ContainerImages) != 1 {
			t.Errorf("%s: %s %s %+v", key, r.ServiceRevisionArn, r.LaunchType, r.ContainerImages)
			continue
		}
		images = append(images, r.ContainerImages[0].Image)
	}
	sort.Strings(images)
	if !slices.Equal(images, []string{"app:1", "app:2", "app:3"}) {
		t.Errorf("revision images %v", images)
	}
}

func TestDecodeVersions(t *testing.T) {
	_, raw := goldenRecords(t, "families.json")
	base := raw["ecs/us-east-1/families/svc"]
	with := func(members string) []byte { return append([]byte(`{`+members+`,`), base[1:]...) }
	for _, tc := range []struct {
		name    string
		raw     []byte
		version int // of the VersionError expected, or 0 for none
	}{
		{"absent is layout 1", base, 0},
		{"layout 1", with(`"wharfVersion":1`), 0},
		{"a future layout", with(`"wharfVersion":2`), 2},
		{"a future layout this one cannot decode", []byte(`{"wharfVersion":7,"latestRevision":"three"}`), 7},
		{"a negative version", with(`"wharfVersion":-1`), -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Decode[FamilyRecord](tc.raw)
			var verr *VersionError
			switch {
			case tc.version == 0 && err != nil:
				t.Fatalf("decode: %v", err)
			case tc.version == 0:
				if r.LatestRevision != 3 {
					t.Errorf("latest revision %d", r.LatestRevision)
				}
			case !errors.As(err, &verr) || verr.Version != tc.version:
				t.Fatalf("got %v, want a VersionError for version %d", err, tc.version)
			case tc.version > 0 && !strings.Contains(err.Error(), fmt.Sprintf("layout version %d, and this Wharf reads layouts up to %d", tc.version, CurrentVersion)):
				t.Errorf("message %q", err)
			}
		})
	}
	if _, err := Decode[TaskRecord]([]byte(`{"taskArn":`)); err == nil || errors.As(err, new(*VersionError)) {
		t.Errorf("a broken record: %v, want a JSON error", err)
	}
	if err := Check(&TaskRecord{RecordVersion: CurrentVersion + 1}); !errors.As(err, new(*VersionError)) {
		t.Errorf("Check of a newer layout: %v", err)
	}
	if err := Check(&TaskRecord{}); err != nil {
		t.Errorf("Check of layout 1: %v", err)
	}
}

func TestReservation(t *testing.T) {
	d := scheduler.Demand{CPU: 256, Memory: 512, Ports: []int{80, 443}, PortsUDP: []int{53}, ENI: 1}
	r := ReservationOf(d)
	if got := r.Demand(); !reflect.DeepEqual(got, d) {
		t.Errorf("round trip: %+v, want %+v", got, d)
	}
	r.Ports[0] = 8080
	if d.Ports[0] != 80 {
		t.Error("the reservation shares the demand's ports")
	}
	b, _ := json.Marshal(ReservationOf(scheduler.Demand{Memory: 64}))
	if string(b) != `{"CPU":0,"Memory":64,"Ports":null,"PortsUDP":null,"ENI":0}` {
		t.Errorf("JSON %s", b)
	}
}
