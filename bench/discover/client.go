package main

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/wharfhq/wharf/bench/internal/apibench"
)

// newClient returns a Cloud Map client for endpoint; both systems get the
// same settings (apibench.AWSConfig).
func newClient(cfg Config, endpoint, keyID, secret string) *servicediscovery.Client {
	return servicediscovery.NewFromConfig(apibench.AWSConfig(cfg.Workers, region, endpoint, keyID, secret), withoutHostPrefix)
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
