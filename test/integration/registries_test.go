package integration

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	sdtypes "github.com/aws/aws-sdk-go-v2/service/servicediscovery/types"

	"github.com/wharfhq/wharf/internal/testenv"
)

// cloudMapService makes a private DNS namespace and a service in it with
// the given record types, and returns the service ARN.
func cloudMapService(t *testing.T, sd *servicediscovery.Client, ns, name string, records ...sdtypes.RecordType) string {
	t.Helper()
	ctx := ctxT(t)
	op := must(sd.CreatePrivateDnsNamespace(ctx, &servicediscovery.CreatePrivateDnsNamespaceInput{Name: aws.String(ns), Vpc: aws.String("vpc-wharf")}))(t)
	var nsID string
	deadline := time.Now().Add(10 * time.Second)
	for nsID == "" {
		got := must(sd.GetOperation(ctx, &servicediscovery.GetOperationInput{OperationId: op.OperationId}))(t)
		if got.Operation.Status == sdtypes.OperationStatusSuccess {
			nsID = got.Operation.Targets["NAMESPACE"]
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace operation %+v", got.Operation)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var recs []sdtypes.DnsRecord
	for _, r := range records {
		recs = append(recs, sdtypes.DnsRecord{Type: r, TTL: aws.Int64(10)})
	}
	svc := must(sd.CreateService(ctx, &servicediscovery.CreateServiceInput{Name: aws.String(name), NamespaceId: aws.String(nsID),
		DnsConfig: &sdtypes.DnsConfig{DnsRecords: recs, RoutingPolicy: sdtypes.RoutingPolicyMultivalue}}))(t)
	return aws.ToString(svc.Service.Arn)
}

func TestServiceRegistries(t *testing.T) {
	e, _ := controllerEnv(t, 3)
	ctx := ctxT(t)
	sd := servicediscovery.NewFromConfig(testenv.AWSConfig(e.srv.Endpoint(), testenv.Region), testenv.WithoutHostPrefix)
	registry := cloudMapService(t, sd, "shop.local", "api", sdtypes.RecordTypeA)
	must(e.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("api"), NetworkMode: types.NetworkModeAwsvpc,
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("app:1"), Memory: aws.Int32(32),
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(8080)}}}}}))(t)
	must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("api"), TaskDefinition: aws.String("api"), DesiredCount: aws.Int32(3),
		ServiceRegistries: []types.ServiceRegistry{{RegistryArn: aws.String(registry)}}}))(t)
	waitService(t, e, "c", "api", "3 tasks", stable)

	discover := func() []sdtypes.HttpInstanceSummary {
		out := must(sd.DiscoverInstances(ctx, &servicediscovery.DiscoverInstancesInput{NamespaceName: aws.String("shop.local"), ServiceName: aws.String("api")}))(t)
		return out.Instances
	}
	tasks := serviceTasks(t, e, "api")
	ips := map[string]bool{}
	for _, task := range tasks {
		for _, d := range task.Attachments[0].Details {
			if aws.ToString(d.Name) == "privateIPv4Address" {
				ips[aws.ToString(d.Value)] = true
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := discover()
		ok := len(got) == 3
		for _, inst := range got {
			ok = ok && ips[inst.Attributes["AWS_INSTANCE_IPV4"]] && inst.Attributes["ECS_SERVICE_NAME"] == "api" && inst.Attributes["ECS_CLUSTER_NAME"] == "c" &&
				inst.Attributes["AVAILABILITY_ZONE"] != "" && inst.Attributes["ECS_TASK_DEFINITION_FAMILY"] == "api"
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("registered instances %+v, want the 3 task IPs %v", got, ips)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A stopped task leaves the registry; its replacement joins it.
	stopped := aws.ToString(tasks[0].TaskArn)
	must(e.ecs.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String("c"), Task: aws.String(stopped)}))(t)
	for _, inst := range discover() {
		if inst.Attributes["ECS_TASK_ARN"] == stopped {
			t.Fatal("a task stopped through the API is still registered")
		}
	}
	waitService(t, e, "c", "api", "the replacement", func(s types.Service) bool { return stable(s) && len(discover()) == 3 })

	// Bridge tasks register SRV records of the host port.
	srvRegistry := cloudMapService(t, sd, "bridge.local", "web", sdtypes.RecordTypeSrv)
	must(e.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("web"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("app:1"), Memory: aws.Int32(32),
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(80), HostPort: aws.Int32(0)}}}}}))(t)
	_, err := e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("web"), TaskDefinition: aws.String("web"), DesiredCount: aws.Int32(1),
		ServiceRegistries: []types.ServiceRegistry{{RegistryArn: aws.String(srvRegistry)}}})
	wantCode(t, err, "InvalidParameterException", "containerName")
	must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("web"), TaskDefinition: aws.String("web"), DesiredCount: aws.Int32(1),
		ServiceRegistries: []types.ServiceRegistry{{RegistryArn: aws.String(srvRegistry), ContainerName: aws.String("app"), ContainerPort: aws.Int32(80)}}}))(t)
	waitService(t, e, "c", "web", "the bridge task", stable)
	deadline = time.Now().Add(10 * time.Second)
	for {
		out := must(sd.DiscoverInstances(ctx, &servicediscovery.DiscoverInstancesInput{NamespaceName: aws.String("bridge.local"), ServiceName: aws.String("web")}))(t)
		if len(out.Instances) == 1 && out.Instances[0].Attributes["AWS_INSTANCE_PORT"] != "" && out.Instances[0].Attributes["AWS_INSTANCE_PORT"] != "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bridge instance %+v", out.Instances)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, err = e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("ghost"), TaskDefinition: aws.String("web"), DesiredCount: aws.Int32(1),
		ServiceRegistries: []types.ServiceRegistry{{RegistryArn: aws.String("arn:aws:servicediscovery:us-east-1:123456789012:service/srv-0000000000000000")}}})
	wantCode(t, err, "InvalidParameterException", "does not exist")
}
