// Package agentapi is the wire protocol between Wharf's node agents and the
// control plane beyond the public ECS API: a blocking poll for the tasks
// assigned to a container instance, and container health reports, which the
// ECS API has no call for; and an operator's call AWS makes itself, the
// Fargate Spot interruption of a task. It is served as AWS JSON 1.1 under the target
// prefix WharfAgentV1 and signed with SigV4 for the "ecs" service, like the
// agent's ECS calls.
package agentapi

import (
	"context"
	"fmt"
	"strconv"

	"github.com/wharfhq/wharf/internal/api"
	"github.com/wharfhq/wharf/internal/api/ecs"
)

// TargetPrefix is the X-Amz-Target prefix of the agent protocol.
const TargetPrefix = "WharfAgentV1"

// SigningName is the SigV4 service the agent signs for.
const SigningName = "ecs"

// CodeInstanceNotRegistered is the error code (__type) of an answer to an
// agent whose container instance the cluster does not know, or knows as
// INACTIVE (deregistered): the agent registers again. It is Wharf's own;
// ECS answers its agent with ClientException or InvalidParameterException,
// which the agent could only tell apart from other refusals by their text.
const CodeInstanceNotRegistered = "InstanceNotRegisteredException"

// InstanceNotRegistered is the error for an unknown or INACTIVE container
// instance, with code CodeInstanceNotRegistered.
func InstanceNotRegistered(instance, cluster string) *api.Error {
	return api.ClientError(CodeInstanceNotRegistered, fmt.Sprintf("Container instance %q is not registered in cluster %q; register it again.", instance, cluster))
}

// PollRequest asks for the tasks assigned to a container instance. With
// Index 0 the answer comes at once; otherwise it waits up to WaitSeconds for
// the assignment to change after Index.
type PollRequest struct {
	Cluster           string `json:"cluster"`
	ContainerInstance string `json:"containerInstance"`
	Index             int64  `json:"index"`
	WaitSeconds       int32  `json:"waitSeconds"`
}

// PollResponse lists every task assigned to the instance that has not
// stopped, with its task definition.
type PollResponse struct {
	// Index is the store revision of the answer; pass it to the next Poll.
	Index int64          `json:"index"`
	Tasks []AssignedTask `json:"tasks"`
	// Network is where awsvpc tasks get their addresses.
	Network *Network `json:"network,omitempty"`
	// DNS is the address (host:port) of Wharf's DNS server, which the
	// node's containers resolve names through; empty without one.
	DNS string `json:"dns,omitempty"`
}

// AssignedTask is a task and what it runs.
type AssignedTask struct {
	Task           ecs.Task           `json:"task"`
	TaskDefinition ecs.TaskDefinition `json:"taskDefinition"`
	// ServiceConnect is set for tasks of Service Connect services: the
	// agent runs a proxy in the task and gives its containers the
	// namespace's aliases.
	ServiceConnect *TaskServiceConnect `json:"serviceConnect,omitempty"`
	// StopWithinSeconds, when set, caps the time between SIGTERM and
	// SIGKILL of a stopping task's containers: what is left of a Fargate
	// Spot interruption's notice.
	StopWithinSeconds int32 `json:"stopWithinSeconds,omitempty"`
}

// TaskServiceConnect is what a task's proxy serves.
type TaskServiceConnect struct {
	// Namespace is the Cloud Map namespace's ARN; NamespaceName its name.
	Namespace     string `json:"namespace"`
	NamespaceName string `json:"namespaceName"`
	// Services are the task's own endpoints (client-server mode); none in
	// client mode.
	Services []ServiceConnectIngress `json:"services,omitempty"`
	// AccessLog is "TEXT" or "JSON", or empty for none.
	AccessLog             string                `json:"accessLog,omitempty"`
	AccessLogQueryStrings bool                  `json:"accessLogQueryStrings,omitempty"`
	ServiceName           string                `json:"serviceName"`
	ClusterName           string                `json:"clusterName"`
	ProxyLogConfiguration *ecs.LogConfiguration `json:"proxyLogConfiguration,omitempty"`
}

// ServiceConnectIngress is one endpoint a task serves through its proxy.
type ServiceConnectIngress struct {
	DiscoveryName string `json:"discoveryName"`
	// DNSName is the client alias callers use (discoveryName.namespace
	// unless the configuration names another).
	DNSName       string `json:"dnsName,omitempty"`
	ContainerName string `json:"containerName"`
	ContainerPort int32  `json:"containerPort"`
	// IngressPort is where the proxy listens for callers; it is the port
	// registered in Cloud Map (for bridge tasks, of the task's network
	// namespace; the host port bound to it is what callers use).
	IngressPort int32  `json:"ingressPort"`
	Protocol    string `json:"protocol"` // http, http2, grpc or tcp
	// Timeouts in seconds; nil for the defaults, 0 disables.
	PerRequestTimeoutSeconds *int32 `json:"perRequestTimeoutSeconds,omitempty"`
	IdleTimeoutSeconds       *int32 `json:"idleTimeoutSeconds,omitempty"`
	// TLS, when set, makes the ingress serve TLS with a certificate from
	// IssueCertificate.
	TLS *ServiceTLS `json:"tls,omitempty"`
}

// ServiceTLS is how a client-server service's proxies use TLS: always
// server-side TLS with a certificate from Wharf's certificate authority,
// and with Mutual, client certificates from it too.
type ServiceTLS struct {
	Mutual bool `json:"mutual,omitempty"`
}

// ServiceConnectViewRequest asks for the client-server services of
// namespaces and their endpoints. With Index 0 the answer comes at once;
// otherwise it waits up to WaitSeconds for a change after Index.
type ServiceConnectViewRequest struct {
	Cluster     string   `json:"cluster"`
	Namespaces  []string `json:"namespaces"` // ARNs
	Index       int64    `json:"index"`
	WaitSeconds int32    `json:"waitSeconds"`
}

// ServiceConnectViewResponse describes namespaces.
type ServiceConnectViewResponse struct {
	Index      int64           `json:"index"`
	Namespaces []NamespaceView `json:"namespaces"`
	// TrustBundle is the PEM certificates of Wharf's certificate
	// authority, set when a service of the namespaces uses TLS.
	TrustBundle string `json:"trustBundle,omitempty"`
}

// NamespaceView is one namespace's client-server services.
type NamespaceView struct {
	Arn      string        `json:"arn"`
	Name     string        `json:"name"`
	Services []ServiceView `json:"services"`
}

// ServiceView is a client-server service as its callers see it.
type ServiceView struct {
	DiscoveryName string `json:"discoveryName"`
	// DNSName and Port are the client alias: callers reach the service at
	// DNSName:Port (and discoveryName:Port).
	DNSName                  string     `json:"dnsName"`
	Port                     int32      `json:"port"`
	Protocol                 string     `json:"protocol"`
	PerRequestTimeoutSeconds *int32     `json:"perRequestTimeoutSeconds,omitempty"`
	IdleTimeoutSeconds       *int32     `json:"idleTimeoutSeconds,omitempty"`
	Endpoints                []Endpoint `json:"endpoints"`
	// Routing is how callers spread requests over the endpoints; nil for
	// the defaults.
	Routing *Routing `json:"routing,omitempty"`
	// TLS is set when the service's proxies serve TLS: callers verify
	// their certificates for DNSName against the TrustBundle.
	TLS *ServiceTLS `json:"tls,omitempty"`
}

// Routing is how callers of a service pick endpoints and retry: Wharf's
// extensions to Service Connect, set through the ECS service's tags.
type Routing struct {
	// Balancer is round_robin (the default) or least_request.
	Balancer string `json:"balancer,omitempty"`
	// ZoneAware prefers endpoints in the caller's availability zone.
	ZoneAware bool `json:"zoneAware,omitempty"`
	// Retries is how often a failed request is sent again; nil for 2.
	Retries *int32 `json:"retries,omitempty"`
	// RetryNonIdempotent retries POST and gRPC calls that reached a task.
	RetryNonIdempotent bool `json:"retryNonIdempotent,omitempty"`
}

// Endpoint is one healthy task of a service.
type Endpoint struct {
	Address string `json:"address"` // ip:port of its proxy's ingress listener
	Zone    string `json:"zone"`
	TaskArn string `json:"taskArn"`
}

// Network is the bridge network awsvpc tasks attach to.
type Network struct {
	Name    string `json:"name"`
	Subnet  string `json:"subnet"`
	Gateway string `json:"gateway"`
}

// ReportHealthRequest reports the health of a task's containers.
type ReportHealthRequest struct {
	Cluster    string            `json:"cluster"`
	Task       string            `json:"task"`
	Containers []ContainerHealth `json:"containers"`
}

// ContainerHealth is one container's health check status.
type ContainerHealth struct {
	Name         string           `json:"name"`
	HealthStatus ecs.HealthStatus `json:"healthStatus"`
}

// ReportHealthResponse acknowledges a health report.
type ReportHealthResponse struct{}

// IssueCertificateRequest asks Wharf's certificate authority to sign the
// key of a Service Connect task's proxy. The control plane decides the
// names: the DNS names and discovery names of the task's TLS services.
type IssueCertificateRequest struct {
	Cluster string `json:"cluster"`
	Task    string `json:"task"`
	// CSR is a PEM certificate request; only its public key is used.
	CSR string `json:"csr"`
}

// IssueCertificateResponse is a signed certificate.
type IssueCertificateResponse struct {
	// Certificate is PEM: the task's certificate, then the authority's.
	Certificate string `json:"certificate"`
	// TrustBundle is the PEM certificates callers verify against.
	TrustBundle string `json:"trustBundle"`
	// RenewAfter is when the agent asks for a new certificate (five
	// sevenths into the certificate's life); NotAfter when it expires.
	RenewAfter api.Time `json:"renewAfter"`
	NotAfter   api.Time `json:"notAfter"`
}

// ReportProxyMetricsRequest carries the metrics of the Service Connect
// proxies of a container instance, for the control plane's /metrics.
type ReportProxyMetricsRequest struct {
	Cluster           string         `json:"cluster"`
	ContainerInstance string         `json:"containerInstance"`
	Proxies           []ProxyMetrics `json:"proxies"`
}

// ProxyMetrics is one proxy's metrics in the Prometheus text format, as
// its /metrics serves them: cumulative since the proxy started.
type ProxyMetrics struct {
	TaskArn string `json:"taskArn"`
	Metrics string `json:"metrics"`
}

// ReportProxyMetricsResponse acknowledges a metrics report.
type ReportProxyMetricsResponse struct{}

// InterruptSpotTaskRequest interrupts a running FARGATE_SPOT task, as
// Fargate does when it takes its capacity back: the task's containers get
// SIGTERM at once, the task stops with stopCode SpotInterruption within the
// notice (two minutes by default, the server's
// --spot-interruption-notice), and its service replaces it.
type InterruptSpotTaskRequest struct {
	Cluster string `json:"cluster,omitempty"`
	Task    string `json:"task"`
}

// InterruptSpotTaskResponse is the interrupted task.
type InterruptSpotTaskResponse struct {
	Task ecs.Task `json:"task"`
}

// API is the agent protocol.
type API interface {
	Poll(ctx context.Context, in *PollRequest) (*PollResponse, error)
	ReportHealth(ctx context.Context, in *ReportHealthRequest) (*ReportHealthResponse, error)
	ServiceConnectView(ctx context.Context, in *ServiceConnectViewRequest) (*ServiceConnectViewResponse, error)
	IssueCertificate(ctx context.Context, in *IssueCertificateRequest) (*IssueCertificateResponse, error)
	ReportProxyMetrics(ctx context.Context, in *ReportProxyMetricsRequest) (*ReportProxyMetricsResponse, error)
	InterruptSpotTask(ctx context.Context, in *InterruptSpotTaskRequest) (*InterruptSpotTaskResponse, error)
}

// Operations returns the operation table of a.
func Operations(a API) map[string]api.Operation {
	return map[string]api.Operation{
		"Poll": {ReadOnly: true, Invoke: func(ctx context.Context, decode func(any) error) (any, error) {
			in := new(PollRequest)
			if err := decode(in); err != nil {
				return nil, err
			}
			var v api.Validator
			if in.ContainerInstance == "" {
				v.Required("containerInstance")
			}
			if in.WaitSeconds < 0 || in.WaitSeconds > 60 {
				v.Add("Value '%d' at 'waitSeconds' failed to satisfy constraint: Member must be between 0 and 60", in.WaitSeconds)
			}
			if err := v.Err("InvalidParameterException"); err != nil {
				return nil, err
			}
			return a.Poll(ctx, in)
		}},
		"ServiceConnectView": {ReadOnly: true, Invoke: func(ctx context.Context, decode func(any) error) (any, error) {
			in := new(ServiceConnectViewRequest)
			if err := decode(in); err != nil {
				return nil, err
			}
			var v api.Validator
			if in.WaitSeconds < 0 || in.WaitSeconds > 60 {
				v.Add("Value '%d' at 'waitSeconds' failed to satisfy constraint: Member must be between 0 and 60", in.WaitSeconds)
			}
			if err := v.Err("InvalidParameterException"); err != nil {
				return nil, err
			}
			return a.ServiceConnectView(ctx, in)
		}},
		"IssueCertificate": {Invoke: func(ctx context.Context, decode func(any) error) (any, error) {
			in := new(IssueCertificateRequest)
			if err := decode(in); err != nil {
				return nil, err
			}
			var v api.Validator
			if in.Task == "" {
				v.Required("task")
			}
			if in.CSR == "" {
				v.Required("csr")
			}
			if err := v.Err("InvalidParameterException"); err != nil {
				return nil, err
			}
			return a.IssueCertificate(ctx, in)
		}},
		"ReportProxyMetrics": {Invoke: func(ctx context.Context, decode func(any) error) (any, error) {
			in := new(ReportProxyMetricsRequest)
			if err := decode(in); err != nil {
				return nil, err
			}
			var v api.Validator
			if in.ContainerInstance == "" {
				v.Required("containerInstance")
			}
			for i, p := range in.Proxies {
				if p.TaskArn == "" {
					v.Required("proxies." + strconv.Itoa(i+1) + ".member.taskArn")
				}
			}
			if err := v.Err("InvalidParameterException"); err != nil {
				return nil, err
			}
			return a.ReportProxyMetrics(ctx, in)
		}},
		"InterruptSpotTask": {Invoke: func(ctx context.Context, decode func(any) error) (any, error) {
			in := new(InterruptSpotTaskRequest)
			if err := decode(in); err != nil {
				return nil, err
			}
			var v api.Validator
			if in.Task == "" {
				v.Required("task")
			}
			if err := v.Err("InvalidParameterException"); err != nil {
				return nil, err
			}
			return a.InterruptSpotTask(ctx, in)
		}},
		"ReportHealth": {Invoke: func(ctx context.Context, decode func(any) error) (any, error) {
			in := new(ReportHealthRequest)
			if err := decode(in); err != nil {
				return nil, err
			}
			var v api.Validator
			if in.Task == "" {
				v.Required("task")
			}
			for i, c := range in.Containers {
				if !api.In(string(c.HealthStatus), ecs.HealthStatus("").Values()) {
					v.Enum("containers."+strconv.Itoa(i+1)+".member.healthStatus", string(c.HealthStatus), ecs.HealthStatus("").Values())
				}
			}
			if err := v.Err("InvalidParameterException"); err != nil {
				return nil, err
			}
			return a.ReportHealth(ctx, in)
		}},
	}
}
