package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/servicediscovery"

	"github.com/wharfhq/wharf/internal/api/agentapi"
	"github.com/wharfhq/wharf/internal/testenv"
)

func TestServiceConnectControlPlane(t *testing.T) {
	e, nodes := controllerEnv(t, 2)
	ctx := ctxT(t)
	sd := servicediscovery.NewFromConfig(testenv.AWSConfig(e.srv.Endpoint(), testenv.Region), testenv.WithoutHostPrefix)

	// The cluster's default namespace is created as an HTTP namespace.
	up := must(e.ecs.UpdateCluster(ctx, &ecs.UpdateClusterInput{Cluster: aws.String("c"),
		ServiceConnectDefaults: &types.ClusterServiceConnectDefaultsRequest{Namespace: aws.String("fruit")}}))(t)
	nsArn := aws.ToString(up.Cluster.ServiceConnectDefaults.Namespace)
	if !strings.HasPrefix(nsArn, "arn:aws:servicediscovery:us-east-1:123456789012:namespace/ns-") {
		t.Fatalf("default namespace %q", nsArn)
	}
	nsID := nsArn[strings.LastIndex(nsArn, "/")+1:]
	ns := must(sd.GetNamespace(ctx, &servicediscovery.GetNamespaceInput{Id: aws.String(nsID)}))(t)
	if aws.ToString(ns.Namespace.Name) != "fruit" || ns.Namespace.Type != "HTTP" {
		t.Fatalf("namespace %+v", ns.Namespace)
	}

	must(e.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("apple"), NetworkMode: types.NetworkModeAwsvpc,
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("app:1"), Memory: aws.Int32(32),
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(8080), Name: aws.String("web"), AppProtocol: types.ApplicationProtocolHttp}}}}}))(t)

	bad := []struct {
		name string
		sc   *types.ServiceConnectConfiguration
		msg  string
	}{
		{"unknown port name", &types.ServiceConnectConfiguration{Enabled: true, Services: []types.ServiceConnectService{{PortName: aws.String("nope")}}}, "portName"},
		{"two aliases", &types.ServiceConnectConfiguration{Enabled: true, Services: []types.ServiceConnectService{{PortName: aws.String("web"),
			ClientAliases: []types.ServiceConnectClientAlias{{Port: aws.Int32(80)}, {Port: aws.Int32(81)}}}}}, "one client alias"},
		{"bad discovery name", &types.ServiceConnectConfiguration{Enabled: true, Services: []types.ServiceConnectService{{PortName: aws.String("web"), DiscoveryName: aws.String("Apple!")}}}, "discoveryName"},
		{"unknown namespace ARN", &types.ServiceConnectConfiguration{Enabled: true, Namespace: aws.String("arn:aws:servicediscovery:us-east-1:123456789012:namespace/ns-0000000000000000")}, ""},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("x"), TaskDefinition: aws.String("apple"), DesiredCount: aws.Int32(1), ServiceConnectConfiguration: tc.sc})
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.msg != "" {
				wantCode(t, err, "InvalidParameterException", tc.msg)
			}
		})
	}

	created := must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("apple"), TaskDefinition: aws.String("apple"), DesiredCount: aws.Int32(2),
		ServiceConnectConfiguration: &types.ServiceConnectConfiguration{Enabled: true, Services: []types.ServiceConnectService{{
			PortName: aws.String("web"), DiscoveryName: aws.String("apple"), ClientAliases: []types.ServiceConnectClientAlias{{Port: aws.Int32(80)}},
		}}}}))(t)
	d := created.Service.Deployments[0]
	if d.ServiceConnectConfiguration == nil || aws.ToString(d.ServiceConnectConfiguration.Namespace) != nsArn ||
		len(d.ServiceConnectResources) != 1 || aws.ToString(d.ServiceConnectResources[0].DiscoveryName) != "apple" ||
		!strings.Contains(aws.ToString(d.ServiceConnectResources[0].DiscoveryArn), ":service/srv-") {
		t.Fatalf("deployment %+v %+v", d.ServiceConnectConfiguration, d.ServiceConnectResources)
	}
	if alias := d.ServiceConnectConfiguration.Services[0].ClientAliases[0]; aws.ToString(alias.DnsName) != "apple.fruit" {
		t.Fatalf("default dnsName %q", aws.ToString(alias.DnsName))
	}
	waitService(t, e, "c", "apple", "2 tasks", stable)

	// Running tasks are in the namespace as endpoints of their proxies.
	view := func() agentapi.ServiceConnectViewResponse {
		var v agentapi.ServiceConnectViewResponse
		if err := agentCall(t, ctx, e.srv.Endpoint(), "ServiceConnectView", &agentapi.ServiceConnectViewRequest{Cluster: "c", Namespaces: []string{nsArn}}, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		v := view()
		if len(v.Namespaces) == 1 && len(v.Namespaces[0].Services) == 1 && len(v.Namespaces[0].Services[0].Endpoints) == 2 {
			sv := v.Namespaces[0].Services[0]
			if sv.DNSName != "apple.fruit" || sv.Port != 80 || sv.Protocol != "http" || !strings.HasSuffix(sv.Endpoints[0].Address, ":15000") || sv.Endpoints[0].Zone == "" {
				t.Fatalf("view %+v", sv)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("view %+v", v)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The agents learn the task's Service Connect configuration.
	var poll agentapi.PollResponse
	if err := agentCall(t, ctx, e.srv.Endpoint(), "Poll", &agentapi.PollRequest{Cluster: "c", ContainerInstance: nodes[0].Agent.InstanceArn()}, &poll); err != nil {
		t.Fatal(err)
	}
	for _, at := range poll.Tasks {
		sc := at.ServiceConnect
		if sc == nil || sc.NamespaceName != "fruit" || len(sc.Services) != 1 || sc.Services[0].IngressPort != 15000 || sc.Services[0].ContainerPort != 8080 || sc.ServiceName != "apple" {
			t.Fatalf("task's Service Connect %+v", sc)
		}
	}

	// A blocking view wakes when a task leaves.
	first := view()
	got := make(chan agentapi.ServiceConnectViewResponse, 1)
	go func() {
		var v agentapi.ServiceConnectViewResponse
		agentCall(t, ctx, e.srv.Endpoint(), "ServiceConnectView", &agentapi.ServiceConnectViewRequest{Cluster: "c", Namespaces: []string{nsArn}, Index: first.Index, WaitSeconds: 20}, &v)
		got <- v
	}()
	list := must(e.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("c"), ServiceName: aws.String("apple")}))(t)
	start := time.Now()
	must(e.ecs.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String("c"), Task: aws.String(list.TaskArns[0])}))(t)
	select {
	case v := <-got:
		if n := len(v.Namespaces[0].Services[0].Endpoints); n != 1 {
			t.Fatalf("after a stop the view has %d endpoints", n)
		}
		if time.Since(start) > 2*time.Second {
			t.Fatalf("the view changed %v after the stop", time.Since(start))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the view did not wake within 10s of a stop")
	}

	// Client services: no endpoints of their own.
	must(e.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("front"), NetworkMode: types.NetworkModeBridge,
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("app:1"), Memory: aws.Int32(32)}}}))(t)
	must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("front"), TaskDefinition: aws.String("front"), DesiredCount: aws.Int32(1),
		ServiceConnectConfiguration: &types.ServiceConnectConfiguration{Enabled: true}}))(t)
	for _, ref := range []string{"fruit", nsArn} {
		out := must(e.ecs.ListServicesByNamespace(ctx, &ecs.ListServicesByNamespaceInput{Namespace: aws.String(ref)}))(t)
		if len(out.ServiceArns) != 2 {
			t.Fatalf("ListServicesByNamespace(%s) = %v", ref, out.ServiceArns)
		}
	}
	if v := view(); len(v.Namespaces[0].Services) != 1 {
		t.Fatalf("a client service shows in the view: %+v", v.Namespaces[0].Services)
	}
}
