// Package proxy is Wharf's Service Connect sidecar proxy: the data plane
// that a `wharf proxy` container runs in every task of a Service Connect
// service, in place of ECS's Envoy. It owns listeners (egress: one per
// alias of the namespace, forwarding to a client-server service's tasks;
// ingress: forwarding callers to the local application), the upstreams'
// endpoint sets with load balancing, retries, timeouts and outlier
// detection, TLS between proxies, access logs and Prometheus metrics with
// ECS's names and dimensions.
//
// The package is pure: it takes a Config (plain values, no wire types, no
// store) through Apply, as often as the configuration changes, and imports
// nothing stateful of Wharf; the agent converts Service Connect state into
// a Config at its edge. See README.md for the pipeline, the defaults and
// every behaviour decided.
//
// HTTP/1.1 does not go through net/http: heads are forwarded as bytes with
// only what framing, connection handling, retries and logs need parsed,
// and every buffer is reused, so that a proxy core can keep up with
// HAProxy (bench/proxy). HTTP/2 and gRPC use net/http's server (h2c or
// TLS) and one http.Transport per endpoint. TCP is copied both ways.
package proxy
