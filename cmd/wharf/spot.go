package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/wharfhq/wharf/internal/api/agentapi"
)

// runSpotInterrupt interrupts a FARGATE_SPOT task, as Fargate does when it
// takes its capacity back.
func runSpotInterrupt(ctx context.Context, args []string) error {
	fs := flagSet("spot-interrupt", `Interrupt a running FARGATE_SPOT task as Fargate does when it takes the
capacity back: its containers get SIGTERM now, the task stops with stopCode
SpotInterruption within the server's --spot-interruption-notice (or its
containers' stopTimeout, if shorter), and its service replaces it. The
endpoint and credentials are the AWS CLI's: AWS_ENDPOINT_URL, the access
key in the environment or a profile, AWS_REGION.`)
	endpoint := fs.String("endpoint-url", os.Getenv("AWS_ENDPOINT_URL"), "Wharf's endpoint")
	cluster := fs.String("cluster", "", "the task's cluster (default the default cluster)")
	task := fs.String("task", "", "the task's ARN or ID")
	if err := parse(fs, args); err != nil {
		return helpRequested(err)
	}
	if *endpoint == "" || *task == "" {
		return errors.New("give --task, and --endpoint-url or AWS_ENDPOINT_URL")
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	if cfg.Region == "" {
		return errors.New("no region: set AWS_REGION, as for the AWS CLI")
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	cl := agentapi.NewClient(*endpoint, cfg.Region, creds.AccessKeyID, creds.SecretAccessKey, &http.Client{Timeout: 30 * time.Second})
	var out agentapi.InterruptSpotTaskResponse
	if err := cl.Call(ctx, "InterruptSpotTask", &agentapi.InterruptSpotTaskRequest{Cluster: *cluster, Task: *task}, &out); err != nil {
		return err
	}
	fmt.Printf("Interrupted %s: its containers get SIGTERM now, and it stops with stopCode SpotInterruption.\n", out.Task.TaskArn)
	return nil
}
