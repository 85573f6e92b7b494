package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// newClient returns an ECS client for endpoint; both systems get the same
// settings. Retries are off so that every error is counted, and the
// connection pool holds a connection per worker.
func newClient(cfg Config, endpoint, keyID, secret string) *ecs.Client {
	httpClient := awshttp.NewBuildableClient().
		WithTimeout(30 * time.Second).
		WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns = 2 * cfg.Workers
			t.MaxIdleConnsPerHost = 2 * cfg.Workers
			t.Proxy = nil
		})
	return ecs.NewFromConfig(aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		BaseEndpoint: aws.String(endpoint),
		HTTPClient:   ownBody{httpClient},
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
		APIOptions:   []func(*middleware.Stack) error{addQuoteTaskNumbers},
	})
}

// ownBody hands the transport its own copy of the request body. smithy-go
// closes the request body as soon as the HTTP client returns, while the
// transport's writer may still be finishing with it; the failed write then
// closes the connection under the response body being read ("read tcp ...:
// use of closed network connection", aws/aws-sdk-go-v2#2737). The default
// retryer hides this by retrying; with retries off it failed up to 1 in 100
// DescribeTasks against Wharf, which answers fast and in chunks.
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

// addQuoteTaskNumbers works around moto returning a task's container cpu
// and memory as JSON numbers where the ECS model has strings, which the SDK
// refuses ("deserialization failed, expected string, got 1"). It rewrites
// such values into strings in the responses that carry tasks; Wharf's
// responses pass unchanged, after the same copy of the body. This workload
// sends no container overrides, whose cpu and memory are numbers.
func addQuoteTaskNumbers(stack *middleware.Stack) error {
	return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("QuoteTaskNumbers",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleDeserialize(ctx, in)
			if err != nil {
				return out, md, err
			}
			switch awsmiddleware.GetOperationName(ctx) {
			case "RunTask", "StartTask", "StopTask", "DescribeTasks":
			default:
				return out, md, err
			}
			resp, ok := out.RawResponse.(*smithyhttp.Response)
			if !ok || resp.StatusCode != http.StatusOK {
				return out, md, err
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return out, md, err
			}
			resp.Body = io.NopCloser(bytes.NewReader(quoteNumbers(body, `"cpu":`, `"memory":`)))
			return out, md, nil
		}), middleware.After)
}

// quoteNumbers puts quotes around the integer values of the given keys.
func quoteNumbers(body []byte, keys ...string) []byte {
	var out []byte
	for _, key := range keys {
		src := body
		if out != nil {
			src = out
		}
		var b []byte
		for {
			i := bytes.Index(src, []byte(key))
			if i < 0 {
				break
			}
			j := i + len(key)
			for j < len(src) && src[j] == ' ' {
				j++
			}
			k := j
			for k < len(src) && (src[k] == '-' || src[k] >= '0' && src[k] <= '9') {
				k++
			}
			if k == j {
				b = append(b, src[:j]...)
			} else {
				b = append(b, src[:j]...)
				b = append(b, '"')
				b = append(b, src[j:k]...)
				b = append(b, '"')
			}
			src = src[k:]
		}
		if b != nil {
			out = append(b, src...)
		}
	}
	if out == nil {
		return body
	}
	return out
}
