package ecs

import (
	"context"

	"github.com/wharfhq/wharf/internal/api/agentapi"
)

// ServiceConnectView describes namespaces' client-server services to the
// agents whose tasks call them.
func (s *Service) ServiceConnectView(ctx context.Context, in *agentapi.ServiceConnectViewRequest) (*agentapi.ServiceConnectViewResponse, error) {
	return &agentapi.ServiceConnectViewResponse{Namespaces: []agentapi.NamespaceView{}}, nil
}
