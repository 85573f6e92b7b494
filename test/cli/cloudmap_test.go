package cli

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"

	sdapi "github.com/wharfhq/wharf/internal/api/servicediscovery"
	"github.com/wharfhq/wharf/internal/awsproto"
	"github.com/wharfhq/wharf/internal/cloudmap"
	"github.com/wharfhq/wharf/internal/testenv"
)

// startCloudMap serves the Cloud Map API over a test server's store, the
// way internal/server serves its APIs, and returns its endpoint.
func startCloudMap(t *testing.T) string {
	t.Helper()
	srv := testenv.StartServer(t, "")
	svc, err := cloudmap.New(context.Background(), cloudmap.Config{
		Store:         srv.Store(),
		Account:       testenv.Account,
		DefaultRegion: testenv.Region,
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("cloudmap.New: %v", err)
	}
	hs := httptest.NewServer(awsproto.NewHandler(awsproto.Config{
		Services: []awsproto.Service{{
			TargetPrefix: sdapi.TargetPrefix,
			SigningName:  sdapi.SigningName,
			Operations:   cloudmap.Operations(svc),
			MessageField: "Message",
			ThrottleCode: "RequestLimitExceeded",
		}},
		Verifier: &awsproto.Verifier{Credentials: awsproto.StaticCredentials{testenv.AccessKeyID: testenv.SecretAccessKey}},
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		svc.Run(ctx)
	}()
	t.Cleanup(func() {
		hs.Close()
		cancel()
		<-done
	})
	return hs.URL
}

func TestCLICloudMapSession(t *testing.T) {
	cli := testenv.AWSCLI(t)
	endpoint := startCloudMap(t)
	cmd := exec.Command("bash", "cloudmap.sh")
	cmd.Env = append(os.Environ(),
		"AWS="+cli,
		"AWS_ENDPOINT_URL="+endpoint,
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
