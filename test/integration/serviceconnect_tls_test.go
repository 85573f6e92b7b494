package integration

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/wharfhq/wharf/internal/api/agentapi"
	"github.com/wharfhq/wharf/internal/pki"
)

// TestServiceConnectTLSControlPlane covers what the control plane does for
// Service Connect TLS and Wharf's routing extensions: validation, what the
// namespace view tells callers, and certificates for tasks.
func TestServiceConnectTLSControlPlane(t *testing.T) {
	e, nodes := controllerEnv(t, 1)
	ctx := ctxT(t)
	up := must(e.ecs.UpdateCluster(ctx, &ecs.UpdateClusterInput{Cluster: aws.String("c"),
		ServiceConnectDefaults: &types.ClusterServiceConnectDefaultsRequest{Namespace: aws.String("fruit")}}))(t)
	nsArn := aws.ToString(up.Cluster.ServiceConnectDefaults.Namespace)
	must(e.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("banana"), NetworkMode: types.NetworkModeAwsvpc,
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("app:1"), Memory: aws.Int32(32),
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(8080), Name: aws.String("web"), AppProtocol: types.ApplicationProtocolHttp}}}}}))(t)
	tls := &types.ServiceConnectTlsConfiguration{IssuerCertificateAuthority: &types.ServiceConnectTlsCertificateAuthority{
		AwsPcaAuthorityArn: aws.String("arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/wharf")}}
	sc := func(tls *types.ServiceConnectTlsConfiguration) *types.ServiceConnectConfiguration {
		return &types.ServiceConnectConfiguration{Enabled: true, Services: []types.ServiceConnectService{{
			PortName: aws.String("web"), DiscoveryName: aws.String("banana"), ClientAliases: []types.ServiceConnectClientAlias{{Port: aws.Int32(80)}}, Tls: tls}}}
	}
	tag := func(k, v string) []types.Tag { return []types.Tag{{Key: aws.String(k), Value: aws.String(v)}} }

	bad := []struct {
		name string
		tags []types.Tag
		tls  *types.ServiceConnectTlsConfiguration
		msg  string
	}{
		{"tls without an authority", nil, &types.ServiceConnectTlsConfiguration{IssuerCertificateAuthority: &types.ServiceConnectTlsCertificateAuthority{AwsPcaAuthorityArn: aws.String("")}}, "awsPcaAuthorityArn"},
		{"mtls without tls", tag("wharf:service-connect:mtls", "true"), nil, "needs tls"},
		{"bad balancer", tag("wharf:service-connect:balancer", "random"), nil, "round_robin or least_request"},
		{"bad retries", tag("wharf:service-connect:retries", "11"), nil, "0 to 10"},
		{"bad boolean", tag("wharf:service-connect:zone-aware", "yes"), nil, "true or false"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("x"), TaskDefinition: aws.String("banana"),
				DesiredCount: aws.Int32(1), Tags: tc.tags, ServiceConnectConfiguration: sc(tc.tls)})
			wantCode(t, err, "InvalidParameterException", tc.msg)
		})
	}
	if out := must(e.ecs.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String("c")}))(t); len(out.ServiceArns) != 0 {
		t.Fatalf("refused services were created: %v", out.ServiceArns)
	}

	must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("banana"), TaskDefinition: aws.String("banana"), DesiredCount: aws.Int32(1),
		Tags: []types.Tag{
			{Key: aws.String("wharf:service-connect:mtls"), Value: aws.String("true")},
			{Key: aws.String("wharf:service-connect:balancer"), Value: aws.String("least_request")},
			{Key: aws.String("wharf:service-connect:retries"), Value: aws.String("4")},
		},
		ServiceConnectConfiguration: sc(tls)}))(t)
	waitService(t, e, "c", "banana", "1 task", stable)

	var v agentapi.ServiceConnectViewResponse
	if err := agentCall(t, ctx, e.srv.Endpoint(), "ServiceConnectView", &agentapi.ServiceConnectViewRequest{Cluster: "c", Namespaces: []string{nsArn}}, &v); err != nil {
		t.Fatal(err)
	}
	sv := v.Namespaces[0].Services[0]
	if sv.TLS == nil || !sv.TLS.Mutual || sv.Routing == nil || sv.Routing.Balancer != "least_request" || aws.ToInt32(sv.Routing.Retries) != 4 || sv.Routing.ZoneAware {
		t.Fatalf("view of a TLS service: tls %+v routing %+v", sv.TLS, sv.Routing)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(v.TrustBundle)) {
		t.Fatalf("trust bundle %q", v.TrustBundle)
	}

	// The task's proxy gets a certificate for the service's names.
	var poll agentapi.PollResponse
	if err := agentCall(t, ctx, e.srv.Endpoint(), "Poll", &agentapi.PollRequest{Cluster: "c", ContainerInstance: nodes[0].Agent.InstanceArn()}, &poll); err != nil {
		t.Fatal(err)
	}
	task := poll.Tasks[0]
	if in := task.ServiceConnect.Services[0]; in.TLS == nil || !in.TLS.Mutual || in.DNSName != "banana.fruit" {
		t.Fatalf("task's ingress %+v", in)
	}
	_, csr, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	var cert agentapi.IssueCertificateResponse
	before := time.Now()
	if err := agentCall(t, ctx, e.srv.Endpoint(), "IssueCertificate", &agentapi.IssueCertificateRequest{Cluster: "c", Task: task.Task.TaskArn, CSR: string(csr)}, &cert); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(cert.Certificate))
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"banana.fruit", "banana"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("certificate for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "apple.fruit", Roots: roots}); err == nil {
		t.Error("the certificate is good for another service's name")
	}
	life := leaf.NotAfter.Sub(before)
	if life < 7*24*time.Hour-time.Minute || life > 7*24*time.Hour+time.Minute {
		t.Errorf("certificate lives %v, want 7 days", life)
	}
	if renew := cert.RenewAfter.Sub(before); renew < 5*24*time.Hour-time.Minute || renew > 5*24*time.Hour+time.Minute {
		t.Errorf("renew after %v, want 5 days", renew)
	}

	// Bad requests change nothing and say why.
	err = agentCall(t, ctx, e.srv.Endpoint(), "IssueCertificate", &agentapi.IssueCertificateRequest{Cluster: "c", Task: task.Task.TaskArn, CSR: "garbage"}, new(agentapi.IssueCertificateResponse))
	if err == nil || !strings.Contains(err.Error(), "InvalidParameterException") {
		t.Errorf("garbage CSR: %v", err)
	}
	err = agentCall(t, ctx, e.srv.Endpoint(), "IssueCertificate", &agentapi.IssueCertificateRequest{Cluster: "c", Task: "arn:aws:ecs:us-east-1:123456789012:task/c/0123456789abcdef0123456789abcdef", CSR: string(csr)}, new(agentapi.IssueCertificateResponse))
	if err == nil {
		t.Error("a certificate for a task that does not exist")
	}
}
