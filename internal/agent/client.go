package agent

import (
	"context"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/wharfhq/wharf/internal/api/agentapi"
)

// controlPlane is the agent's connection to the Wharf server: the public
// ECS API through the AWS SDK, and the agent protocol signed the same way.
type controlPlane struct {
	*agentapi.Client
	ecs *ecs.Client
}

func newControlPlane(endpoint, region, accessKeyID, secret string) *controlPlane {
	hc := &http.Client{Timeout: 90 * time.Second}
	cfg := aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKeyID, secret, ""),
		BaseEndpoint: aws.String(endpoint),
		HTTPClient:   hc,
	}
	return &controlPlane{
		Client: agentapi.NewClient(endpoint, region, accessKeyID, secret, hc),
		ecs:    ecs.NewFromConfig(cfg),
	}
}

func (cp *controlPlane) poll(ctx context.Context, in *agentapi.PollRequest) (*agentapi.PollResponse, error) {
	out := new(agentapi.PollResponse)
	return out, cp.Call(ctx, "Poll", in, out)
}

func (cp *controlPlane) reportHealth(ctx context.Context, in *agentapi.ReportHealthRequest) error {
	return cp.Call(ctx, "ReportHealth", in, new(agentapi.ReportHealthResponse))
}

func (cp *controlPlane) serviceConnectView(ctx context.Context, in *agentapi.ServiceConnectViewRequest) (*agentapi.ServiceConnectViewResponse, error) {
	out := new(agentapi.ServiceConnectViewResponse)
	return out, cp.Call(ctx, "ServiceConnectView", in, out)
}
