// Package dns is Wharf's authoritative DNS server for Cloud Map DNS
// namespaces: it follows the Cloud Map records in the store and answers
// for every DNS_PRIVATE and DNS_PUBLIC namespace over UDP and TCP.
//
// # State
//
// Run lists everything under cloudmap.Prefix once (store.ListAt), builds an
// immutable index and then follows the store with a watch from the next
// revision. Each batch of watch events rebuilds only the services it touched
// and the zones holding them, and publishes a new index through an atomic
// pointer, so a query never takes a lock: it is a few map lookups. A broken
// watch, including store.ErrCompacted, makes the server list everything
// again; queries keep being answered from the last index meanwhile.
//
// A zone is a namespace's name. When namespaces of several regions share a
// name, the oldest (by CreateDate, then region and id) serves it and the
// others are logged as shadowed. The SOA serial is the store revision of the
// zone's last change (after a full load: the revision loaded), clipped to 32
// bits.
//
// # Answers
//
//   - The apex has SOA (mname ns1.<zone>, rname hostmaster.<zone>, refresh
//     7200, retry 900, expire 1209600, minimum = the namespace's SOA TTL,
//     15 s when unset) and NS ns1.<zone>; ns1.<zone> answers the listen IP
//     when the server listens on a specific IP.
//   - <service>.<zone> has the service's A, AAAA, SRV or CNAME records with
//     the TTLs of its DnsConfig, one per registered instance that carries
//     the attribute the type needs (AWS_INSTANCE_IPV4, AWS_INSTANCE_IPV6,
//     AWS_INSTANCE_PORT with an address for SRV, AWS_INSTANCE_CNAME).
//     Services of type HTTP or without DnsConfig have no records. A name
//     exists only while it owns a record, as in Route 53: a service with no
//     instance is NXDOMAIN.
//   - SRV is "1 1 <port> <instance-id>.<service>.<zone>", and for services
//     with SRV records <instance-id>.<service>.<zone> answers the
//     instance's A and AAAA, which also go into the additional section.
//   - MULTIVALUE answers up to 8 records chosen at random, in random order;
//     WEIGHTED answers one record chosen at random.
//   - Health: only instances whose Health is HEALTHY are answered. When no
//     instance of a record set is healthy, every instance is answered as if
//     healthy: Route 53 does this for multivalue answer records ("when all
//     records are unhealthy, Route 53 responds to DNS queries with up to
//     eight unhealthy records") and Cloud Map documents it for WEIGHTED ("if
//     no instances are healthy, Route 53 responds to DNS queries as if all of
//     the instances were healthy"). Failing open keeps a service reachable
//     when its health checks, rather than its tasks, are broken.
//   - NXDOMAIN when the name does not exist in the zone, NOERROR with no
//     answer (NODATA) when it exists without records of the type, including
//     empty non-terminals; both carry the zone's SOA in the authority
//     section. Every in-zone answer has the AA bit.
//   - A CNAME is followed, up to 8 steps, through Wharf's own zones, and
//     through the forwarders when the query asked for recursion.
//   - ANY gets the minimal answer of RFC 8482: one synthesized HINFO
//     ("RFC8482", "") for a name that exists, NXDOMAIN otherwise, over UDP
//     and TCP alike. Zone transfers are REFUSED.
//   - Names are compared case-insensitively. The question is echoed as
//     asked; records carry their canonical, lower-case owner names, since
//     they are built once per change and shared by every answer.
//   - Outside Wharf's zones the answer is REFUSED unless Config.Forward
//     lists upstream resolvers and the query has RD set: then the question
//     is sent to the upstreams in order (2 s each, UDP, again over TCP when
//     the answer is truncated) and the first usable answer is relayed. At
//     most 256 forwarded queries are in flight; beyond that the answer is
//     SERVFAIL. Nothing is ever sent anywhere but the configured upstreams,
//     and an upstream equal to the server's own address is rejected by New.
//
// # Transport
//
// UDP and TCP share one port. EDNS0: a UDP answer fits the client's
// advertised size capped at 1232 bytes (DNS Flag Day 2020), or 512 bytes
// without EDNS0; when it does not fit, records are dropped and TC is set
// (dropping only additional records does not set TC), and the client
// retries over TCP, which answers in full. A TCP connection may stay idle
// 10 s and carry 128 queries (miekg/dns's default). EDNS versions other than 0 get
// BADVERS; several OPT records, or an OPT not owned by the root, FORMERR.
//
// Requests are screened before parsing as miekg/dns's DefaultMsgAcceptFunc
// does (responses are dropped silently; FORMERR when there is not exactly
// one question, or more than 1 answer, 1 authority or 2 additional
// records), except that every opcode but QUERY, NOTIFY included, gets
// NOTIMP. Packets too short for a header are dropped.
//
// There is no response rate limiting: Wharf's DNS is the resolver of the
// containers it runs, which share a few source addresses, and it only
// answers for its own zones (or relays to configured upstreams), so it is
// no open resolver to abuse. Put it behind a firewall when it listens
// beyond loopback and the bridge.
package dns
