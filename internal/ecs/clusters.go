package ecs

import (
	"context"
	"strconv"

	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/cloudmap"
	"github.com/wharfhq/wharf/internal/ecs/state"
	"github.com/wharfhq/wharf/internal/store"
)

// CreateCluster creates a cluster, or returns the existing ACTIVE one.
func (s *Service) CreateCluster(ctx context.Context, in *ecsapi.CreateClusterRequest) (*ecsapi.CreateClusterResponse, error) {
	c := s.call(ctx)
	name := in.ClusterName
	if name == "" {
		name = "default"
	}
	if !state.NamePattern.MatchString(name) {
		return nil, invalidParameter("Cluster name %q is invalid: up to 255 letters, numbers, hyphens and underscores are allowed.", name)
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	if err := checkClusterSettings(in.Settings); err != nil {
		return nil, err
	}
	var out clusterRecord
	err := s.Store.Update(ctx, func(tx *store.Tx) error {
		k := c.Keys().Cluster(name)
		var r clusterRecord
		if ok, err := tx.Get(k, &r); err != nil || (ok && r.Status == "ACTIVE") {
			out = r
			return err
		}
		settings := in.Settings
		if len(settings) == 0 {
			settings = []ecsapi.ClusterSetting{{Name: ecsapi.ClusterSettingNameContainerInsights, Value: "disabled"}}
		}
		out = clusterRecord{Cluster: state.ClusterFromWire(&ecsapi.Cluster{
			ClusterArn:                      s.ARN(c, "cluster/"+name),
			ClusterName:                     name,
			Status:                          "ACTIVE",
			Tags:                            in.Tags,
			Settings:                        settings,
			Configuration:                   in.Configuration,
			CapacityProviders:               in.CapacityProviders,
			DefaultCapacityProviderStrategy: in.DefaultCapacityProviderStrategy,
			ServiceConnectDefaults:          serviceConnectDefaults(in.ServiceConnectDefaults),
		})}
		if err := store.MarkRegion(tx, c.Region); err != nil {
			return err
		}
		if err := s.ensureDefaultNamespace(tx, c, &out); err != nil {
			return err
		}
		return tx.Put(k, &out)
	})
	if err != nil {
		return nil, err
	}
	cl := out.Cluster.Wire()
	return &ecsapi.CreateClusterResponse{Cluster: &cl}, nil
}

func serviceConnectDefaults(r *ecsapi.ClusterServiceConnectDefaultsRequest) *ecsapi.ClusterServiceConnectDefaults {
	if r == nil {
		return nil
	}
	return &ecsapi.ClusterServiceConnectDefaults{Namespace: r.Namespace}
}

// ensureDefaultNamespace makes the cluster's Service Connect default
// namespace exist (an HTTP namespace when only named) and records its ARN.
func (s *Service) ensureDefaultNamespace(tx *store.Tx, c call, r *clusterRecord) error {
	if r.ServiceConnectDefaults == nil || r.ServiceConnectDefaults.Namespace == "" {
		return nil
	}
	ns, err := cloudmap.EnsureHTTPNamespace(tx, c.Region, s.Account, r.ServiceConnectDefaults.Namespace, c.Now)
	if cloudmap.IsNoSuchNamespace(err) {
		return clientCode("NamespaceNotFoundException", "Namespace "+r.ServiceConnectDefaults.Namespace+" was not found.")
	}
	if err != nil {
		return err
	}
	r.ServiceConnectDefaults.Namespace = ns.Arn
	return nil
}

func checkClusterSettings(settings []ecsapi.ClusterSetting) error {
	for _, st := range settings {
		if st.Name == ecsapi.ClusterSettingNameContainerInsights && !contains([]string{"enabled", "disabled", "enhanced"}, st.Value) {
			return invalidParameter("containerInsights must be enabled, enhanced or disabled, not %q.", st.Value)
		}
	}
	return nil
}

// DescribeClusters describes clusters, reporting unknown ones as failures.
func (s *Service) DescribeClusters(ctx context.Context, in *ecsapi.DescribeClustersRequest) (*ecsapi.DescribeClustersResponse, error) {
	c := s.call(ctx)
	refs := in.Clusters
	if len(refs) == 0 {
		refs = []string{"default"}
	}
	if len(refs) > 100 {
		return nil, invalidParameter("At most 100 clusters can be described at once.")
	}
	include := map[ecsapi.ClusterField]bool{}
	for _, f := range in.Include {
		include[f] = true
	}
	out := &ecsapi.DescribeClustersResponse{Clusters: []ecsapi.Cluster{}, Failures: []ecsapi.Failure{}}
	for _, ref := range refs {
		name, err := s.ClusterName(c, ref)
		if err != nil {
			out.Failures = append(out.Failures, failureOf(ref, "MISSING", ""))
			continue
		}
		var r clusterRecord
		ok, err := s.Store.Get(ctx, c.Keys().Cluster(name), &r)
		if err != nil {
			return nil, err
		}
		if !ok {
			out.Failures = append(out.Failures, failureOf(s.ARN(c, "cluster/"+name), "MISSING", ""))
			continue
		}
		cl := r.Cluster.Wire()
		if err := s.clusterCounts(ctx, c, &cl, include[ecsapi.ClusterFieldStatistics]); err != nil {
			return nil, err
		}
		if !include[ecsapi.ClusterFieldTags] {
			cl.Tags = nil
		}
		if !include[ecsapi.ClusterFieldSettings] {
			cl.Settings = nil
		}
		if !include[ecsapi.ClusterFieldConfigurations] {
			cl.Configuration = nil
		}
		out.Clusters = append(out.Clusters, cl)
	}
	return out, nil
}

// clusterCounts fills the counts ECS reports on a cluster.
func (s *Service) clusterCounts(ctx context.Context, c call, cl *ecsapi.Cluster, statistics bool) error {
	if cl.Status != "ACTIVE" {
		return nil
	}
	instances, err := s.Store.List(ctx, c.Keys().Instances(cl.ClusterName))
	if err != nil {
		return err
	}
	for _, kv := range instances {
		var r instanceRecord
		if err := kv.Decode(&r); err != nil {
			return err
		}
		if r.Status != "INACTIVE" {
			cl.RegisteredContainerInstancesCount++
		}
	}
	tasks, err := state.ClusterTasks(s.reader(ctx), c.Keys(), cl.ClusterName)
	if err != nil {
		return err
	}
	for _, n := range state.TaskCounts(tasks) {
		cl.PendingTasksCount += n[0]
		cl.RunningTasksCount += n[1]
	}
	services, err := s.Store.List(ctx, c.Keys().Services(cl.ClusterName))
	if err != nil {
		return err
	}
	var draining int32
	for _, kv := range services {
		var r serviceRecord
		if err := kv.Decode(&r); err != nil {
			return err
		}
		switch r.Status {
		case "ACTIVE":
			cl.ActiveServicesCount++
		case "DRAINING":
			draining++
		}
	}
	if statistics {
		stat := func(k string, v int32) ecsapi.KeyValuePair {
			return ecsapi.KeyValuePair{Name: k, Value: strconv.Itoa(int(v))}
		}
		cl.Statistics = []ecsapi.KeyValuePair{
			stat("runningEC2TasksCount", cl.RunningTasksCount),
			stat("runningFargateTasksCount", 0),
			stat("pendingEC2TasksCount", cl.PendingTasksCount),
			stat("pendingFargateTasksCount", 0),
			stat("activeEC2ServiceCount", cl.ActiveServicesCount),
			stat("activeFargateServiceCount", 0),
			stat("drainingEC2ServiceCount", draining),
			stat("drainingFargateServiceCount", 0),
		}
	}
	return nil
}

// ListClusters lists the ARNs of clusters, INACTIVE ones included: as in
// ECS, a deleted cluster stays listed until it is removed, after the
// retention period.
func (s *Service) ListClusters(ctx context.Context, in *ecsapi.ListClustersRequest) (*ecsapi.ListClustersResponse, error) {
	c := s.call(ctx)
	limit, err := pageSize(in.MaxResults, 100, 100)
	if err != nil {
		return nil, err
	}
	scope := "ListClusters/" + c.Region
	after, err := s.start(scope, in.NextToken)
	if err != nil {
		return nil, err
	}
	arns, last, more, err := store.Scan(ctx, s.Store, c.Keys().Clusters(), after, limit, func(kv store.KV) (string, bool, error) {
		var r clusterRecord
		if err := kv.Decode(&r); err != nil {
			return "", false, err
		}
		return r.ClusterArn, true, nil
	})
	if err != nil {
		return nil, err
	}
	if arns == nil {
		arns = []string{}
	}
	return &ecsapi.ListClustersResponse{ClusterArns: arns, NextToken: s.tokens.Next(scope, last, more)}, nil
}

// UpdateCluster changes a cluster's settings, configuration and Service
// Connect defaults.
func (s *Service) UpdateCluster(ctx context.Context, in *ecsapi.UpdateClusterRequest) (*ecsapi.UpdateClusterResponse, error) {
	c := s.call(ctx)
	if err := checkClusterSettings(in.Settings); err != nil {
		return nil, err
	}
	cl, err := s.updateCluster(ctx, c, in.Cluster, func(tx *store.Tx, r *clusterRecord) error {
		r.Settings = mergeSettings(r.Settings, in.Settings)
		if in.Configuration != nil {
			r.Configuration = state.One(in.Configuration, state.ClusterConfigurationFromWire)
		}
		if in.ServiceConnectDefaults != nil {
			r.ServiceConnectDefaults = state.One(serviceConnectDefaults(in.ServiceConnectDefaults), state.ClusterServiceConnectDefaultsFromWire)
		}
		return s.ensureDefaultNamespace(tx, c, r)
	})
	if err != nil {
		return nil, err
	}
	return &ecsapi.UpdateClusterResponse{Cluster: cl}, nil
}

// UpdateClusterSettings changes a cluster's settings.
func (s *Service) UpdateClusterSettings(ctx context.Context, in *ecsapi.UpdateClusterSettingsRequest) (*ecsapi.UpdateClusterSettingsResponse, error) {
	c := s.call(ctx)
	if err := checkClusterSettings(in.Settings); err != nil {
		return nil, err
	}
	cl, err := s.updateCluster(ctx, c, in.Cluster, func(_ *store.Tx, r *clusterRecord) error {
		r.Settings = mergeSettings(r.Settings, in.Settings)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ecsapi.UpdateClusterSettingsResponse{Cluster: cl}, nil
}

func (s *Service) updateCluster(ctx context.Context, c call, ref string, change func(*store.Tx, *clusterRecord) error) (*ecsapi.Cluster, error) {
	var out ecsapi.Cluster
	err := s.Store.Update(ctx, func(tx *store.Tx) error {
		r, err := s.ActiveCluster(tx, c, ref)
		if err != nil {
			return err
		}
		if err := change(tx, r); err != nil {
			return err
		}
		out = r.Cluster.Wire()
		return tx.Put(c.Keys().Cluster(r.ClusterName), r)
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

func mergeSettings(have []state.ClusterSetting, set []ecsapi.ClusterSetting) []state.ClusterSetting {
	out := append([]state.ClusterSetting(nil), have...)
	for _, st := range state.Each(set, state.ClusterSettingFromWire) {
		replaced := false
		for i := range out {
			if out[i].Name == st.Name {
				out[i].Value, replaced = st.Value, true
			}
		}
		if !replaced {
			out = append(out, st)
		}
	}
	return out
}

// DeleteCluster marks an empty cluster INACTIVE. It is refused while the
// cluster has container instances, services or tasks.
func (s *Service) DeleteCluster(ctx context.Context, in *ecsapi.DeleteClusterRequest) (*ecsapi.DeleteClusterResponse, error) {
	c := s.call(ctx)
	var out ecsapi.Cluster
	err := s.Store.Update(ctx, func(tx *store.Tx) error {
		r, err := s.ActiveCluster(tx, c, in.Cluster)
		if err != nil {
			return err
		}
		name := r.ClusterName
		instances, err := tx.List(c.Keys().Instances(name))
		if err != nil {
			return err
		}
		for _, kv := range instances {
			var ir instanceRecord
			if err := kv.Decode(&ir); err != nil {
				return err
			}
			if ir.Status != "INACTIVE" {
				return clientCode("ClusterContainsContainerInstancesException", "The Cluster cannot be deleted while Container Instances are active or draining.").
					WithHint("deregister the container instances of cluster %q with `aws ecs deregister-container-instance` first", name)
			}
		}
		services, err := tx.List(c.Keys().Services(name))
		if err != nil {
			return err
		}
		for _, kv := range services {
			var sr serviceRecord
			if err := kv.Decode(&sr); err != nil {
				return err
			}
			if sr.Status != "INACTIVE" {
				return clientCode("ClusterContainsServicesException", "The Cluster cannot be deleted while Services are active.").
					WithHint("delete the services of cluster %q with `aws ecs delete-service --force` first", name)
			}
		}
		tasks, err := tx.List(c.Keys().Tasks(name))
		if err != nil {
			return err
		}
		for _, kv := range tasks {
			var tr taskRecord
			if err := kv.Decode(&tr); err != nil {
				return err
			}
			if tr.LastStatus != "STOPPED" {
				return clientCode("ClusterContainsTasksException", "The Cluster cannot be deleted while Tasks are active.").
					WithHint("stop the tasks of cluster %q with `aws ecs stop-task` first", name)
			}
		}
		now := c.Now
		r.Status, r.InactiveAt = "INACTIVE", &now
		out = r.Cluster.Wire()
		return tx.Put(c.Keys().Cluster(name), r)
	})
	if err != nil {
		return nil, err
	}
	return &ecsapi.DeleteClusterResponse{Cluster: &out}, nil
}
