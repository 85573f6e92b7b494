package ecs

import (
	"testing"

	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/ecs/state"
)

func TestTaskSizes(t *testing.T) {
	for _, tc := range []struct {
		in, cpu, mem string
		bad          bool
	}{
		{in: "1024", cpu: "1024", mem: "1024"},
		{in: "1 vCPU", cpu: "1024"},
		{in: ".25 vcpu", cpu: "256"},
		{in: "2GB", mem: "2048"},
		{in: "0.5 GB", mem: "512"},
		{in: "lots", bad: true},
	} {
		if tc.cpu != "" || tc.bad {
			got, err := taskCPU(tc.in)
			if (err != nil) != tc.bad || !tc.bad && got != tc.cpu {
				t.Errorf("taskCPU(%q) = %q, %v", tc.in, got, err)
			}
		}
		if tc.mem != "" || tc.bad {
			got, err := taskMemory(tc.in)
			if (err != nil) != tc.bad || !tc.bad && got != tc.mem {
				t.Errorf("taskMemory(%q) = %q, %v", tc.in, got, err)
			}
		}
	}
}

func TestFargateSizes(t *testing.T) {
	for _, tc := range []struct {
		cpu, mem int
		ok       bool
	}{
		{256, 512, true}, {256, 4096, false}, {512, 3072, true}, {1024, 9216, false},
		{4096, 30720, true}, {8192, 20480, true}, {8192, 18432, false}, {16384, 122880, true}, {300, 1024, false},
	} {
		if got := fargateSize(tc.cpu, tc.mem); got != tc.ok {
			t.Errorf("fargateSize(%d, %d) = %v", tc.cpu, tc.mem, got)
		}
	}
}

func TestDemand(t *testing.T) {
	td := &ecsapi.TaskDefinition{
		NetworkMode: ecsapi.NetworkModeBridge,
		ContainerDefinitions: []ecsapi.ContainerDefinition{
			{Name: "a", Cpu: 100, Memory: ptr(int32(256)), MemoryReservation: ptr(int32(128)),
				PortMappings: []ecsapi.PortMapping{{ContainerPort: ptr(int32(80)), HostPort: ptr(int32(8080))}, {ContainerPort: ptr(int32(53)), HostPort: ptr(int32(53)), Protocol: ecsapi.TransportProtocolUdp}, {ContainerPort: ptr(int32(90))}}},
			{Name: "b", Cpu: 50, Memory: ptr(int32(64))},
		},
	}
	d := state.DemandOf(td, nil)
	if d.CPU != 150 || d.Memory != 192 || len(d.Ports) != 1 || d.Ports[0] != 8080 || len(d.PortsUDP) != 1 {
		t.Fatalf("demand %+v", d)
	}
	d = state.DemandOf(td, &ecsapi.TaskOverride{ContainerOverrides: []ecsapi.ContainerOverride{{Name: "b", Cpu: ptr(int32(500)), MemoryReservation: ptr(int32(32))}}})
	if d.CPU != 600 || d.Memory != 160 {
		t.Fatalf("demand with overrides %+v", d)
	}
	td.Cpu, td.Memory = "1024", "2048"
	if d := state.DemandOf(td, nil); d.CPU != 1024 || d.Memory != 2048 {
		t.Fatalf("task-level sizes ignored: %+v", d)
	}
	td.NetworkMode = ecsapi.NetworkModeAwsvpc
	if d := state.DemandOf(td, nil); len(d.Ports) != 0 {
		t.Fatalf("awsvpc tasks reserve host ports: %+v", d)
	}
}

func TestDependencyCycle(t *testing.T) {
	dep := func(name string, on ...string) ecsapi.ContainerDefinition {
		cd := ecsapi.ContainerDefinition{Name: name}
		for _, o := range on {
			cd.DependsOn = append(cd.DependsOn, ecsapi.ContainerDependency{ContainerName: o})
		}
		return cd
	}
	if c := dependencyCycle([]ecsapi.ContainerDefinition{dep("a", "b"), dep("b", "c"), dep("c")}); c != "" {
		t.Fatalf("chain reported as cycle %q", c)
	}
	if c := dependencyCycle([]ecsapi.ContainerDefinition{dep("a", "b"), dep("b", "c"), dep("c", "a")}); c != "a -> b -> c -> a" {
		t.Fatalf("cycle %q", c)
	}
}
