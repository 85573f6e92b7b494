package integration

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

func attr(name, value string) types.Attribute {
	return types.Attribute{Name: aws.String(name), Value: aws.String(value)}
}

func TestContainerInstances(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.cluster(t, "c")

	reg := must(e.ecs.RegisterContainerInstance(ctx, &ecs.RegisterContainerInstanceInput{
		Cluster:                  aws.String("c"),
		InstanceIdentityDocument: aws.String(`{"instanceId":"i-0123456789abcdef0","availabilityZone":"us-east-1b","instanceType":"m5.large"}`),
		TotalResources: []types.Resource{
			{Name: aws.String("CPU"), Type: aws.String("INTEGER"), IntegerValue: 2048},
			{Name: aws.String("MEMORY"), Type: aws.String("INTEGER"), IntegerValue: 4096},
			{Name: aws.String("PORTS"), Type: aws.String("STRINGSET"), StringSetValue: []string{"22", "8000"}},
		},
		VersionInfo: &types.VersionInfo{AgentVersion: aws.String("1.80.0"), DockerVersion: aws.String("28.2.2")},
		Attributes:  []types.Attribute{attr("stack", "blue")},
		Tags:        []types.Tag{{Key: aws.String("rack"), Value: aws.String("r1")}},
	}))(t)
	ci := reg.ContainerInstance
	arn := aws.ToString(ci.ContainerInstanceArn)
	if aws.ToString(ci.Ec2InstanceId) != "i-0123456789abcdef0" || aws.ToString(ci.Status) != "ACTIVE" || !ci.AgentConnected {
		t.Fatalf("registered %+v", ci)
	}
	attrs := map[string]string{}
	for _, a := range ci.Attributes {
		attrs[aws.ToString(a.Name)] = aws.ToString(a.Value)
	}
	for k, v := range map[string]string{"ecs.availability-zone": "us-east-1b", "ecs.instance-type": "m5.large", "ecs.os-type": "linux", "ecs.cpu-architecture": "x86_64", "stack": "blue"} {
		if attrs[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, attrs[k], v)
		}
	}

	t.Run("re-registration keeps the identity", func(t *testing.T) {
		again := must(e.ecs.RegisterContainerInstance(ctx, &ecs.RegisterContainerInstanceInput{
			Cluster:              aws.String("c"),
			ContainerInstanceArn: aws.String(arn),
			TotalResources:       []types.Resource{{Name: aws.String("CPU"), Type: aws.String("INTEGER"), IntegerValue: 4096}, {Name: aws.String("MEMORY"), Type: aws.String("INTEGER"), IntegerValue: 4096}},
		}))(t)
		if aws.ToString(again.ContainerInstance.ContainerInstanceArn) != arn || remaining(*again.ContainerInstance, "CPU") != 4096 {
			t.Fatalf("re-registered %+v", again.ContainerInstance)
		}
		same := must(e.ecs.RegisterContainerInstance(ctx, &ecs.RegisterContainerInstanceInput{
			Cluster:                  aws.String("c"),
			InstanceIdentityDocument: aws.String(`{"instanceId":"i-0123456789abcdef0"}`),
		}))(t)
		if aws.ToString(same.ContainerInstance.ContainerInstanceArn) != arn {
			t.Fatal("same EC2 instance registered twice")
		}
	})

	second := e.instance(t, "c", 1024, 1024, attr("stack", "green"))

	t.Run("describe", func(t *testing.T) {
		out := must(e.ecs.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{
			Cluster: aws.String("c"), ContainerInstances: []string{arn, "0123456789abcdef0123456789abcdef"},
			Include: []types.ContainerInstanceField{types.ContainerInstanceFieldTags},
		}))(t)
		if len(out.ContainerInstances) != 1 || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "MISSING" {
			t.Fatalf("describe %+v %+v", out.ContainerInstances, out.Failures)
		}
		if len(out.ContainerInstances[0].Tags) != 1 {
			t.Fatalf("tags %+v", out.ContainerInstances[0].Tags)
		}
	})

	t.Run("list with filters", func(t *testing.T) {
		cases := map[string]int{
			"":                                    2,
			"attribute:stack == blue":             1,
			"attribute:stack in [blue, green]":    2,
			"attribute:ecs.instance-type =~ m5.*": 1,
			"not(attribute:stack == blue)":        1,
			"runningTasksCount == 0":              2,
		}
		for filter, want := range cases {
			in := &ecs.ListContainerInstancesInput{Cluster: aws.String("c")}
			if filter != "" {
				in.Filter = aws.String(filter)
			}
			out := must(e.ecs.ListContainerInstances(ctx, in))(t)
			if len(out.ContainerInstanceArns) != want {
				t.Errorf("filter %q: %d instances, want %d", filter, len(out.ContainerInstanceArns), want)
			}
		}
		_, err := e.ecs.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String("c"), Filter: aws.String("attribute:stack === blue")})
		wantCode(t, err, "InvalidParameterException", "filter")
	})

	t.Run("draining", func(t *testing.T) {
		up := must(e.ecs.UpdateContainerInstancesState(ctx, &ecs.UpdateContainerInstancesStateInput{
			Cluster: aws.String("c"), ContainerInstances: []string{second, "ffffffffffffffffffffffffffffffff"}, Status: types.ContainerInstanceStatusDraining,
		}))(t)
		if len(up.ContainerInstances) != 1 || aws.ToString(up.ContainerInstances[0].Status) != "DRAINING" || len(up.Failures) != 1 {
			t.Fatalf("update %+v %+v", up.ContainerInstances, up.Failures)
		}
		draining := must(e.ecs.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String("c"), Status: types.ContainerInstanceStatusDraining}))(t)
		if len(draining.ContainerInstanceArns) != 1 {
			t.Fatalf("draining %v", draining.ContainerInstanceArns)
		}
		// Draining instances take no new tasks.
		td := e.taskDef(t, "drain", 64, 0)
		run := must(e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(td), Count: aws.Int32(1)}))(t)
		if len(run.Tasks) != 1 || aws.ToString(run.Tasks[0].ContainerInstanceArn) != arn {
			t.Fatalf("task went to %+v", run.Tasks)
		}
		_, err := e.ecs.UpdateContainerInstancesState(ctx, &ecs.UpdateContainerInstancesStateInput{Cluster: aws.String("c"), ContainerInstances: []string{second}, Status: types.ContainerInstanceStatusRegistering})
		wantCode(t, err, "InvalidParameterException", "ACTIVE or DRAINING")
		// Deregistering with a task on it needs force.
		_, err = e.ecs.DeregisterContainerInstance(ctx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String("c"), ContainerInstance: aws.String(arn)})
		wantCode(t, err, "InvalidParameterException", "force")
	})

	t.Run("attributes", func(t *testing.T) {
		put := must(e.ecs.PutAttributes(ctx, &ecs.PutAttributesInput{Cluster: aws.String("c"), Attributes: []types.Attribute{
			{Name: aws.String("gpu"), Value: aws.String("none"), TargetId: aws.String(second)},
			{Name: aws.String("tier"), Value: aws.String("batch"), TargetId: aws.String(second)},
		}}))(t)
		if len(put.Attributes) != 2 {
			t.Fatalf("put %+v", put.Attributes)
		}
		list := must(e.ecs.ListAttributes(ctx, &ecs.ListAttributesInput{Cluster: aws.String("c"), TargetType: types.TargetTypeContainerInstance, AttributeName: aws.String("tier")}))(t)
		if len(list.Attributes) != 1 || aws.ToString(list.Attributes[0].TargetId) != second {
			t.Fatalf("list %+v", list.Attributes)
		}
		var all []types.Attribute
		p := ecs.NewListAttributesPaginator(e.ecs, &ecs.ListAttributesInput{Cluster: aws.String("c"), TargetType: types.TargetTypeContainerInstance, MaxResults: aws.Int32(3)})
		for i := 0; p.HasMorePages() && i < 20; i++ {
			all = append(all, must(p.NextPage(ctx))(t).Attributes...)
		}
		seen := map[string]bool{}
		for _, a := range all {
			k := aws.ToString(a.TargetId) + "/" + aws.ToString(a.Name)
			if seen[k] {
				t.Fatalf("attribute %s listed twice across pages", k)
			}
			seen[k] = true
		}
		if !seen[second+"/gpu"] || !seen[arn+"/stack"] {
			t.Fatalf("paginated attributes incomplete: %v", seen)
		}
		must(e.ecs.DeleteAttributes(ctx, &ecs.DeleteAttributesInput{Cluster: aws.String("c"), Attributes: []types.Attribute{{Name: aws.String("gpu"), TargetId: aws.String(second)}}}))(t)
		gone := must(e.ecs.ListAttributes(ctx, &ecs.ListAttributesInput{Cluster: aws.String("c"), TargetType: types.TargetTypeContainerInstance, AttributeName: aws.String("gpu")}))(t)
		if len(gone.Attributes) != 0 {
			t.Fatalf("deleted attribute still listed: %+v", gone.Attributes)
		}
		var many []types.Attribute
		for i := range 11 {
			many = append(many, types.Attribute{Name: aws.String(fmt.Sprintf("a%d", i)), Value: aws.String("v"), TargetId: aws.String(second)})
		}
		_, err := e.ecs.PutAttributes(ctx, &ecs.PutAttributesInput{Cluster: aws.String("c"), Attributes: many})
		wantCode(t, err, "AttributeLimitExceededException", "")
		_, err = e.ecs.PutAttributes(ctx, &ecs.PutAttributesInput{Cluster: aws.String("c"), Attributes: []types.Attribute{{Name: aws.String("x"), TargetId: aws.String("ffffffffffffffffffffffffffffffff")}}})
		wantCode(t, err, "TargetNotFoundException", "")
	})

	t.Run("deregister", func(t *testing.T) {
		out := must(e.ecs.DeregisterContainerInstance(ctx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String("c"), ContainerInstance: aws.String(second)}))(t)
		if aws.ToString(out.ContainerInstance.Status) != "INACTIVE" {
			t.Fatalf("status %s", aws.ToString(out.ContainerInstance.Status))
		}
		list := must(e.ecs.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String("c")}))(t)
		if len(list.ContainerInstanceArns) != 1 {
			t.Fatalf("instances after deregister %v", list.ContainerInstanceArns)
		}
	})
}
