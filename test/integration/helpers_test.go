// Package integration drives a real Wharf server (embedded etcd in a
// temporary directory) through the AWS SDK for Go v2.
package integration

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/wharfhq/wharf/internal/testenv"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// must returns v, failing the test on err: must(client.Op(ctx, in))(t).
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return v
	}
}

// wantCode checks that err is an API error with the given code and, when
// msgPart is not empty, a message containing it.
func wantCode(t *testing.T, err error, code, msgPart string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want a %s API error", err, code)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("got error %s (%s), want %s", ae.ErrorCode(), ae.ErrorMessage(), code)
	}
	if msgPart != "" && !strings.Contains(ae.ErrorMessage(), msgPart) {
		t.Fatalf("message %q does not contain %q", ae.ErrorMessage(), msgPart)
	}
}

// wantError checks that err is an API error with the given code and
// exactly the given message.
func wantError(t *testing.T, err error, code, msg string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want %s: %s", err, code, msg)
	}
	if ae.ErrorCode() != code || ae.ErrorMessage() != msg {
		t.Fatalf("got %s: %q\nwant %s: %q", ae.ErrorCode(), ae.ErrorMessage(), code, msg)
	}
}

// env is a started server and a client of it.
type env struct {
	srv *testenv.Server
	ecs *ecs.Client
}

func newEnv(t *testing.T) *env {
	srv := testenv.StartServer(t, "")
	return &env{srv: srv, ecs: srv.ECS()}
}

func (e *env) cluster(t *testing.T, name string) {
	t.Helper()
	must(e.ecs.CreateCluster(ctxT(t), &ecs.CreateClusterInput{ClusterName: aws.String(name)}))(t)
}

// taskDef registers a one-container task definition.
func (e *env) taskDef(t *testing.T, family string, memory int32, hostPort int32) string {
	t.Helper()
	cd := types.ContainerDefinition{Name: aws.String("app"), Image: aws.String("busybox"), Memory: aws.Int32(memory), Cpu: 128}
	if hostPort > 0 {
		cd.PortMappings = []types.PortMapping{{ContainerPort: aws.Int32(80), HostPort: aws.Int32(hostPort)}}
	}
	out := must(e.ecs.RegisterTaskDefinition(ctxT(t), &ecs.RegisterTaskDefinitionInput{
		Family:               aws.String(family),
		ContainerDefinitions: []types.ContainerDefinition{cd},
	}))(t)
	return *out.TaskDefinition.TaskDefinitionArn
}

// instance registers a container instance with the given CPU and memory.
func (e *env) instance(t *testing.T, cluster string, cpu, mem int32, attrs ...types.Attribute) string {
	t.Helper()
	out := must(e.ecs.RegisterContainerInstance(ctxT(t), &ecs.RegisterContainerInstanceInput{
		Cluster: aws.String(cluster),
		TotalResources: []types.Resource{
			{Name: aws.String("CPU"), Type: aws.String("INTEGER"), IntegerValue: cpu},
			{Name: aws.String("MEMORY"), Type: aws.String("INTEGER"), IntegerValue: mem},
		},
		Attributes: attrs,
	}))(t)
	return *out.ContainerInstance.ContainerInstanceArn
}

func remaining(ci types.ContainerInstance, name string) int32 {
	for _, r := range ci.RemainingResources {
		if aws.ToString(r.Name) == name {
			return r.IntegerValue
		}
	}
	return -1
}
