package scheduler

import "testing"

func TestFit(t *testing.T) {
	base := Node{ID: "n", Active: true, AgentConnected: true, CPU: 1024, Memory: 512, Ports: []int{22, 8080}, PortsUDP: []int{53}}
	for _, tc := range []struct {
		name string
		node func(*Node)
		d    Demand
		want string
	}{
		{"fits", nil, Demand{CPU: 1024, Memory: 512, Ports: []int{80}}, ""},
		{"cpu", nil, Demand{CPU: 1025}, ReasonCPU},
		{"memory", nil, Demand{Memory: 513}, ReasonMemory},
		{"cpu before memory", nil, Demand{CPU: 2048, Memory: 2048}, ReasonCPU},
		{"tcp port", nil, Demand{Ports: []int{8080}}, ReasonPorts},
		{"udp port", nil, Demand{PortsUDP: []int{53}}, ReasonPortsUDP},
		{"udp and tcp apart", nil, Demand{PortsUDP: []int{8080}}, ""},
		{"eni", func(n *Node) { n.ENI = 0 }, Demand{ENI: 1}, ReasonENI},
		{"eni unlimited", func(n *Node) { n.ENI = -1 }, Demand{ENI: 1}, ""},
		{"draining", func(n *Node) { n.Active = false }, Demand{}, ReasonInactive},
		{"draining before agent", func(n *Node) { n.Active, n.AgentConnected = false, false }, Demand{}, ReasonInactive},
		{"disconnected", func(n *Node) { n.AgentConnected = false }, Demand{}, ReasonAgent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := base
			if tc.node != nil {
				tc.node(&n)
			}
			if got := Fit(&n, &tc.d); got != tc.want {
				t.Fatalf("Fit = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReserve(t *testing.T) {
	n := Node{CPU: 1024, Memory: 512, ENI: 2, Ports: []int{22}}
	Reserve(&n, &Demand{CPU: 256, Memory: 128, ENI: 1, Ports: []int{80}, PortsUDP: []int{53}})
	if n.CPU != 768 || n.Memory != 384 || n.ENI != 1 || len(n.Ports) != 2 || n.Ports[1] != 80 || len(n.PortsUDP) != 1 {
		t.Fatalf("after Reserve: %+v", n)
	}
	unlimited := Node{ENI: -1}
	Reserve(&unlimited, &Demand{ENI: 1})
	if unlimited.ENI != -1 {
		t.Fatalf("unlimited ENI became %d", unlimited.ENI)
	}
}
