package ecs

import (
	"context"
	"slices"
	"strings"

	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/ecs/state"
	"github.com/wharfhq/wharf/internal/store"
)

// Capacity providers. Wharf has the two that every ECS account has,
// FARGATE and FARGATE_SPOT, served by the hosts that offer Fargate
// capacity (`wharf agent --fargate`). Providers of Auto Scaling groups or
// ECS Managed Instances need an EC2 that Wharf does not have.

var builtinProviders = []string{state.ProviderFargate, state.ProviderFargateSpot}

func (s *Service) builtinProvider(c call, name string) ecsapi.CapacityProvider {
	return ecsapi.CapacityProvider{
		CapacityProviderArn: s.ARN(c, "capacity-provider/"+name),
		Name:                name,
		Status:              ecsapi.CapacityProviderStatusActive,
		Type:                ecsapi.CapacityProviderType(name),
		Tags:                []ecsapi.Tag{},
	}
}

// providerName resolves a capacity provider's name or ARN to a built-in
// provider's name, or "".
func (s *Service) providerName(c call, ref string) string {
	ref = strings.TrimPrefix(ref, s.ARN(c, "capacity-provider/"))
	if slices.Contains(builtinProviders, ref) {
		return ref
	}
	return ""
}

func providerNotFound() error {
	return clientError("The specified capacity provider does not exist. Specify a valid name or ARN and try again.")
}

// DescribeCapacityProviders describes the built-in providers, all of them
// when none is named.
func (s *Service) DescribeCapacityProviders(ctx context.Context, in *ecsapi.DescribeCapacityProvidersRequest) (*ecsapi.DescribeCapacityProvidersResponse, error) {
	c := s.call(ctx)
	limit, err := pageSize(in.MaxResults, 10, 10)
	if err != nil {
		return nil, err
	}
	refs := in.CapacityProviders
	if len(refs) == 0 {
		refs = builtinProviders
	}
	scope := "DescribeCapacityProviders/" + c.Region + "/" + strings.Join(refs, ",")
	pos, err := s.start(scope, in.NextToken)
	if err != nil {
		return nil, err
	}
	out := &ecsapi.DescribeCapacityProvidersResponse{CapacityProviders: []ecsapi.CapacityProvider{}, Failures: []ecsapi.Failure{}}
	first := 0
	if pos != "" {
		first = slices.Index(refs, pos) + 1
	}
	for i := first; i < len(refs); i++ {
		if len(out.CapacityProviders)+len(out.Failures) == limit {
			out.NextToken = s.tokens.Encode(scope, refs[i-1])
			break
		}
		name := s.providerName(c, refs[i])
		if name == "" {
			out.Failures = append(out.Failures, failureOf(refs[i], "MISSING", ""))
			continue
		}
		out.CapacityProviders = append(out.CapacityProviders, s.builtinProvider(c, name))
	}
	return out, nil
}

// CreateCapacityProvider refuses what it cannot serve: Wharf has no Auto
// Scaling groups and no Managed Instances.
func (s *Service) CreateCapacityProvider(ctx context.Context, in *ecsapi.CreateCapacityProviderRequest) (*ecsapi.CreateCapacityProviderResponse, error) {
	lower := strings.ToLower(in.Name)
	for _, p := range []string{"aws", "ecs", "fargate"} {
		if strings.HasPrefix(lower, p) {
			return nil, invalidParameter("The capacity provider name cannot begin with 'aws', 'ecs', or 'fargate'. Specify a different name and try again.")
		}
	}
	if !state.NamePattern.MatchString(in.Name) {
		return nil, invalidParameter("The capacity provider name is invalid. Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed.")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	switch {
	case in.ManagedInstancesProvider != nil:
		return nil, notYet("managedInstancesProvider")
	default:
		return nil, notYet("autoScalingGroupProvider").
			WithHint("Wharf's own capacity providers are FARGATE and FARGATE_SPOT; EC2 capacity is the cluster's container instances")
	}
}

// UpdateCapacityProvider: the built-in providers cannot be changed.
func (s *Service) UpdateCapacityProvider(ctx context.Context, in *ecsapi.UpdateCapacityProviderRequest) (*ecsapi.UpdateCapacityProviderResponse, error) {
	if s.providerName(s.call(ctx), in.Name) != "" {
		return nil, clientError("The specified capacity provider is reserved and cannot be updated.")
	}
	return nil, providerNotFound()
}

// DeleteCapacityProvider: the built-in providers cannot be deleted.
func (s *Service) DeleteCapacityProvider(ctx context.Context, in *ecsapi.DeleteCapacityProviderRequest) (*ecsapi.DeleteCapacityProviderResponse, error) {
	if s.providerName(s.call(ctx), in.CapacityProvider) != "" {
		return nil, clientError("The specified capacity provider is reserved and cannot be deleted.")
	}
	return nil, providerNotFound()
}

// PutClusterCapacityProviders replaces a cluster's providers and default
// strategy. A provider that tasks or services of the cluster still use
// cannot be removed.
func (s *Service) PutClusterCapacityProviders(ctx context.Context, in *ecsapi.PutClusterCapacityProvidersRequest) (*ecsapi.PutClusterCapacityProvidersResponse, error) {
	c := s.call(ctx)
	providers, err := s.checkClusterProviders(c, in.CapacityProviders, in.DefaultCapacityProviderStrategy)
	if err != nil {
		return nil, err
	}
	cl, err := s.updateCluster(ctx, c, in.Cluster, func(tx *store.Tx, r *clusterRecord) error {
		for _, old := range r.CapacityProviders {
			if slices.Contains(providers, old) {
				continue
			}
			inUse, err := providerInUse(tx, c, r.ClusterName, old)
			if err != nil {
				return err
			}
			if inUse {
				return clientCode("ResourceInUseException", "The specified capacity provider is in use and cannot be removed.")
			}
		}
		r.CapacityProviders = providers
		r.DefaultCapacityProviderStrategy = state.Each(in.DefaultCapacityProviderStrategy, state.CapacityProviderStrategyItemFromWire)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ecsapi.PutClusterCapacityProvidersResponse{Cluster: cl}, nil
}

// checkClusterProviders checks a cluster's providers and default strategy,
// and returns the providers by name.
func (s *Service) checkClusterProviders(c call, refs []string, strategy []ecsapi.CapacityProviderStrategyItem) ([]string, error) {
	providers := make([]string, 0, len(refs))
	for _, ref := range refs {
		name := s.providerName(c, ref)
		if name == "" {
			return nil, invalidParameter("The specified capacity provider '%s' is not in an ACTIVE state. Specify a valid capacity provider and try again.", ref)
		}
		if !slices.Contains(providers, name) {
			providers = append(providers, name)
		}
	}
	if err := s.checkStrategy(c, strategy, providers); err != nil {
		return nil, err
	}
	return providers, nil
}

// checkStrategy checks a capacity provider strategy against the providers
// of its cluster, as ECS does.
func (s *Service) checkStrategy(c call, items []ecsapi.CapacityProviderStrategyItem, providers []string) error {
	if len(items) == 0 {
		return nil
	}
	seen := map[string]bool{}
	bases, weighted := 0, false
	for i := range items {
		it := &items[i]
		name := s.providerName(c, it.CapacityProvider)
		if name == "" || !slices.Contains(providers, name) {
			return invalidParameter("The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again.")
		}
		if seen[name] {
			return invalidParameter("The specified capacity provider strategy cannot contain duplicate capacity providers.")
		}
		seen[name] = true
		it.CapacityProvider = name
		if it.Base < 0 || it.Base > 100000 {
			return invalidParameter("The specified capacity provider strategy has an invalid base. The base must be between 0 and 100000.")
		}
		if it.Weight < 0 || it.Weight > 1000 {
			return invalidParameter("The specified capacity provider strategy has an invalid weight. The weight must be between 0 and 1000.")
		}
		if it.Base > 0 {
			bases++
		}
		weighted = weighted || it.Weight > 0
	}
	if bases > 1 {
		return invalidParameter("The specified capacity provider strategy cannot contain more than one capacity provider with a base value greater than zero.")
	}
	if !weighted {
		return invalidParameter("The specified capacity provider strategy must contain at least one capacity provider with a weight greater than zero.")
	}
	return nil
}

// providerInUse reports whether a task not stopped or a service of the
// cluster uses provider.
func providerInUse(tx *store.Tx, c call, cluster, provider string) (bool, error) {
	tasks, err := state.ClusterTasks(tx, c.Keys(), cluster)
	if err != nil {
		return false, err
	}
	for _, t := range tasks {
		if t.LastStatus != "STOPPED" && t.CapacityProviderName == provider {
			return true, nil
		}
	}
	kvs, err := tx.List(c.Keys().Services(cluster))
	if err != nil {
		return false, err
	}
	for _, kv := range kvs {
		var svc serviceRecord
		if err := kv.Decode(&svc); err != nil {
			return false, err
		}
		if svc.Status != "INACTIVE" && state.UsesProvider(svc.CapacityProviderStrategy, provider) {
			return true, nil
		}
	}
	return false, nil
}

// launchPlan is how a launch runs its tasks: its launch type, and for
// Fargate the capacity provider strategy and platform version.
type launchPlan struct {
	launchType      ecsapi.LaunchType
	strategy        []ecsapi.CapacityProviderStrategyItem
	platformVersion string // as the launch gave it, LATEST when it gave none
}

// fargate reports whether the plan runs on Fargate.
func (p launchPlan) fargate() bool { return p.launchType == ecsapi.LaunchTypeFargate }

// providers gives each of n new tasks its capacity provider; have counts
// the tasks each provider already runs for the same group.
func (p launchPlan) providers(have map[string]int, n int) []string {
	return state.SplitStrategy(state.Each(p.strategy, state.CapacityProviderStrategyItemFromWire), have, n)
}
