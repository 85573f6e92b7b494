// Package docker implements runtime.Runtime on the Docker Engine API. It owns
// the translation between Wharf's engine-neutral container model and the
// engine's: specs to create requests, inspect results to runtime.State,
// engine errors to runtime's error classes.
//
// # Engine versions
//
// The client negotiates the API version with the engine, so the package
// works with API 1.41 (Docker 20.10) and newer. What differs:
//
//   - A container's MAC address goes in container.Config before API 1.44
//     and in the network's endpoint settings from 1.44 on; Create decides
//     by the negotiated version. Either way it applies to the container's
//     network (a user-defined one, or the default bridge).
//   - Before API 1.44 the engine accepts duplicate network names unless
//     asked not to; the client asks.
//   - An engine may accept a create on a missing network and fail only on
//     start (20.10 does); both errors wrap runtime.ErrNotFound.
//
// # Units and conventions
//
//   - Health check durations are time.Durations; the engine takes
//     nanoseconds and rejects anything between 0 and 1ms. Zero means the
//     engine's default (interval 30s, timeout 30s, start period 0, and 3
//     retries for Retries 0). ECS gives seconds: convert.
//   - Stop timeouts (spec and Stop) are rounded up to whole seconds.
//   - CPU shares below the engine's minimum of 2 are raised to 2; 0 keeps
//     the engine default (1024).
//   - A bind mount's host directory is created when missing, as ECS
//     documents for host volumes; a named volume is created on first use;
//     a volume mount without a Source is anonymous and removed with the
//     container.
//   - A fixed IPv4 address and aliases need a user-defined network; a MAC
//     address needs one or the default bridge.
//   - State.Networks and State.MacAddresses have one entry per network the
//     container is attached to ("host" and "none" with empty addresses; a
//     container:<id> one has none). A published port bound to all
//     addresses reports HostIP 0.0.0.0 (and, on engines with IPv6, "::" as
//     a second entry).
//   - Logs demultiplexes the engine's framed stdout/stderr stream into one
//     text in the order the engine logged the chunks; for a TTY container
//     the engine sends the merged stream as is (with \r\n line ends).
//   - Event actions lose their detail ("health_status: healthy" becomes
//     "health_status"); Inspect gives the health.
package docker
