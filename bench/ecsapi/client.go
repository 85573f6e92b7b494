package main

import (
	"bytes"
	"context"
	"io"
	"net/http"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/wharfhq/wharf/bench/internal/apibench"
)

// newClient returns an ECS client for endpoint; both systems get the same
// settings (apibench.AWSConfig).
func newClient(cfg Config, endpoint, keyID, secret string) *ecs.Client {
	c := apibench.AWSConfig(cfg.Workers, region, endpoint, keyID, secret)
	c.APIOptions = []func(*middleware.Stack) error{addQuoteTaskNumbers}
	return ecs.NewFromConfig(c)
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
