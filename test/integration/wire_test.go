package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/wharfhq/wharf/internal/server"
	"github.com/wharfhq/wharf/internal/testenv"
)

// rawCall sends one signed AWS JSON 1.1 request and returns the status, the
// decoded body and the headers.
func rawCall(t *testing.T, endpoint, op, body, akid, secret, region string, at time.Time) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonEC2ContainerServiceV20141113."+op)
	sum := sha256.Sum256([]byte(body))
	if akid != "" {
		err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret}, req, hex.EncodeToString(sum[:]), "ecs", region, at)
		if err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(raw, &out)
	return resp.StatusCode, out, resp.Header
}

func TestWireErrors(t *testing.T) {
	e := newEnv(t)
	ep := e.srv.Endpoint()
	now := time.Now()
	key, secret, region := testenv.AccessKeyID, testenv.SecretAccessKey, testenv.Region
	create := `{"clusterName":"sneaky"}`

	cases := []struct {
		name      string
		op, body  string
		akid, sec string
		at        time.Time
		status    int
		code, msg string
	}{
		{"unsigned", "CreateCluster", create, "", "", now, 403, "MissingAuthenticationTokenException", "Missing Authentication Token"},
		{"wrong secret", "CreateCluster", create, key, "wrong", now, 403, "InvalidSignatureException", "signature we calculated does not match"},
		{"unknown key", "CreateCluster", create, "AKIAUNKNOWN000000000", secret, now, 403, "UnrecognizedClientException", "security token"},
		{"clock skew", "CreateCluster", create, key, secret, now.Add(-20 * time.Minute), 403, "InvalidSignatureException", "Signature expired"},
		{"unknown operation", "LaunchRocket", `{}`, key, secret, now, 400, "UnknownOperationException", "LaunchRocket"},
		{"malformed json", "CreateCluster", `{"clusterName":`, key, secret, now, 400, "SerializationException", ""},
		{"wrong type", "CreateCluster", `{"clusterName":42}`, key, secret, now, 400, "SerializationException", "clusterName"},
		{"missing required", "DescribeTaskDefinition", `{}`, key, secret, now, 400, "InvalidParameterException", "Value null at 'taskDefinition' failed to satisfy constraint: Member must not be null"},
		{"bad enum", "ListTasks", `{"desiredStatus":"SLEEPING"}`, key, secret, now, 400, "InvalidParameterException", "desiredStatus should be one of [RUNNING,PENDING,STOPPED]"},
		{"oversize body", "CreateCluster", `{"clusterName":"` + strings.Repeat("a", 2<<20) + `"}`, key, secret, now, 413, "RequestEntityTooLargeException", ""},
		{"unknown cluster", "ListTasks", `{"cluster":"nope"}`, key, secret, now, 400, "ClusterNotFoundException", "Cluster not found."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body, h := rawCall(t, ep, tc.op, tc.body, tc.akid, tc.sec, region, tc.at)
			if status != tc.status || body["__type"] != tc.code || h.Get("X-Amzn-ErrorType") != tc.code {
				t.Fatalf("got %d %v (header %q), want %d %s", status, body, h.Get("X-Amzn-ErrorType"), tc.status, tc.code)
			}
			if msg, _ := body["message"].(string); !strings.Contains(msg, tc.msg) {
				t.Fatalf("message %q does not contain %q", msg, tc.msg)
			}
			if h.Get("x-amzn-RequestId") == "" {
				t.Fatal("no request id")
			}
		})
	}
	// None of the refused calls changed anything.
	out := must(e.ecs.DescribeClusters(ctxT(t), &ecs.DescribeClustersInput{Clusters: []string{"sneaky"}}))(t)
	if len(out.Clusters) != 0 {
		t.Fatalf("a refused request created a cluster: %+v", out.Clusters)
	}
	// A signature for one service does not work for another.
	req, _ := http.NewRequest(http.MethodPost, ep+"/", strings.NewReader(`{}`))
	req.Header.Set("X-Amz-Target", "AmazonEC2ContainerServiceV20141113.ListClusters")
	sum := sha256.Sum256([]byte(`{}`))
	v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: key, SecretAccessKey: secret}, req, hex.EncodeToString(sum[:]), "servicediscovery", region, now)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("X-Amzn-ErrorType") != "InvalidSignatureException" {
		t.Fatalf("cross-service signature: %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}
}

func TestRegionsAreApart(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.cluster(t, "shared-name")
	eu := ecs.NewFromConfig(testenv.AWSConfig(e.srv.Endpoint(), "eu-west-1"))
	if out := must(eu.ListClusters(ctx, &ecs.ListClustersInput{}))(t); len(out.ClusterArns) != 0 {
		t.Fatalf("eu-west-1 sees %v", out.ClusterArns)
	}
	c := must(eu.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("shared-name")}))(t)
	if got := aws.ToString(c.Cluster.ClusterArn); got != "arn:aws:ecs:eu-west-1:123456789012:cluster/shared-name" {
		t.Fatalf("eu ARN %s", got)
	}
	must(eu.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("shared-name")}))(t)
	us := must(e.ecs.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"shared-name"}}))(t)
	if aws.ToString(us.Clusters[0].Status) != "ACTIVE" {
		t.Fatal("deleting in eu-west-1 touched us-east-1")
	}
	// An ARN of another region names nothing here.
	_, err := e.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: c.Cluster.ClusterArn})
	wantCode(t, err, "InvalidParameterException", "region")
}

func TestThrottling(t *testing.T) {
	srv := testenv.StartServer(t, "", func(c *server.Config) {
		c.Limits.WriteRate, c.Limits.WriteBurst = 1, 3
	})
	// Retry connection errors only, so that throttling reaches the test.
	client := ecs.NewFromConfig(srv.AWSConfig(), func(o *ecs.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.Retryables = []retry.IsErrorRetryable{retry.RetryableConnectionError{}}
		})
	})
	ctx := ctxT(t)
	throttled := 0
	for i := range 10 {
		_, err := client.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("c")})
		if err != nil {
			wantCode(t, err, "ThrottlingException", "Rate exceeded")
			throttled++
		} else if throttled > 0 && i < 5 {
			t.Fatal("a request passed right after throttling began")
		}
	}
	if throttled < 5 {
		t.Fatalf("only %d of 10 rapid writes throttled with a burst of 3", throttled)
	}
	// Reads have their own bucket.
	must(client.ListClusters(ctx, &ecs.ListClustersInput{}))(t)
}

func TestTagsAndSettings(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.cluster(t, "c")
	ci := e.instance(t, "c", 1024, 1024)
	td := e.taskDef(t, "f", 64, 0)
	run := must(e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(td)}))(t)
	svc := must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("s"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(0)}))(t)
	arns := map[string]string{
		"cluster":            "arn:aws:ecs:us-east-1:123456789012:cluster/c",
		"container-instance": ci,
		"task-definition":    td,
		"task":               aws.ToString(run.Tasks[0].TaskArn),
		"service":            aws.ToString(svc.Service.ServiceArn),
	}
	for kind, arn := range arns {
		t.Run(kind, func(t *testing.T) {
			must(e.ecs.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: []types.Tag{
				{Key: aws.String("a"), Value: aws.String("1")}, {Key: aws.String("b"), Value: aws.String("2")},
			}}))(t)
			must(e.ecs.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("3")}}}))(t)
			must(e.ecs.UntagResource(ctx, &ecs.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"b"}}))(t)
			tags := must(e.ecs.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String(arn)}))(t).Tags
			if len(tags) != 1 || aws.ToString(tags[0].Key) != "a" || aws.ToString(tags[0].Value) != "3" {
				t.Fatalf("tags %+v", tags)
			}
		})
	}
	_, err := e.ecs.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String(arns["cluster"]), Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("1")}}})
	wantCode(t, err, "InvalidParameterException", "reserved")
	_, err = e.ecs.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:ecs:us-east-1:123456789012:cluster/ghost")})
	wantCode(t, err, "ResourceNotFoundException", "")

	put := must(e.ecs.PutAccountSetting(ctx, &ecs.PutAccountSettingInput{Name: types.SettingNameAwsvpcTrunking, Value: aws.String("enabled")}))(t)
	if aws.ToString(put.Setting.Value) != "enabled" {
		t.Fatalf("put %+v", put.Setting)
	}
	must(e.ecs.PutAccountSettingDefault(ctx, &ecs.PutAccountSettingDefaultInput{Name: types.SettingNameContainerInsights, Value: aws.String("enhanced")}))(t)
	own := must(e.ecs.ListAccountSettings(ctx, &ecs.ListAccountSettingsInput{}))(t)
	if len(own.Settings) != 1 {
		t.Fatalf("own settings %+v", own.Settings)
	}
	eff := map[string]string{}
	p := ecs.NewListAccountSettingsPaginator(e.ecs, &ecs.ListAccountSettingsInput{EffectiveSettings: true, MaxResults: 4})
	for i := 0; p.HasMorePages() && i < 10; i++ {
		for _, s := range must(p.NextPage(ctx))(t).Settings {
			eff[string(s.Name)] = aws.ToString(s.Value)
		}
	}
	if eff["awsvpcTrunking"] != "enabled" || eff["containerInsights"] != "enhanced" || eff["taskLongArnFormat"] != "enabled" || len(eff) != 11 {
		t.Fatalf("effective settings %v", eff)
	}
	must(e.ecs.DeleteAccountSetting(ctx, &ecs.DeleteAccountSettingInput{Name: types.SettingNameAwsvpcTrunking}))(t)
	_, err = e.ecs.PutAccountSetting(ctx, &ecs.PutAccountSettingInput{Name: types.SettingNameAwsvpcTrunking, Value: aws.String("maybe")})
	wantCode(t, err, "InvalidParameterException", "awsvpcTrunking")

	_, err = e.ecs.CreateCapacityProvider(ctx, &ecs.CreateCapacityProviderInput{Name: aws.String("cp")})
	wantCode(t, err, "ClientException", "autoScalingGroupProvider is not supported by Wharf yet.")
}

// TestSDKEnvironment checks that the SDK's default configuration reaches
// the server through the variables `wharf dev` writes to its env file.
func TestSDKEnvironment(t *testing.T) {
	e := newEnv(t)
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL":            e.srv.Endpoint(),
		"AWS_ACCESS_KEY_ID":           testenv.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":       testenv.SecretAccessKey,
		"AWS_REGION":                  testenv.Region,
		"AWS_CONFIG_FILE":             "/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
	} {
		t.Setenv(k, v)
	}
	cfg := must(config.LoadDefaultConfig(ctxT(t)))(t)
	out := must(ecs.NewFromConfig(cfg).CreateCluster(ctxT(t), &ecs.CreateClusterInput{ClusterName: aws.String("from-env")}))(t)
	if aws.ToString(out.Cluster.ClusterName) != "from-env" {
		t.Fatalf("created %+v", out.Cluster)
	}
}
