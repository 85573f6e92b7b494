package scheduler

import (
	"slices"
	"time"
)

// Demand is what one task needs from the instance it is placed on.
type Demand struct {
	CPU      int64 // CPU units, 1024 per vCPU
	Memory   int64 // MiB
	Ports    []int // static TCP host ports
	PortsUDP []int // static UDP host ports
	ENI      int64 // network interfaces: 1 for an awsvpc task
}

// Node is a container instance as the scheduler sees it. Place and
// ChooseStops only read it.
type Node struct {
	ID             string // container instance ARN
	EC2InstanceID  string
	Active         bool // status ACTIVE (not DRAINING or deregistered)
	AgentConnected bool
	CPU            int64             // remaining CPU units
	Memory         int64             // remaining MiB
	Ports          []int             // TCP host ports in use or reserved
	PortsUDP       []int             // UDP host ports in use or reserved
	ENI            int64             // remaining awsvpc task capacity; negative for no limit
	Attributes     map[string]string // ecs.availability-zone, ecs.instance-type, custom ones
	RegisteredAt   time.Time
	AgentVersion   string
	RunningTasks   int            // runningTasksCount
	Groups         map[string]int // tasks meant to run here (desired status RUNNING) by task group
}

// Failure reasons, worded as ECS words them in RunTask's failures.
const (
	ReasonInactive = "INACTIVE" // the instance is not ACTIVE (draining or deregistered)
	ReasonAgent    = "AGENT"    // the instance's agent is disconnected
	ReasonCPU      = "RESOURCE:CPU"
	ReasonMemory   = "RESOURCE:MEMORY"
	ReasonPorts    = "RESOURCE:PORTS"     // a static TCP host port is taken
	ReasonPortsUDP = "RESOURCE:PORTS_UDP" // a static UDP host port is taken
	ReasonENI      = "RESOURCE:ENI"       // no free awsvpc network interface slot

	ReasonMemberOf         = "MemberOf placement constraint unsatisfied."
	ReasonDistinctInstance = "DistinctInstance placement constraint unsatisfied."
)

// reason is a failure reason as a small code, so that per-node state in a
// placement is a byte.
type reason uint8

const (
	fits reason = iota
	notActive
	noAgent
	noCPU
	noMemory
	noPorts
	noPortsUDP
	noENI
	notMemberOf
	notDistinct
)

var reasonText = [...]string{
	notActive:   ReasonInactive,
	noAgent:     ReasonAgent,
	noCPU:       ReasonCPU,
	noMemory:    ReasonMemory,
	noPorts:     ReasonPorts,
	noPortsUDP:  ReasonPortsUDP,
	noENI:       ReasonENI,
	notMemberOf: ReasonMemberOf,
	notDistinct: ReasonDistinctInstance,
}

func (r reason) String() string { return reasonText[r] }

// Fit reports why d does not fit on n, or "" when it does. It checks the
// instance's status and resources only, not placement constraints.
func Fit(n *Node, d *Demand) string {
	return fit(n, d).String()
}

func fit(n *Node, d *Demand) reason {
	switch {
	case !n.Active:
		return notActive
	case !n.AgentConnected:
		return noAgent
	case d.CPU > n.CPU:
		return noCPU
	case d.Memory > n.Memory:
		return noMemory
	case overlaps(d.Ports, n.Ports):
		return noPorts
	case overlaps(d.PortsUDP, n.PortsUDP):
		return noPortsUDP
	case d.ENI > 0 && n.ENI >= 0 && d.ENI > n.ENI:
		return noENI
	}
	return fits
}

// Reserve takes d's resources from n. It appends to n's port slices, so n
// must own them.
func Reserve(n *Node, d *Demand) {
	n.CPU -= d.CPU
	n.Memory -= d.Memory
	n.Ports = append(n.Ports, d.Ports...)
	n.PortsUDP = append(n.PortsUDP, d.PortsUDP...)
	if n.ENI >= 0 {
		n.ENI -= d.ENI
	}
}

func overlaps(want, used []int) bool {
	for _, p := range want {
		if slices.Contains(used, p) {
			return true
		}
	}
	return false
}
