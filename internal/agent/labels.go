package agent

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/wharfhq/wharf/internal/api/agentapi"
)

// Labels on every container the agent creates. The com.amazonaws.ecs ones
// are those the ECS agent sets; the wharf ones tie a container to its node
// and role.
const (
	labelCluster       = "com.amazonaws.ecs.cluster"
	labelTaskArn       = "com.amazonaws.ecs.task-arn"
	labelContainerName = "com.amazonaws.ecs.container-name"
	labelTaskFamily    = "com.amazonaws.ecs.task-definition-family"
	labelTaskRevision  = "com.amazonaws.ecs.task-definition-version"
	labelInstance      = "wharf.container-instance"
	labelRole          = "wharf.role" // "task", "pause" or "proxy"
	labelManaged       = "wharf.managed"
	labelMetadataToken = "wharf.metadata-token"
	rolePause          = "pause"
	roleTaskContainer  = "task"
	roleProxy          = "proxy" // a Service Connect task's proxy
)

// Labels tying a container to the installation it belongs to: the
// absolute path of the creating agent's state directory, and the host it
// is on. A container whose directory is gone from its host belongs to a
// deleted installation (a removed `wharf dev` data directory), and the
// janitors of that host remove it.
const (
	labelStateDir = "wharf.state-dir"
	labelHost     = "wharf.host"
)

// randomHex returns n random lower-case hex digits from crypto/rand.
func randomHex(n int) string {
	b := make([]byte, (n+1)/2)
	rand.Read(b) // never fails: crypto/rand crashes the program instead
	return hex.EncodeToString(b)[:n]
}

// metadataToken returns a container's task metadata endpoint token: 128
// bits from crypto/rand. The token is all a container shows to read its
// task's metadata and, for a Service Connect proxy, its TLS private key.
func metadataToken() string { return randomHex(32) }

// isClientError reports an error the control plane refused for good: a
// retry would get the same answer.
func isClientError(err error) bool {
	var ae *agentapi.Error
	if errors.As(err, &ae) {
		return ae.Status >= 400 && ae.Status < 500 && ae.Code != "ThrottlingException"
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() >= 400 && re.HTTPStatusCode() < 500 {
		var api smithy.APIError
		return !errors.As(err, &api) || api.ErrorCode() != "ThrottlingException"
	}
	return false
}

// isAuthError reports a refused signature or key.
func isAuthError(err error) bool {
	var re *smithyhttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusForbidden
}
