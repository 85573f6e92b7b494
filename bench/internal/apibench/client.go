package apibench

import (
	"bytes"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// AWSConfig is the SDK configuration both systems get: retries off, so
// that every error is counted, and a connection pool holding a connection
// per worker.
func AWSConfig(workers int, region, endpoint, keyID, secret string) aws.Config {
	httpClient := awshttp.NewBuildableClient().
		WithTimeout(30 * time.Second).
		WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns = 2 * workers
			t.MaxIdleConnsPerHost = 2 * workers
			t.Proxy = nil
		})
	return aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		BaseEndpoint: aws.String(endpoint),
		HTTPClient:   ownBody{httpClient},
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
	}
}

// ownBody hands the transport its own copy of the request body. smithy-go
// closes the request body as soon as the HTTP client returns, while the
// transport's writer may still be finishing with it; the failed write then
// closes the connection under the response body being read ("read tcp ...:
// use of closed network connection", aws/aws-sdk-go-v2#2737). The default
// retryer hides this by retrying; with retries off it failed up to 1 in 100
// requests against Wharf, which answers fast and in chunks.
type ownBody struct{ c aws.HTTPClient }

func (o ownBody) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	return o.c.Do(r)
}
