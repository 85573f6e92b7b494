package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/wharfhq/wharf/internal/testenv"
)

// startDev runs `wharf dev --nodes n` with the test's access key and
// --healthy-after 2s, plus args, and waits for its n instances.
func startDev(t *testing.T, n int, args ...string) *env {
	t.Helper()
	e := prepare(t, config{})
	port := freePort(t)
	e.endpoint = "http://127.0.0.1:" + strconv.Itoa(port)
	e.server = e.start("dev", "dev", append([]string{"--nodes", strconv.Itoa(n), "--data-dir", filepath.Join(e.dir, "dev"),
		"--listen", "127.0.0.1:" + strconv.Itoa(port), "--stop-timeout", "5s", "--log-level", "debug",
		"--access-key-id", testenv.AccessKeyID, "--secret-access-key", testenv.SecretAccessKey,
		"--healthy-after", healthyAfter.String()}, args...)...)
	e.ecs = ecs.NewFromConfig(testenv.AWSConfig(e.endpoint, testenv.Region))
	e.cluster = "default"
	e.waitAnswers(e.server, e.ecs)
	waitFor(t, fmt.Sprintf("%d connected container instances", n), startWait, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), callWait)
		defer cancel()
		list, err := e.ecs.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String(e.cluster)})
		if err != nil {
			return false, err.Error()
		}
		connected := 0
		for _, arn := range list.ContainerInstanceArns {
			e.mu.Lock()
			e.instances[arn] = true
			e.mu.Unlock()
			if e.instance(arn).AgentConnected {
				connected++
			}
		}
		return connected == n, fmt.Sprintf("%d of %d connected", connected, len(list.ContainerInstanceArns))
	})
	// Where the engine has runsc, wharf dev also runs a host of Fargate
	// capacity, whose containers the cleanup removes too.
	info, err := e.docker.Info(context.Background())
	if _, ok := info.Runtimes["runsc"]; err != nil || !ok {
		return e
	}
	waitFor(t, "the host of Fargate capacity", startWait, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), callWait)
		defer cancel()
		list, err := e.ecs.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String(fargatePool)})
		if err != nil {
			return false, err.Error()
		}
		e.mu.Lock()
		for _, arn := range list.ContainerInstanceArns {
			e.instances[arn] = true
		}
		e.mu.Unlock()
		return len(list.ContainerInstanceArns) > 0, "none registered"
	})
	return e
}

// webDef is a task definition whose container app answers body over
// HTTP on 8080, the port mapping named web.
func (e *env) webDef(family, body string, mode types.NetworkMode) map[string]any {
	return map[string]any{
		"family": family, "networkMode": string(mode),
		"containerDefinitions": []map[string]any{{
			"name": "app", "image": e.image, "essential": true, "memoryReservation": 16,
			"command":      []string{"sh", "-c", serviceScript(body)},
			"portMappings": []map[string]any{{"name": "web", "containerPort": 8080, "appProtocol": "http"}},
		}},
	}
}

// cliJSON runs the AWS CLI with a JSON document as --cli-input-json.
func (e *env) cliJSON(timeout time.Duration, doc any, args ...string) []byte {
	e.t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.aws(timeout, append(args, "--cli-input-json", string(b))...)
}

// appContainer returns the id of the running container named app of one of
// the service's running tasks.
func (e *env) appContainer(task types.Task) string {
	e.t.Helper()
	for _, c := range e.containersOf(aws.ToString(task.TaskArn)) {
		if c.Labels["com.amazonaws.ecs.container-name"] == "app" && c.State == "running" {
			return c.ID
		}
	}
	e.t.Fatalf("task %s has no running app container: %s", taskID(aws.ToString(task.TaskArn)), jsonOf(e.containersOf(aws.ToString(task.TaskArn))))
	return ""
}

// execFor is exec with a longer bound, for load loops.
func (e *env) execFor(id, script string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	x, err := e.docker.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: []string{"sh", "-c", script}, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return "", err
	}
	att, err := e.docker.ContainerExecAttach(ctx, x.ID, container.ExecAttachOptions{})
	if err != nil {
		return "", err
	}
	defer att.Close()
	var out bytes.Buffer
	_, err = stdcopy.StdCopy(&out, &out, att.Reader)
	return out.String(), err
}

// load is a bounded request loop in a container: sequential GETs of url
// until /tmp/stop-load exists, at most max requests or for at most d.
type load struct {
	done chan struct{}
	out  string
	err  error
}

func (e *env) startLoad(id, url string, max int, d time.Duration) *load {
	e.exec(id, "rm -f /tmp/stop-load")
	script := fmt.Sprintf(`end=$(( $(date +%%s) + %d )); i=0; f=0
while [ $i -lt %d ] && [ ! -e /tmp/stop-load ] && [ $(date +%%s) -lt $end ]; do
  if ! timeout 10 wget -q -O /dev/null %s; then f=$((f+1)); echo "failed request $i at $(date +%%T)"; fi
  i=$((i+1))
done
echo "requests=$i failed=$f"`, int(d/time.Second), max, url)
	l := &load{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		l.out, l.err = e.execFor(id, script, d+30*time.Second)
	}()
	return l
}

var loadResult = regexp.MustCompile(`requests=(\d+) failed=(\d+)`)

// stop ends the loop and returns how many requests it made and how many
// failed.
func (l *load) stop(e *env, id string) (requests, failed int) {
	e.t.Helper()
	e.exec(id, "touch /tmp/stop-load")
	<-l.done
	if l.err != nil {
		e.t.Fatalf("load loop: %v\n%s", l.err, l.out)
	}
	m := loadResult.FindStringSubmatch(l.out)
	if m == nil {
		e.t.Fatalf("load loop output: %s", l.out)
	}
	requests, _ = strconv.Atoi(m[1])
	failed, _ = strconv.Atoi(m[2])
	if failed > 0 {
		e.t.Logf("load loop:\n%s", l.out)
	}
	return requests, failed
}

// get fetches url from inside a container.
func (e *env) get(id, url string) (string, bool) {
	out, code := e.exec(id, "timeout 5 wget -q -O - "+url)
	return strings.TrimSpace(out), code == 0
}

// TestServiceConnectMesh is the seed's scenario on `wharf dev --nodes 2`,
// driven by the AWS CLI: apple (awsvpc) and then banana (bridge, mutual
// TLS) are client-server services that call each other by alias with no
// redeploy; front is a client of both; cherry, created after front
// started, is reachable from front within 2 s. A backend task stopped
// under load and a rolling deployment under load fail no request.
func TestServiceConnectMesh(t *testing.T) {
	// Certificates live 12 s, so that the proxies renew theirs during
	// the test, under load.
	e := startDev(t, 2, "--service-connect-cert-lifetime", "12s")
	e.aws(callWait, "ecs", "update-cluster", "--cluster", e.cluster, "--service-connect-defaults", "namespace=fruit")

	scFor := func(name string, tls bool) map[string]any {
		svc := map[string]any{"portName": "web", "discoveryName": name, "clientAliases": []map[string]any{{"port": 80}}}
		if tls {
			svc["tls"] = map[string]any{"issuerCertificateAuthority": map[string]any{"awsPcaAuthorityArn": "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/wharf"}}
		}
		return map[string]any{"enabled": true, "services": []any{svc}}
	}
	create := func(name string, desired int, sc map[string]any, tags ...map[string]string) {
		svcs, _ := sc["services"].([]any)
		if len(svcs) > 0 && svcs[0].(map[string]any)["tls"] != nil {
			// Debian's AWS CLI (2.9) predates serviceConnectConfiguration's
			// tls; the SDK has it.
			b, _ := json.Marshal(sc)
			var conf types.ServiceConnectConfiguration
			if err := json.Unmarshal(b, &conf); err != nil {
				t.Fatal(err)
			}
			in := &ecs.CreateServiceInput{Cluster: aws.String(e.cluster), ServiceName: aws.String(name), TaskDefinition: aws.String(name),
				DesiredCount: aws.Int32(int32(desired)), ServiceConnectConfiguration: &conf}
			for k, v := range tags[0] { // every TLS service here has tags
				in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
			}
			ctx, cancel := context.WithTimeout(context.Background(), callWait)
			defer cancel()
			if _, err := e.ecs.CreateService(ctx, in); err != nil {
				t.Fatalf("CreateService %s: %v", name, err)
			}
			return
		}
		in := map[string]any{"cluster": e.cluster, "serviceName": name, "taskDefinition": name, "desiredCount": desired, "serviceConnectConfiguration": sc}
		if len(tags) > 0 {
			var list []map[string]string
			for k, v := range tags[0] {
				list = append(list, map[string]string{"key": k, "value": v})
			}
			in["tags"] = list
		}
		e.cliJSON(callWait, in, "ecs", "create-service")
	}
	tasksOf := func(name string) []types.Task {
		_, tasks := e.waitStable(name, e.latest(name))
		return tasks
	}

	e.cliJSON(callWait, e.webDef("apple", "apple", types.NetworkModeAwsvpc), "ecs", "register-task-definition")
	e.cliJSON(callWait, e.webDef("banana", "banana", types.NetworkModeBridge), "ecs", "register-task-definition")
	front := e.webDef("front", "front", types.NetworkModeBridge)
	front["containerDefinitions"].([]map[string]any)[0]["portMappings"] = []any{}
	e.cliJSON(callWait, front, "ecs", "register-task-definition")
	e.cliJSON(callWait, e.webDef("cherry", "cherry", types.NetworkModeBridge), "ecs", "register-task-definition")

	// apple first, then banana: apple's tasks reach banana without a
	// restart, and banana's reach apple.
	create("apple", 2, scFor("apple", false))
	e.servicesStable("apple")
	apples := tasksOf("apple")
	appleStarted := e.inspect(e.appContainer(apples[0])).State.StartedAt
	create("banana", 2, scFor("banana", true), map[string]string{"wharf:service-connect:mtls": "true"})
	e.servicesStable("banana")
	bananas := tasksOf("banana")
	for _, task := range apples {
		id := e.appContainer(task)
		waitFor(t, "apple task "+taskID(aws.ToString(task.TaskArn))+" to reach banana.fruit", 5*time.Second, func() (bool, string) {
			body, ok := e.get(id, "http://banana.fruit/")
			return ok && body == "banana", body
		})
	}
	if started := e.inspect(e.appContainer(apples[0])).State.StartedAt; started != appleStarted {
		t.Errorf("apple's container restarted: started %s, then %s", appleStarted, started)
	}
	for _, url := range []string{"http://apple.fruit/", "http://apple/", "http://apple.fruit:80/"} {
		if body, ok := e.get(e.appContainer(bananas[0]), url); !ok || body != "apple" {
			t.Errorf("banana → %s: %q", url, body)
		}
	}

	// front is a client of both.
	create("front", 1, map[string]any{"enabled": true})
	e.servicesStable("front")
	frontID := e.appContainer(tasksOf("front")[0])
	for name := range map[string]bool{"apple": true, "banana": true} {
		if body, ok := e.get(frontID, "http://"+name+".fruit/"); !ok || body != name {
			t.Errorf("front → %s: %q", name, body)
		}
	}

	// A service created after front started is reachable from front
	// within 2 s of its task being registered.
	create("cherry", 1, scFor("cherry", false))
	var registered time.Time
	sd := testenv.CloudMap(e.endpoint)
	waitFor(t, "cherry's task in Cloud Map", serviceWait, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), callWait)
		defer cancel()
		out, err := sd.DiscoverInstances(ctx, &servicediscovery.DiscoverInstancesInput{NamespaceName: aws.String("fruit"), ServiceName: aws.String("cherry")})
		if err != nil {
			return false, err.Error()
		}
		if len(out.Instances) > 0 {
			registered = time.Now()
			return true, ""
		}
		return false, "no instances"
	})
	for {
		if body, ok := e.get(frontID, "http://cherry.fruit/"); ok && body == "cherry" {
			break
		}
		if time.Since(registered) > 2*time.Second {
			hosts, _ := e.exec(frontID, "cat /etc/hosts")
			t.Fatalf("front could not reach cherry %v after it registered; /etc/hosts:\n%s", time.Since(registered), hosts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("cherry reachable from front %v after it registered", time.Since(registered).Round(time.Millisecond))

	// Stop a backend task under load: the proxies drain it and retry.
	l := e.startLoad(frontID, "http://apple.fruit/", 20000, 60*time.Second)
	time.Sleep(2 * time.Second)
	e.aws(callWait, "ecs", "stop-task", "--cluster", e.cluster, "--task", aws.ToString(apples[0].TaskArn), "--reason", "e2e: stop under load")
	e.waitStopped(aws.ToString(apples[0].TaskArn))
	time.Sleep(2 * time.Second)
	requests, failed := l.stop(e, frontID)
	t.Logf("stop under load: %d requests, %d failed", requests, failed)
	if failed > 0 || requests < 50 {
		t.Errorf("stopping an apple task under load: %d of %d requests failed", failed, requests)
	}

	// Rolling deployments of apple and of banana (mutual TLS) under load.
	e.servicesStable("apple")
	l = e.startLoad(frontID, "http://apple.fruit/", 20000, 120*time.Second)
	lb := e.startLoad(frontID, "http://banana.fruit/", 20000, 120*time.Second)
	e.aws(callWait, "ecs", "update-service", "--cluster", e.cluster, "--service", "apple", "--force-new-deployment")
	e.aws(callWait, "ecs", "update-service", "--cluster", e.cluster, "--service", "banana", "--force-new-deployment")
	e.servicesStable("apple", "banana")
	for name, l := range map[string]*load{"apple": l, "banana": lb} {
		n, f := l.stop(e, frontID)
		t.Logf("%s's rolling deployment under load: %d requests, %d failed", name, n, f)
		if f > 0 || n < 50 {
			t.Errorf("%s's rolling deployment under load: %d of %d requests failed", name, f, n)
		}
		if name == "apple" {
			requests += n
		}
	}

	// front called banana (mutual TLS) throughout with certificates that
	// live 12 s: its proxy's was renewed several times under load.
	log, err := os.ReadFile(e.server.log)
	if err != nil {
		t.Fatal(err)
	}
	frontArn := aws.ToString(tasksOf("front")[0].TaskArn)
	if n := regexp.MustCompile(`msg="Service Connect certificate issued".* task_arn=`+regexp.QuoteMeta(frontArn)).FindAllIndex(log, -1); len(n) < 3 {
		t.Errorf("front's task got %d certificates; want its first and at least two renewals", len(n))
	}

	// The namespace lists its four services, through the CLI.
	var byNS struct{ ServiceArns []string }
	if err := json.Unmarshal(e.aws(callWait, "ecs", "list-services-by-namespace", "--namespace", "fruit"), &byNS); err != nil {
		t.Fatal(err)
	}
	if len(byNS.ServiceArns) != 4 {
		t.Errorf("list-services-by-namespace fruit: %v; want apple, banana, cherry and front", byNS.ServiceArns)
	}

	// The control plane's /metrics sums the proxies' per service.
	waitFor(t, "front's requests to apple in the server's /metrics", 30*time.Second, func() (bool, string) {
		body := httpGet(t, e.endpoint+"/metrics")
		m := regexp.MustCompile(`RequestCount\{TargetDiscoveryName="apple",ServiceName="front",ClusterName="default"\} (\d+)`).FindStringSubmatch(body)
		if m == nil {
			return false, body
		}
		n, _ := strconv.Atoi(m[1])
		return n >= requests, fmt.Sprintf("RequestCount %d, want at least %d", n, requests)
	})
}

// latest is the ARN of the latest revision of a task definition family.
func (e *env) latest(family string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	out, err := e.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(family)})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
