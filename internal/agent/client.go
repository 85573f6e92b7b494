package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/wharfhq/wharf/internal/api/agentapi"
)

// controlPlane is the agent's connection to the Wharf server: the public
// ECS API through the AWS SDK, and the agent protocol signed the same way.
type controlPlane struct {
	ecs      *ecs.Client
	endpoint string
	region   string
	creds    aws.Credentials
	http     *http.Client
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
		ecs:      ecs.NewFromConfig(cfg),
		endpoint: strings.TrimSuffix(endpoint, "/"),
		region:   region,
		creds:    aws.Credentials{AccessKeyID: accessKeyID, SecretAccessKey: secret},
		http:     hc,
	}
}

// apiError is an error answer of the agent protocol.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// call invokes an agent protocol operation.
func (cp *controlPlane) call(ctx context.Context, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cp.endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", agentapi.TargetPrefix+"."+op)
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, cp.creds, req, hex.EncodeToString(sum[:]), agentapi.SigningName, cp.region, time.Now()); err != nil {
		return err
	}
	resp, err := cp.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		json.Unmarshal(raw, &e)
		return &apiError{Status: resp.StatusCode, Code: e.Type, Message: e.Message}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s: decode answer: %w", op, err)
	}
	return nil
}

func (cp *controlPlane) poll(ctx context.Context, in *agentapi.PollRequest) (*agentapi.PollResponse, error) {
	out := new(agentapi.PollResponse)
	return out, cp.call(ctx, "Poll", in, out)
}

func (cp *controlPlane) reportHealth(ctx context.Context, in *agentapi.ReportHealthRequest) error {
	return cp.call(ctx, "ReportHealth", in, new(agentapi.ReportHealthResponse))
}

func (cp *controlPlane) serviceConnectView(ctx context.Context, in *agentapi.ServiceConnectViewRequest) (*agentapi.ServiceConnectViewResponse, error) {
	out := new(agentapi.ServiceConnectViewResponse)
	return out, cp.call(ctx, "ServiceConnectView", in, out)
}
