// Package cli runs shell sessions with the AWS CLI v2 against a real Wharf
// server.
package cli

import (
	"os"
	"os/exec"
	"testing"

	"github.com/wharfhq/wharf/internal/testenv"
)

func TestCLISession(t *testing.T) {
	cli := testenv.AWSCLI(t)
	srv := testenv.StartServer(t, "")
	cmd := exec.Command("bash", "session.sh")
	cmd.Env = append(os.Environ(),
		"AWS="+cli,
		"AWS_ENDPOINT_URL="+srv.Endpoint(),
		"AWS_ACCESS_KEY_ID="+testenv.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+testenv.SecretAccessKey,
		"AWS_DEFAULT_REGION="+testenv.Region,
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_PAGER=",
	)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("session failed: %v", err)
	}
}
