package integration

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

func TestTaskDefinitions(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)

	full := &ecs.RegisterTaskDefinitionInput{
		Family:                  aws.String("shop"),
		NetworkMode:             types.NetworkModeAwsvpc,
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityEc2},
		Cpu:                     aws.String("1 vCPU"),
		Memory:                  aws.String("2GB"),
		Volumes:                 []types.Volume{{Name: aws.String("data"), Host: &types.HostVolumeProperties{SourcePath: aws.String("/srv/data")}}},
		Tags:                    []types.Tag{{Key: aws.String("app"), Value: aws.String("shop")}},
		ContainerDefinitions: []types.ContainerDefinition{
			{
				Name:              aws.String("web"),
				Image:             aws.String("nginx:1.27"),
				Cpu:               256,
				Memory:            aws.Int32(512),
				MemoryReservation: aws.Int32(256),
				PortMappings: []types.PortMapping{{
					ContainerPort: aws.Int32(8080), Name: aws.String("http"), AppProtocol: types.ApplicationProtocolHttp,
				}},
				Environment: []types.KeyValuePair{{Name: aws.String("MODE"), Value: aws.String("prod")}},
				Command:     []string{"serve", "--port", "8080"},
				EntryPoint:  []string{"/bin/app"},
				HealthCheck: &types.HealthCheck{Command: []string{"CMD-SHELL", "wget -q -O- localhost:8080/health"}},
				DependsOn:   []types.ContainerDependency{{ContainerName: aws.String("init"), Condition: types.ContainerConditionSuccess}},
				StopTimeout: aws.Int32(20),
				Ulimits:     []types.Ulimit{{Name: types.UlimitNameNofile, SoftLimit: 1024, HardLimit: 4096}},
				LogConfiguration: &types.LogConfiguration{LogDriver: types.LogDriverAwslogs, Options: map[string]string{
					"awslogs-group": "/ecs/shop", "awslogs-region": "us-east-1",
				}},
				MountPoints: []types.MountPoint{{SourceVolume: aws.String("data"), ContainerPath: aws.String("/data")}},
			},
			{
				Name:      aws.String("init"),
				Image:     aws.String("busybox"),
				Memory:    aws.Int32(32),
				Essential: aws.Bool(false),
				Command:   []string{"true"},
			},
		},
	}
	r1 := must(e.ecs.RegisterTaskDefinition(ctx, full))(t)
	td := r1.TaskDefinition
	if td.Revision != 1 || aws.ToString(td.TaskDefinitionArn) != "arn:aws:ecs:us-east-1:123456789012:task-definition/shop:1" {
		t.Fatalf("revision %d arn %s", td.Revision, aws.ToString(td.TaskDefinitionArn))
	}
	if aws.ToString(td.Cpu) != "1024" || aws.ToString(td.Memory) != "2048" {
		t.Fatalf("cpu %s memory %s not normalized", aws.ToString(td.Cpu), aws.ToString(td.Memory))
	}
	web := td.ContainerDefinitions[0]
	if aws.ToInt32(web.PortMappings[0].HostPort) != 8080 || web.PortMappings[0].Protocol != types.TransportProtocolTcp {
		t.Fatalf("awsvpc port mapping not completed: %+v", web.PortMappings[0])
	}
	if !aws.ToBool(web.Essential) || aws.ToBool(td.ContainerDefinitions[1].Essential) {
		t.Fatal("essential flags wrong")
	}
	if aws.ToInt32(web.HealthCheck.Interval) != 30 || aws.ToInt32(web.HealthCheck.Retries) != 3 || aws.ToInt32(web.HealthCheck.Timeout) != 5 {
		t.Fatalf("health check defaults %+v", web.HealthCheck)
	}
	if td.Status != types.TaskDefinitionStatusActive || td.RegisteredAt == nil || aws.ToString(td.RegisteredBy) == "" {
		t.Fatalf("status %s registeredAt %v", td.Status, td.RegisteredAt)
	}
	if len(r1.Tags) != 1 {
		t.Fatalf("tags %+v", r1.Tags)
	}

	r2 := must(e.ecs.RegisterTaskDefinition(ctx, full))(t)
	if r2.TaskDefinition.Revision != 2 {
		t.Fatalf("second revision is %d", r2.TaskDefinition.Revision)
	}

	t.Run("describe by family, revision and ARN", func(t *testing.T) {
		for ref, rev := range map[string]int32{"shop": 2, "shop:1": 1, aws.ToString(td.TaskDefinitionArn): 1} {
			out := must(e.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(ref), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}}))(t)
			if out.TaskDefinition.Revision != rev {
				t.Errorf("%s: revision %d, want %d", ref, out.TaskDefinition.Revision, rev)
			}
			if len(out.Tags) != 1 {
				t.Errorf("%s: tags %+v", ref, out.Tags)
			}
		}
		_, err := e.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("shop:9")})
		wantCode(t, err, "ClientException", "Unable to describe task definition")
	})

	t.Run("list and families", func(t *testing.T) {
		for i := range 3 {
			e.taskDef(t, fmt.Sprintf("other-%d", i), 64, 0)
		}
		all := must(e.ecs.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{}))(t)
		if len(all.TaskDefinitionArns) != 5 {
			t.Fatalf("list %v", all.TaskDefinitionArns)
		}
		shop := must(e.ecs.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("shop"), Sort: types.SortOrderDesc}))(t)
		if len(shop.TaskDefinitionArns) != 2 || !strings.HasSuffix(shop.TaskDefinitionArns[0], "shop:2") {
			t.Fatalf("desc list %v", shop.TaskDefinitionArns)
		}
		fams := must(e.ecs.ListTaskDefinitionFamilies(ctx, &ecs.ListTaskDefinitionFamiliesInput{FamilyPrefix: aws.String("oth")}))(t)
		if len(fams.Families) != 3 {
			t.Fatalf("families %v", fams.Families)
		}
		// Paginate one by one.
		var seen []string
		var token *string
		for range 10 {
			page := must(e.ecs.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{MaxResults: aws.Int32(2), NextToken: token}))(t)
			seen = append(seen, page.TaskDefinitionArns...)
			if token = page.NextToken; token == nil {
				break
			}
		}
		if len(seen) != 5 {
			t.Fatalf("paginated %v", seen)
		}
		// The SDK paginator agrees.
		p := ecs.NewListTaskDefinitionFamiliesPaginator(e.ecs, &ecs.ListTaskDefinitionFamiliesInput{MaxResults: aws.Int32(1)})
		n := 0
		for p.HasMorePages() && n < 10 {
			n += len(must(p.NextPage(ctx))(t).Families)
		}
		if n != 4 {
			t.Fatalf("paginator saw %d families", n)
		}
	})

	t.Run("deregister and delete", func(t *testing.T) {
		_, err := e.ecs.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("shop")})
		wantCode(t, err, "ClientException", "revision")
		dereg := must(e.ecs.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("shop:1")}))(t)
		if dereg.TaskDefinition.Status != types.TaskDefinitionStatusInactive || dereg.TaskDefinition.DeregisteredAt == nil {
			t.Fatalf("deregistered %+v", dereg.TaskDefinition.Status)
		}
		inactive := must(e.ecs.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{Status: types.TaskDefinitionStatusInactive}))(t)
		if len(inactive.TaskDefinitionArns) != 1 {
			t.Fatalf("inactive %v", inactive.TaskDefinitionArns)
		}
		del := must(e.ecs.DeleteTaskDefinitions(ctx, &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: []string{"shop:1", "shop:2", "shop:77"}}))(t)
		if len(del.TaskDefinitions) != 1 || del.TaskDefinitions[0].Status != types.TaskDefinitionStatusDeleteInProgress {
			t.Fatalf("deleted %+v", del.TaskDefinitions)
		}
		if len(del.Failures) != 2 || !strings.Contains(aws.ToString(del.Failures[0].Reason), "ACTIVE") {
			t.Fatalf("failures %+v", del.Failures)
		}
		// Revisions are never reused.
		r3 := must(e.ecs.RegisterTaskDefinition(ctx, full))(t)
		if r3.TaskDefinition.Revision != 3 {
			t.Fatalf("revision after delete %d", r3.TaskDefinition.Revision)
		}
	})

	t.Run("validation", func(t *testing.T) {
		base := func() *ecs.RegisterTaskDefinitionInput {
			return &ecs.RegisterTaskDefinitionInput{Family: aws.String("bad"), ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("a"), Image: aws.String("busybox"), Memory: aws.Int32(64)}}}
		}
		cases := []struct {
			name, code, msg string
			edit            func(*ecs.RegisterTaskDefinitionInput)
		}{
			{"no memory", "ClientException", "memoryReservation", func(in *ecs.RegisterTaskDefinitionInput) { in.ContainerDefinitions[0].Memory = nil }},
			{"no image", "ClientException", "image", func(in *ecs.RegisterTaskDefinitionInput) { in.ContainerDefinitions[0].Image = aws.String("") }},
			{"reservation above limit", "ClientException", "memoryReservation", func(in *ecs.RegisterTaskDefinitionInput) {
				in.ContainerDefinitions[0].MemoryReservation = aws.Int32(128)
			}},
			{"duplicate names", "ClientException", "more than once", func(in *ecs.RegisterTaskDefinitionInput) {
				in.ContainerDefinitions = append(in.ContainerDefinitions, in.ContainerDefinitions[0])
			}},
			{"eleven containers", "ClientException", "at most 10", func(in *ecs.RegisterTaskDefinitionInput) {
				for i := range 10 {
					in.ContainerDefinitions = append(in.ContainerDefinitions, types.ContainerDefinition{Name: aws.String(fmt.Sprintf("c%d", i)), Image: aws.String("x"), Memory: aws.Int32(8)})
				}
			}},
			{"over 64 KiB", "ClientException", "64 KiB", func(in *ecs.RegisterTaskDefinitionInput) {
				in.ContainerDefinitions[0].Environment = []types.KeyValuePair{{Name: aws.String("BIG"), Value: aws.String(strings.Repeat("x", 70000))}}
			}},
			{"no essential container", "ClientException", "essential", func(in *ecs.RegisterTaskDefinitionInput) { in.ContainerDefinitions[0].Essential = aws.Bool(false) }},
			{"unknown dependency", "ClientException", "dependsOn", func(in *ecs.RegisterTaskDefinitionInput) {
				in.ContainerDefinitions[0].DependsOn = []types.ContainerDependency{{ContainerName: aws.String("ghost"), Condition: types.ContainerConditionStart}}
			}},
			{"healthy needs a health check", "ClientException", "healthCheck", func(in *ecs.RegisterTaskDefinitionInput) {
				in.ContainerDefinitions = append(in.ContainerDefinitions, types.ContainerDefinition{Name: aws.String("b"), Image: aws.String("x"), Memory: aws.Int32(8),
					DependsOn: []types.ContainerDependency{{ContainerName: aws.String("a"), Condition: types.ContainerConditionHealthy}}})
			}},
			{"dependency cycle", "ClientException", "cycle", func(in *ecs.RegisterTaskDefinitionInput) {
				in.ContainerDefinitions[0].DependsOn = []types.ContainerDependency{{ContainerName: aws.String("b"), Condition: types.ContainerConditionStart}}
				in.ContainerDefinitions = append(in.ContainerDefinitions, types.ContainerDefinition{Name: aws.String("b"), Image: aws.String("x"), Memory: aws.Int32(8),
					DependsOn: []types.ContainerDependency{{ContainerName: aws.String("a"), Condition: types.ContainerConditionStart}}})
			}},
			{"unknown volume", "ClientException", "sourceVolume", func(in *ecs.RegisterTaskDefinitionInput) {
				in.ContainerDefinitions[0].MountPoints = []types.MountPoint{{SourceVolume: aws.String("nope"), ContainerPath: aws.String("/x")}}
			}},
			{"awsvpc host port differs", "ClientException", "When networkMode=awsvpc, the host ports and container ports in port mappings must match.", func(in *ecs.RegisterTaskDefinitionInput) {
				in.NetworkMode = types.NetworkModeAwsvpc
				in.ContainerDefinitions[0].PortMappings = []types.PortMapping{{ContainerPort: aws.Int32(80), HostPort: aws.Int32(81)}}
			}},
			{"fargate without task cpu", "ClientException", "Fargate", func(in *ecs.RegisterTaskDefinitionInput) {
				in.RequiresCompatibilities = []types.Compatibility{types.CompatibilityFargate}
				in.NetworkMode = types.NetworkModeAwsvpc
			}},
			{"bad network mode", "InvalidParameterException", "networkMode should be one of [bridge,host,awsvpc,none]", func(in *ecs.RegisterTaskDefinitionInput) { in.NetworkMode = "mesh" }},
			{"bad family", "ClientException", "Family", func(in *ecs.RegisterTaskDefinitionInput) { in.Family = aws.String("no/slash") }},
			{"bad memberOf", "InvalidParameterException", "expression", func(in *ecs.RegisterTaskDefinitionInput) {
				in.PlacementConstraints = []types.TaskDefinitionPlacementConstraint{{Type: types.TaskDefinitionPlacementConstraintTypeMemberOf, Expression: aws.String("attribute:x ==")}}
			}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				in := base()
				tc.edit(in)
				_, err := e.ecs.RegisterTaskDefinition(ctx, in)
				wantCode(t, err, tc.code, tc.msg)
			})
		}
		fams := must(e.ecs.ListTaskDefinitionFamilies(ctx, &ecs.ListTaskDefinitionFamiliesInput{FamilyPrefix: aws.String("bad")}))(t)
		if len(fams.Families) != 0 {
			t.Fatalf("refused registrations left families %v", fams.Families)
		}
	})
}
