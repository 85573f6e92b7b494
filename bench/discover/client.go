package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// newClient returns a Cloud Map client for endpoint; both systems get the
// same settings. Retries are off so that every error is counted, and the
// connection pool holds a connection per worker.
func newClient(cfg Config, endpoint, keyID, secret string) *servicediscovery.Client {
	httpClient := awshttp.NewBuildableClient().
		WithTimeout(30 * time.Second).
		WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns = 2 * cfg.Workers
			t.MaxIdleConnsPerHost = 2 * cfg.Workers
			t.Proxy = nil
		})
	return servicediscovery.NewFromConfig(aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		BaseEndpoint: aws.String(endpoint),
		HTTPClient:   ownBody{httpClient},
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
	}, withoutHostPrefix)
}

// withoutHostPrefix keeps DiscoverInstances and DiscoverInstancesRevision
// on the configured endpoint: the SDK would otherwise send them to
// data-<host>, and data-127.0.0.1 does not resolve.
func withoutHostPrefix(o *servicediscovery.Options) {
	o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("DisableEndpointHostPrefix",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				return next.HandleInitialize(smithyhttp.DisableEndpointHostPrefix(ctx, true), in)
			}), middleware.Before)
	})
}

// ownBody hands the transport its own copy of the request body. smithy-go
// closes the request body as soon as the HTTP client returns, while the
// transport's writer may still be finishing with it; the failed write then
// closes the connection under the response body being read ("read tcp ...:
// use of closed network connection", aws/aws-sdk-go-v2#2737). The default
// retryer hides this by retrying; with retries off it shows up as errors
// against a server that answers fast (see bench/ecsapi).
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
