package integration

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/wharfhq/wharf/internal/api/agentapi"
)

// TestPollUnregisteredInstance: a poll for an instance the cluster does not
// know, or knows as deregistered, is refused with the agent protocol's
// code for it, which the agent acts on (it registers again).
func TestPollUnregisteredInstance(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.cluster(t, "c")
	ci := eniInstance(t, e, "c", 2, 8)
	must(e.ecs.DeregisterContainerInstance(ctx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String("c"), ContainerInstance: aws.String(ci), Force: aws.Bool(true)}))(t)
	unknown := ci[:strings.LastIndex(ci, "/")+1] + "0123456789abcdef0123456789abcdef"

	for name, instance := range map[string]string{"deregistered": ci, "never registered": unknown} {
		t.Run(name, func(t *testing.T) {
			err := agentCall(t, ctx, e.srv.Endpoint(), "Poll", &agentapi.PollRequest{Cluster: "c", ContainerInstance: instance}, new(agentapi.PollResponse))
			var ae *agentapi.Error
			if !errors.As(err, &ae) {
				t.Fatalf("poll for a %s instance: %v, want an error answer", name, err)
			}
			if ae.Status != http.StatusBadRequest || ae.Code != agentapi.CodeInstanceNotRegistered || ae.Message == "" {
				t.Fatalf("poll for a %s instance answered %d %v, want 400 %s with a message", name, ae.Status, ae, agentapi.CodeInstanceNotRegistered)
			}
		})
	}
}
