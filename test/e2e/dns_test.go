package e2e

import (
	"context"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	sdtypes "github.com/aws/aws-sdk-go-v2/service/servicediscovery/types"

	"github.com/wharfhq/wharf/internal/testenv"
)

// dig asks Wharf's DNS server for name's A records with dig.
func dig(t *testing.T, dig string, port int, name string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, dig, "+short", "+tries=1", "+time=2", "@127.0.0.1", "-p", strconv.Itoa(port), name, "A").Output()
	if err != nil {
		t.Fatalf("dig %s: %v", name, err)
	}
	ips := lines(string(out))
	slices.Sort(ips)
	return ips
}

// TestServiceDiscoveryDNS: an awsvpc service of 3 tasks registered in a
// private DNS namespace answers with exactly its tasks' addresses, a
// stopped task leaves the answer within 2 s, and a container of another
// task finds the service by name and connects.
func TestServiceDiscoveryDNS(t *testing.T) {
	digBin := testenv.LookPath(t, "dig")
	dnsPort := freePort(t)
	e := newEnv(t, withHealthyAfter(2*time.Second), withDNSPort(dnsPort))
	// Each node holds 3 awsvpc tasks: two leave room for the client.
	e.addNode("node-2", testenv.Region+"b")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sd := servicediscovery.NewFromConfig(testenv.AWSConfig(e.endpoint, testenv.Region))

	op, err := sd.CreatePrivateDnsNamespace(ctx, &servicediscovery.CreatePrivateDnsNamespaceInput{Name: aws.String("shop.local"), Vpc: aws.String("vpc-wharf")})
	if err != nil {
		t.Fatal(err)
	}
	var nsID string
	waitFor(t, "the namespace to be created", 10*time.Second, func() (bool, string) {
		got, err := sd.GetOperation(ctx, &servicediscovery.GetOperationInput{OperationId: op.OperationId})
		if err != nil {
			return false, err.Error()
		}
		nsID = got.Operation.Targets["NAMESPACE"]
		return got.Operation.Status == sdtypes.OperationStatusSuccess, string(got.Operation.Status)
	})
	reg, err := sd.CreateService(ctx, &servicediscovery.CreateServiceInput{Name: aws.String("api"), NamespaceId: aws.String(nsID),
		DnsConfig: &sdtypes.DnsConfig{RoutingPolicy: sdtypes.RoutingPolicyMultivalue, DnsRecords: []sdtypes.DnsRecord{{Type: sdtypes.RecordTypeA, TTL: aws.Int64(5)}}}})
	if err != nil {
		t.Fatal(err)
	}
	td := e.register("api", types.NetworkModeAwsvpc, e.ctr("web", webScript("8080")))
	if _, err := e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String(e.cluster), ServiceName: aws.String("api"), TaskDefinition: aws.String(td),
		DesiredCount: aws.Int32(3), ServiceRegistries: []types.ServiceRegistry{{RegistryArn: reg.Service.Arn}}}); err != nil {
		t.Fatal(err)
	}

	taskIPs := func() []string {
		list, err := e.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(e.cluster), ServiceName: aws.String("api")})
		if err != nil || len(list.TaskArns) == 0 {
			return nil
		}
		d, err := e.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(e.cluster), Tasks: list.TaskArns})
		if err != nil {
			return nil
		}
		var ips []string
		for _, task := range d.Tasks {
			if aws.ToString(task.LastStatus) != "RUNNING" {
				continue
			}
			for _, a := range task.Attachments {
				for _, kv := range a.Details {
					if aws.ToString(kv.Name) == "privateIPv4Address" {
						ips = append(ips, aws.ToString(kv.Value))
					}
				}
			}
		}
		slices.Sort(ips)
		return ips
	}
	var want []string
	waitFor(t, "dig to answer exactly the 3 task addresses", 60*time.Second, func() (bool, string) {
		want = taskIPs()
		got := dig(t, digBin, dnsPort, "api.shop.local")
		return len(want) == 3 && slices.Equal(got, want), "dig " + strings.Join(got, ",") + " tasks " + strings.Join(want, ",")
	})

	// A client task on the same network resolves the name and connects.
	client := e.ctr("client", `for i in $(seq 1 100); do wget -q -O - http://api.shop.local:8080/ && exit 0; sleep 0.2; done; exit 1`)
	arn := e.run(e.register("client", types.NetworkModeAwsvpc, client))
	done := e.waitStopped(arn)
	if c := taskContainer(t, done, "client"); aws.ToInt32(c.ExitCode) != 0 || !strings.Contains(e.logs(aws.ToString(c.RuntimeId)), "pong") {
		t.Fatalf("the client could not reach api.shop.local: exit %d, output %q", aws.ToInt32(c.ExitCode), e.logs(aws.ToString(c.RuntimeId)))
	}

	// Stop one task: it leaves DNS within 2 s of STOPPED.
	list, _ := e.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(e.cluster), ServiceName: aws.String("api")})
	victim := e.describe(list.TaskArns[0])
	var victimIP string
	for _, kv := range victim.Attachments[0].Details {
		if aws.ToString(kv.Name) == "privateIPv4Address" {
			victimIP = aws.ToString(kv.Value)
		}
	}
	e.stopTask(aws.ToString(victim.TaskArn), "dns test")
	stopped := e.waitStopped(aws.ToString(victim.TaskArn))
	deadline := stopped.StoppedAt.Add(2 * time.Second)
	for {
		got := dig(t, digBin, dnsPort, "api.shop.local")
		if !slices.Contains(got, victimIP) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stopped task's address %s is still answered 2 s after STOPPED: %v", victimIP, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ip := net.ParseIP(victimIP); ip == nil {
		t.Fatalf("victim address %q", victimIP)
	}
}
