package state

import (
	"slices"
	"strings"

	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/scheduler"
	"github.com/wharfhq/wharf/internal/store"
)

// FargatePool is the scope of the hosts that offer Fargate capacity. Their
// container instances live under it as under a cluster, but it is no
// cluster: cluster names cannot hold its "~", so no user's cluster lists,
// counts or places on them. Fargate tasks stay in their users' clusters
// and point at the pool host they run on.
const FargatePool = "~fargate"

// The built-in capacity providers, which every cluster may use.
const (
	ProviderFargate     = "FARGATE"
	ProviderFargateSpot = "FARGATE_SPOT"
)

// FargatePlatformVersion is the platform version Fargate tasks run on, and
// what LATEST resolves to.
const FargatePlatformVersion = "1.4.0"

// FargateDefaultStorageGiB is a Fargate task's ephemeral storage when its
// definition asks for none.
const FargateDefaultStorageGiB = 20

// Attributes a pool host registers with.
const (
	// AttrSandbox names the kind of sandbox a host runs Fargate tasks in;
	// a Fargate task carries it too.
	AttrSandbox = "wharf.sandbox"
)

// FargateCapacityUnavailable is Fargate's reason for a task it has no room
// for.
const FargateCapacityUnavailable = "Capacity is unavailable at this time. Please try again later or in a different availability zone"

func poolCluster(s *State, c Scope) *ClusterRecord {
	return &ClusterRecord{Cluster: Cluster{ClusterName: FargatePool, ClusterArn: s.ARN(c, "cluster/"+FargatePool), Status: "ACTIVE"}}
}

// OnPool reports whether a container instance ARN is a pool host's.
func (s *State) OnPool(c Scope, instanceArn string) bool {
	return strings.HasPrefix(instanceArn, s.ARN(c, "container-instance/"+FargatePool+"/"))
}

// SplitStrategy gives each of n new tasks its capacity provider by a
// strategy as ECS splits it: the item with a base gets tasks until it runs
// that many, then the providers share the rest in proportion to their
// weights. have counts the tasks each provider runs already. Without a
// strategy, every task goes to FARGATE.
func SplitStrategy(items []CapacityProviderStrategyItem, have map[string]int, n int) []string {
	if len(items) == 0 {
		return slices.Repeat([]string{ProviderFargate}, n)
	}
	counts := map[string]int{}
	for k, v := range have {
		counts[k] = v
	}
	out := make([]string, 0, n)
	for range n {
		pick := ""
		for _, it := range items {
			if it.Base > 0 && counts[it.CapacityProvider] < int(it.Base) {
				pick = it.CapacityProvider
			}
		}
		if pick == "" {
			// The provider furthest below its share of the tasks beyond
			// the base: the least (count-base+1)/weight.
			best := 0.0
			for _, it := range items {
				if it.Weight <= 0 {
					continue
				}
				score := float64(counts[it.CapacityProvider]-int(it.Base)+1) / float64(it.Weight)
				if pick == "" || score < best {
					pick, best = it.CapacityProvider, score
				}
			}
		}
		counts[pick]++
		out = append(out, pick)
	}
	return out
}

// PlaceFargate creates tasks of l on the Fargate pool, one per provider in
// providers, spread over the pool's availability zones, and returns them
// with how many found no room. clusterTasks are the tasks of l's cluster,
// whose spread the placement continues.
func (s *State) PlaceFargate(tx *store.Tx, c Scope, l *Launch, d scheduler.Demand, providers []string, clusterTasks []*TaskRecord) ([]*TaskRecord, int, error) {
	if len(providers) == 0 {
		return nil, 0, nil
	}
	instances, err := ClusterInstances(tx, c.Keys(), FargatePool)
	if err != nil {
		return nil, 0, err
	}
	td := WireTD(l.TD)
	if rp := td.RuntimePlatform; rp != nil && rp.OperatingSystemFamily != "" && rp.OperatingSystemFamily != ecsapi.OSFamilyLinux {
		return nil, len(providers), nil
	}
	arch := "x86_64"
	if rp := td.RuntimePlatform; rp != nil && rp.CpuArchitecture == ecsapi.CPUArchitectureArm64 {
		arch = "arm64"
	}
	// Fargate places by size and architecture alone.
	req := &scheduler.Request{Demand: d, Count: len(providers), Group: l.Group}
	req.Constraints = []scheduler.Constraint{{Type: "memberOf", Expression: "attribute:ecs.cpu-architecture == " + arch}}
	req.Strategies = []scheduler.Strategy{{Type: "spread", Field: "attribute:ecs.availability-zone"}}
	res, err := scheduler.Place(Nodes(instances, clusterTasks), req)
	if err != nil {
		return nil, 0, err
	}
	var out []*TaskRecord
	for i, idx := range res.Chosen {
		fl := *l
		fl.CapacityProvider = providers[i]
		t, err := s.NewTask(tx, c, &fl, instances[idx], d)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, t)
	}
	return out, len(providers) - len(out), nil
}

// ProviderCounts counts the tasks of a group that have not stopped by
// capacity provider.
func ProviderCounts(tasks []*TaskRecord, group string) map[string]int {
	out := map[string]int{}
	for _, t := range tasks {
		if t.Group == group && t.DesiredStatus == "RUNNING" && t.CapacityProviderName != "" {
			out[t.CapacityProviderName]++
		}
	}
	return out
}

// UsesProvider reports whether a task or service strategy names provider.
func UsesProvider(items []CapacityProviderStrategyItem, provider string) bool {
	return slices.ContainsFunc(items, func(it CapacityProviderStrategyItem) bool { return it.CapacityProvider == provider })
}

// fargateFields gives a Fargate task what ECS shows for one.
func fargateFields(t *TaskRecord, l *Launch, td *ecsapi.TaskDefinition, host *InstanceRecord) {
	t.CapacityProviderName = l.CapacityProvider
	t.PlatformVersion = FargatePlatformVersion
	t.PlatformFamily = "Linux"
	size := int32(FargateDefaultStorageGiB)
	if td.EphemeralStorage != nil && td.EphemeralStorage.SizeInGiB > 0 {
		size = td.EphemeralStorage.SizeInGiB
	}
	t.EphemeralStorage = &EphemeralStorage{SizeInGiB: size}
	if kind, ok := AttributeValue(host.Attributes, AttrSandbox); ok {
		t.Attributes = append(t.Attributes, Attribute{Name: AttrSandbox, Value: kind})
	}
}

// Wire is the task as ECS shows it: a Fargate task names no container
// instance.
func (t *TaskRecord) Wire() ecsapi.Task {
	w := t.Task.Wire()
	if t.LaunchType == ecsapi.LaunchTypeFargate {
		w.ContainerInstanceArn = ""
	}
	return w
}
