package integration

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

func TestClusters(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)

	created := must(e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{
		ClusterName: aws.String("prod"),
		Tags:        []types.Tag{{Key: aws.String("team"), Value: aws.String("web")}},
		Settings:    []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("enabled")}},
	}))(t)
	c := created.Cluster
	if got, want := aws.ToString(c.ClusterArn), "arn:aws:ecs:us-east-1:123456789012:cluster/prod"; got != want {
		t.Fatalf("ARN %s, want %s", got, want)
	}
	if aws.ToString(c.Status) != "ACTIVE" {
		t.Fatalf("status %s", aws.ToString(c.Status))
	}

	// CreateCluster of an existing cluster returns it unchanged.
	again := must(e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("prod")}))(t)
	if aws.ToString(again.Cluster.ClusterArn) != aws.ToString(c.ClusterArn) {
		t.Fatal("second CreateCluster did not return the same cluster")
	}

	// The default cluster when none is named.
	def := must(e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{}))(t)
	if aws.ToString(def.Cluster.ClusterName) != "default" {
		t.Fatalf("unnamed cluster is %q", aws.ToString(def.Cluster.ClusterName))
	}

	t.Run("describe with include", func(t *testing.T) {
		out := must(e.ecs.DescribeClusters(ctx, &ecs.DescribeClustersInput{
			Clusters: []string{"prod", "missing", aws.ToString(c.ClusterArn)},
			Include:  []types.ClusterField{types.ClusterFieldTags, types.ClusterFieldSettings, types.ClusterFieldStatistics},
		}))(t)
		if len(out.Clusters) != 2 || len(out.Failures) != 1 {
			t.Fatalf("clusters %d failures %d", len(out.Clusters), len(out.Failures))
		}
		if aws.ToString(out.Failures[0].Reason) != "MISSING" || aws.ToString(out.Failures[0].Arn) != "arn:aws:ecs:us-east-1:123456789012:cluster/missing" {
			t.Fatalf("failure %+v", out.Failures[0])
		}
		got := out.Clusters[0]
		if len(got.Tags) != 1 || aws.ToString(got.Tags[0].Key) != "team" {
			t.Fatalf("tags %+v", got.Tags)
		}
		if len(got.Settings) != 1 || aws.ToString(got.Settings[0].Value) != "enabled" {
			t.Fatalf("settings %+v", got.Settings)
		}
		if len(got.Statistics) == 0 {
			t.Fatal("no statistics")
		}
		plain := must(e.ecs.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"prod"}}))(t)
		if plain.Clusters[0].Tags != nil || plain.Clusters[0].Statistics != nil {
			t.Fatal("tags or statistics returned without include")
		}
	})

	t.Run("describe defaults to the default cluster", func(t *testing.T) {
		out := must(e.ecs.DescribeClusters(ctx, &ecs.DescribeClustersInput{}))(t)
		if len(out.Clusters) != 1 || aws.ToString(out.Clusters[0].ClusterName) != "default" {
			t.Fatalf("got %+v", out.Clusters)
		}
	})

	t.Run("update settings and configuration", func(t *testing.T) {
		out := must(e.ecs.UpdateClusterSettings(ctx, &ecs.UpdateClusterSettingsInput{
			Cluster:  aws.String("prod"),
			Settings: []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("disabled")}},
		}))(t)
		if aws.ToString(out.Cluster.Settings[0].Value) != "disabled" {
			t.Fatalf("settings %+v", out.Cluster.Settings)
		}
		up := must(e.ecs.UpdateCluster(ctx, &ecs.UpdateClusterInput{
			Cluster: aws.String("prod"),
			Configuration: &types.ClusterConfiguration{ExecuteCommandConfiguration: &types.ExecuteCommandConfiguration{
				Logging: types.ExecuteCommandLoggingDefault,
			}},
		}))(t)
		if up.Cluster.Configuration == nil || up.Cluster.Configuration.ExecuteCommandConfiguration.Logging != types.ExecuteCommandLoggingDefault {
			t.Fatalf("configuration %+v", up.Cluster.Configuration)
		}
		_, err := e.ecs.UpdateClusterSettings(ctx, &ecs.UpdateClusterSettingsInput{
			Cluster:  aws.String("prod"),
			Settings: []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("sometimes")}},
		})
		wantCode(t, err, "InvalidParameterException", "containerInsights")
		_, err = e.ecs.UpdateCluster(ctx, &ecs.UpdateClusterInput{Cluster: aws.String("nope")})
		wantCode(t, err, "ClusterNotFoundException", "Cluster not found")
	})

	t.Run("list", func(t *testing.T) {
		out := must(e.ecs.ListClusters(ctx, &ecs.ListClustersInput{}))(t)
		if len(out.ClusterArns) != 2 {
			t.Fatalf("clusters %v", out.ClusterArns)
		}
	})

	t.Run("delete is refused while the cluster is in use", func(t *testing.T) {
		e.cluster(t, "busy")
		ci := e.instance(t, "busy", 1024, 1024)
		_, err := e.ecs.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("busy")})
		wantCode(t, err, "ClusterContainsContainerInstancesException", "")
		td := e.taskDef(t, "busy-svc", 64, 0)
		must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("busy"), ServiceName: aws.String("s"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(0)}))(t)
		must(e.ecs.DeregisterContainerInstance(ctx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String("busy"), ContainerInstance: aws.String(ci)}))(t)
		_, err = e.ecs.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("busy")})
		wantCode(t, err, "ClusterContainsServicesException", "")
		must(e.ecs.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String("busy"), Service: aws.String("s")}))(t)
		del := must(e.ecs.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("busy")}))(t)
		if aws.ToString(del.Cluster.Status) != "INACTIVE" {
			t.Fatalf("status after delete %s", aws.ToString(del.Cluster.Status))
		}
		// Deleted clusters stay describable as INACTIVE, and listed, for
		// the retention period, as in ECS.
		d := must(e.ecs.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"busy"}}))(t)
		if len(d.Clusters) != 1 || aws.ToString(d.Clusters[0].Status) != "INACTIVE" {
			t.Fatalf("describe after delete: %+v %+v", d.Clusters, d.Failures)
		}
		l := must(e.ecs.ListClusters(ctx, &ecs.ListClustersInput{}))(t)
		listed := false
		for _, a := range l.ClusterArns {
			listed = listed || a == aws.ToString(del.Cluster.ClusterArn)
		}
		if !listed {
			t.Fatalf("deleted cluster not listed during the retention period: %v", l.ClusterArns)
		}
		_, err = e.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("busy")})
		wantCode(t, err, "ClusterNotFoundException", "")
	})

	t.Run("delete is refused while tasks run", func(t *testing.T) {
		e.cluster(t, "tasks")
		ci := e.instance(t, "tasks", 1024, 1024)
		td := e.taskDef(t, "tasks-td", 64, 0)
		run := must(e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("tasks"), TaskDefinition: aws.String(td)}))(t)
		must(e.ecs.DeregisterContainerInstance(ctx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String("tasks"), ContainerInstance: aws.String(ci), Force: aws.Bool(true)}))(t)
		_, err := e.ecs.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("tasks")})
		wantCode(t, err, "ClusterContainsTasksException", "")
		must(e.ecs.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String("tasks"), Task: run.Tasks[0].TaskArn}))(t)
		must(e.ecs.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("tasks")}))(t)
	})

	t.Run("bad names", func(t *testing.T) {
		_, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("has space")})
		wantCode(t, err, "InvalidParameterException", "")
		_, err = e.ecs.DescribeClusters(ctx, &ecs.DescribeClustersInput{Include: []types.ClusterField{"BOGUS"}})
		wantError(t, err, "InvalidParameterException", "include should be one of [ATTACHMENTS,CONFIGURATIONS,SETTINGS,STATISTICS,TAGS]")
	})
}
