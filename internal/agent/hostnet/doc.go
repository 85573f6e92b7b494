// Package hostnet prepares the host's side of the networks task containers
// use: the engine's default bridge (where its gateway is, and a hardware
// address that stays put as containers join it), the firewall rules that
// let the default bridge and the awsvpc network reach each other, and the
// DNS relays containers use as their resolver on their network's gateway.
//
// It changes the host (interfaces, iptables, port 53 of a gateway), so it
// needs the privileges the agent runs with; hollow nodes leave it alone.
package hostnet
