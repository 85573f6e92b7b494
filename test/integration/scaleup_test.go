package integration

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/wharfhq/wharf/internal/agent"
	"github.com/wharfhq/wharf/internal/testenv"
)

// TestAwsvpcScaleUp scales an awsvpc service from 0 to 100 tasks at once
// over ten hollow nodes: every pass's transaction (each task, its index
// entry and its address, and the instances) stays within etcd's limit of
// 128 operations, and all 100 run.
func TestAwsvpcScaleUp(t *testing.T) {
	e, _ := controllerEnv(t, 0)
	testenv.StartHollowNodes(t, e.srv, "c", 10, func(c *agent.Config) { c.ENILimit = 12 })
	ctx := ctxT(t)
	must(e.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("wide"), NetworkMode: types.NetworkModeAwsvpc,
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("app:1"), Memory: aws.Int32(16), Cpu: 8}}}))(t)
	must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("wide"), TaskDefinition: aws.String("wide"), DesiredCount: aws.Int32(100),
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-1"}}}}))(t)
	began := time.Now()
	waitServiceLong(t, e, "wide", 90*time.Second, func(s types.Service) bool { return s.RunningCount == 100 })
	t.Logf("100 awsvpc tasks running %v after CreateService", time.Since(began).Round(time.Millisecond))
}
