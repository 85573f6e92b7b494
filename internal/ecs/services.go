package ecs

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"

	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/cloudmap"
	"github.com/wharfhq/wharf/internal/ecs/state"
	"github.com/wharfhq/wharf/internal/store"
)

// serviceName resolves a service reference (name or ARN) within a cluster.
func (s *Service) serviceName(c call, cluster, ref string) (string, error) {
	if state.IsARN(ref) {
		res, ok := s.ResourceOf(c, ref)
		rest, isSvc := strings.CutPrefix(res, "service/")
		if !ok || !isSvc {
			return "", invalidParameter("%q is not a service ARN of account %s in region %s.", ref, s.Account, c.Region)
		}
		if cl, name, ok := strings.Cut(rest, "/"); ok {
			if cl != cluster {
				return "", invalidParameter("Service %q belongs to cluster %q, not %q.", ref, cl, cluster)
			}
			rest = name
		}
		ref = rest
	}
	if !state.NamePattern.MatchString(ref) {
		return "", invalidParameter("Service name %q is invalid: up to 255 letters, numbers, hyphens and underscores are allowed.", ref)
	}
	return ref, nil
}

func newDeploymentID() string {
	return fmt.Sprintf("ecs-svc/%019d", rand.Int64N(8e18)+1e18)
}

func (s *Service) newDeployment(c call, svc *ecsapi.Service) ecsapi.Deployment {
	id := newDeploymentID()
	now := c.Time()
	var sc *ecsapi.ServiceConnectConfiguration
	if svc.Deployments != nil {
		sc = svc.Deployments[0].ServiceConnectConfiguration
	}
	return ecsapi.Deployment{
		Id:                          id,
		Status:                      "PRIMARY",
		TaskDefinition:              svc.TaskDefinition,
		DesiredCount:                svc.DesiredCount,
		CreatedAt:                   now,
		UpdatedAt:                   now,
		LaunchType:                  svc.LaunchType,
		CapacityProviderStrategy:    svc.CapacityProviderStrategy,
		PlatformVersion:             svc.PlatformVersion,
		PlatformFamily:              svc.PlatformFamily,
		NetworkConfiguration:        svc.NetworkConfiguration,
		ServiceConnectConfiguration: sc,
		RolloutState:                ecsapi.DeploymentRolloutStateInProgress,
		RolloutStateReason:          "ECS deployment " + id + " in progress.",
	}
}

// What a DAEMON service refuses: it runs one task per container instance.
const (
	daemonNoStrategy     = "Placement strategies are not supported with the DAEMON scheduling strategy: it runs one task per container instance."
	daemonNoDesiredCount = "desiredCount cannot be given for a service with the DAEMON scheduling strategy: it runs one task per container instance."
)

func defaultDeploymentConfiguration(dc *ecsapi.DeploymentConfiguration, daemon bool) (*ecsapi.DeploymentConfiguration, error) {
	out := &ecsapi.DeploymentConfiguration{}
	if dc != nil {
		*out = *dc
	}
	if out.MaximumPercent == nil {
		out.MaximumPercent = ptr(int32(200))
		if daemon {
			out.MaximumPercent = ptr(int32(100))
		}
	}
	if out.MinimumHealthyPercent == nil {
		out.MinimumHealthyPercent = ptr(int32(100))
		if daemon {
			out.MinimumHealthyPercent = ptr(int32(0))
		}
	}
	if out.DeploymentCircuitBreaker == nil {
		out.DeploymentCircuitBreaker = &ecsapi.DeploymentCircuitBreaker{}
	}
	if *out.MinimumHealthyPercent < 0 || *out.MinimumHealthyPercent > 100 {
		return nil, invalidParameter("minimumHealthyPercent must be between 0 and 100, not %d.", *out.MinimumHealthyPercent)
	}
	if *out.MaximumPercent < 100 && *out.MaximumPercent <= *out.MinimumHealthyPercent {
		return nil, invalidParameter("maximumPercent (%d) must be above minimumHealthyPercent (%d), or at least 100, so that a deployment can make progress.", *out.MaximumPercent, *out.MinimumHealthyPercent)
	}
	return out, nil
}

// CreateService creates a service and its first deployment.
func (s *Service) CreateService(ctx context.Context, in *ecsapi.CreateServiceRequest) (*ecsapi.CreateServiceResponse, error) {
	c := s.call(ctx)
	if !state.NamePattern.MatchString(in.ServiceName) {
		return nil, invalidParameter("Service name %q is invalid: up to 255 letters, numbers, hyphens and underscores are allowed.", in.ServiceName)
	}
	if len(in.ClientToken) > 36 {
		return nil, invalidParameter("clientToken can be at most 36 characters.")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	if err := checkPlacement(in.PlacementConstraints, in.PlacementStrategy); err != nil {
		return nil, err
	}
	daemon := in.SchedulingStrategy == ecsapi.SchedulingStrategyDaemon
	desired := deref(in.DesiredCount)
	if desired < 0 {
		return nil, invalidParameter("desiredCount must not be negative.")
	}
	if daemon && len(in.PlacementStrategy) > 0 {
		return nil, invalidParameter(daemonNoStrategy)
	}
	if daemon && in.DesiredCount != nil {
		return nil, invalidParameter(daemonNoDesiredCount)
	}
	dc, err := defaultDeploymentConfiguration(in.DeploymentConfiguration, daemon)
	if err != nil {
		return nil, err
	}
	if err := checkServiceSupport(serviceAsks{
		loadBalancers: in.LoadBalancers, deployment: in.DeploymentConfiguration, controller: in.DeploymentController,
		managedTags: in.EnableECSManagedTags, execute: in.EnableExecuteCommand, volumes: in.VolumeConfigurations, lattice: in.VpcLatticeConfigurations,
	}); err != nil {
		return nil, err
	}
	controller := in.DeploymentController
	if controller == nil {
		controller = &ecsapi.DeploymentController{Type: ecsapi.DeploymentControllerTypeEcs}
	}
	request := *in
	request.ClientToken = ""
	var out ecsapi.Service
	err = s.Store.Update(ctx, func(tx *store.Tx) error {
		cl, err := s.ActiveCluster(tx, c, in.Cluster)
		if err != nil {
			return err
		}
		replayed, record, err := s.remember(tx, c, "CreateService", cl.ClusterName, in.ClientToken, &request, &out)
		if err != nil || replayed {
			return err
		}
		k := c.Keys().Service(cl.ClusterName, in.ServiceName)
		var existing serviceRecord
		if ok, err := tx.Get(k, &existing); err != nil {
			return err
		} else if ok && existing.Status != "INACTIVE" {
			return invalidParameter("Creation of service was not idempotent.").
				WithHint("service %q already exists in cluster %q; change it with `aws ecs update-service`", in.ServiceName, cl.ClusterName)
		}
		td, err := s.FindTaskDef(tx, c, in.TaskDefinition)
		if err != nil {
			return err
		}
		if td.Status != ecsapi.TaskDefinitionStatusActive {
			return clientError("TaskDefinition is inactive").
				WithHint("%s was deregistered; register a new revision for the service", td.TaskDefinitionArn)
		}
		if err := s.checkRegistries(tx, c, in.ServiceRegistries, state.WireTD(td)); err != nil {
			return err
		}
		plan, err := s.planLaunch(c, cl, in.LaunchType, in.CapacityProviderStrategy, in.PlatformVersion, state.WireTD(td))
		if err != nil {
			return err
		}
		if err := checkNetworkConfiguration(in.NetworkConfiguration, state.WireTD(td)); err != nil {
			return err
		}
		launchType, platformFamily := plan.launchType, ""
		if plan.fargate() {
			if err := checkFargateLaunch(in.NetworkConfiguration, in.PlacementConstraints, in.PlacementStrategy); err != nil {
				return err
			}
			platformFamily = "Linux"
			if len(plan.strategy) > 0 {
				launchType = ""
			}
		}
		if err := checkStartable(state.WireTD(td)); err != nil {
			return err
		}
		scheduling := in.SchedulingStrategy
		if scheduling == "" {
			scheduling = ecsapi.SchedulingStrategyReplica
		}
		propagate := in.PropagateTags
		if propagate == "" {
			propagate = ecsapi.PropagateTagsNone
		}
		w := &ecsapi.Service{
			ServiceArn:                    s.ARN(c, "service/"+cl.ClusterName+"/"+in.ServiceName),
			ServiceName:                   in.ServiceName,
			ClusterArn:                    cl.ClusterArn,
			LoadBalancers:                 emptyIfNil(in.LoadBalancers),
			ServiceRegistries:             emptyIfNil(in.ServiceRegistries),
			Status:                        "ACTIVE",
			DesiredCount:                  desired,
			LaunchType:                    launchType,
			CapacityProviderStrategy:      emptyIfNil(plan.strategy),
			PlatformVersion:               plan.platformVersion,
			PlatformFamily:                platformFamily,
			TaskDefinition:                td.TaskDefinitionArn,
			DeploymentConfiguration:       dc,
			RoleArn:                       in.Role,
			Events:                        []ecsapi.ServiceEvent{},
			CreatedAt:                     c.Time(),
			PlacementConstraints:          emptyIfNil(in.PlacementConstraints),
			PlacementStrategy:             emptyIfNil(in.PlacementStrategy),
			NetworkConfiguration:          in.NetworkConfiguration,
			HealthCheckGracePeriodSeconds: in.HealthCheckGracePeriodSeconds,
			SchedulingStrategy:            scheduling,
			DeploymentController:          controller,
			Tags:                          in.Tags,
			CreatedBy:                     s.principal(),
			EnableECSManagedTags:          in.EnableECSManagedTags,
			PropagateTags:                 propagate,
			EnableExecuteCommand:          in.EnableExecuteCommand,
			AvailabilityZoneRebalancing:   orDefaultEnum(in.AvailabilityZoneRebalancing, ecsapi.AvailabilityZoneRebalancingDisabled),
		}
		d := s.newDeployment(c, w)
		d.ServiceConnectConfiguration, d.ServiceConnectResources, err = s.serviceConnect(tx, c, cl, in.Tags, in.ServiceConnectConfiguration, state.WireTD(td))
		if err != nil {
			return err
		}
		d.VolumeConfigurations = in.VolumeConfigurations
		w.Deployments = []ecsapi.Deployment{d}
		svc := &serviceRecord{Service: state.ServiceFromWire(w)}
		svc.SetMutualTLS(d.Id, state.MutualTLS(svc.Deployments[0].ServiceConnectConfiguration, svc.Tags))
		if err := s.StartServiceDeployment(tx, c, svc, cl.ClusterName, state.WireTD(td), nil); err != nil {
			return err
		}
		out = svc.Service.Wire()
		if err := tx.Put(k, svc); err != nil {
			return err
		}
		return record()
	})
	if err != nil {
		return nil, err
	}
	return &ecsapi.CreateServiceResponse{Service: &out}, nil
}

func emptyIfNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

func orDefaultEnum[T ~string](v, def T) T {
	if v == "" {
		return def
	}
	return v
}

// activeService reads an ACTIVE service and its cluster inside tx, and
// returns the service's key.
func (s *Service) activeService(tx *store.Tx, c call, cluster, ref string) (*clusterRecord, *serviceRecord, string, error) {
	cl, err := s.ActiveCluster(tx, c, cluster)
	if err != nil {
		return nil, nil, "", err
	}
	name, err := s.serviceName(c, cl.ClusterName, ref)
	if err != nil {
		return nil, nil, "", err
	}
	k := c.Keys().Service(cl.ClusterName, name)
	svc, err := state.Get[serviceRecord](tx, k)
	switch {
	case err != nil:
		return nil, nil, "", err
	case svc == nil:
		return nil, nil, "", serviceNotFound(name)
	case svc.Status != "ACTIVE":
		return nil, nil, "", serviceNotActive(name)
	}
	return cl, svc, k, nil
}

// UpdateService changes a service. Changes to what its tasks run start a
// new deployment; a new desiredCount alone does not.
func (s *Service) UpdateService(ctx context.Context, in *ecsapi.UpdateServiceRequest) (*ecsapi.UpdateServiceResponse, error) {
	c := s.call(ctx)
	if in.DesiredCount != nil && *in.DesiredCount < 0 {
		return nil, invalidParameter("desiredCount must not be negative.")
	}
	if err := checkPlacement(in.PlacementConstraints, in.PlacementStrategy); err != nil {
		return nil, err
	}
	if err := checkServiceSupport(serviceAsks{
		loadBalancers: in.LoadBalancers, deployment: in.DeploymentConfiguration, controller: in.DeploymentController,
		managedTags: deref(in.EnableECSManagedTags), execute: deref(in.EnableExecuteCommand), volumes: in.VolumeConfigurations, lattice: in.VpcLatticeConfigurations,
	}); err != nil {
		return nil, err
	}
	var out ecsapi.Service
	var rec *serviceRecord
	err := s.Store.Update(ctx, func(tx *store.Tx) error {
		cl, svc, k, err := s.activeService(tx, c, in.Cluster, in.Service)
		if err != nil {
			return err
		}
		w := svc.Service.Wire()
		deploy := in.ForceNewDeployment
		if in.TaskDefinition != "" {
			td, err := s.FindTaskDef(tx, c, in.TaskDefinition)
			if err != nil {
				return err
			}
			if td.Status != ecsapi.TaskDefinitionStatusActive {
				return clientError("TaskDefinition is inactive").
					WithHint("%s was deregistered; register a new revision for the service", td.TaskDefinitionArn)
			}
			deploy = deploy || td.TaskDefinitionArn != w.TaskDefinition
			w.TaskDefinition = td.TaskDefinitionArn
		}
		if in.DeploymentConfiguration != nil {
			dc := *w.DeploymentConfiguration
			merged := mergeDeploymentConfiguration(&dc, in.DeploymentConfiguration)
			if _, err := defaultDeploymentConfiguration(merged, w.SchedulingStrategy == ecsapi.SchedulingStrategyDaemon); err != nil {
				return err
			}
			w.DeploymentConfiguration = merged
		}
		changed := func(have, want any) bool { return !reflect.DeepEqual(have, want) }
		if in.NetworkConfiguration != nil && changed(w.NetworkConfiguration, in.NetworkConfiguration) {
			w.NetworkConfiguration, deploy = in.NetworkConfiguration, true
		}
		if in.PlacementConstraints != nil && changed(w.PlacementConstraints, in.PlacementConstraints) {
			w.PlacementConstraints, deploy = in.PlacementConstraints, true
		}
		if in.PlacementStrategy != nil && changed(w.PlacementStrategy, in.PlacementStrategy) {
			if w.SchedulingStrategy == ecsapi.SchedulingStrategyDaemon && len(in.PlacementStrategy) > 0 {
				return invalidParameter(daemonNoStrategy)
			}
			w.PlacementStrategy, deploy = in.PlacementStrategy, true
		}
		if in.PlatformVersion != "" && w.LaunchType == ecsapi.LaunchTypeEc2 {
			return invalidParameter("The platform version must be null when specifying an EC2 launch type.")
		}
		if in.PlatformVersion != "" && in.PlatformVersion != w.PlatformVersion {
			w.PlatformVersion, deploy = in.PlatformVersion, true
		}
		if in.CapacityProviderStrategy != nil && changed(w.CapacityProviderStrategy, in.CapacityProviderStrategy) {
			if w.LaunchType == ecsapi.LaunchTypeEc2 || w.LaunchType == ecsapi.LaunchTypeExternal {
				return invalidParameter("Updating a service from launch type %s to a capacity provider strategy is not supported. Create a new service instead.", w.LaunchType)
			}
			w.CapacityProviderStrategy, deploy = in.CapacityProviderStrategy, true
			if len(w.CapacityProviderStrategy) > 0 {
				w.LaunchType = ""
			} else {
				w.LaunchType = ecsapi.LaunchTypeFargate
			}
		}
		if in.LoadBalancers != nil && changed(w.LoadBalancers, in.LoadBalancers) {
			w.LoadBalancers, deploy = in.LoadBalancers, true
		}
		if in.ServiceRegistries != nil && changed(w.ServiceRegistries, in.ServiceRegistries) {
			w.ServiceRegistries, deploy = in.ServiceRegistries, true
		}
		if in.ServiceRegistries != nil || in.TaskDefinition != "" || in.NetworkConfiguration != nil || in.CapacityProviderStrategy != nil || in.PlatformVersion != "" {
			td, err := s.FindTaskDef(tx, c, w.TaskDefinition)
			if err != nil {
				return err
			}
			if err := s.checkRegistries(tx, c, w.ServiceRegistries, state.WireTD(td)); err != nil {
				return err
			}
			plan, err := s.planLaunch(c, cl, w.LaunchType, w.CapacityProviderStrategy, w.PlatformVersion, state.WireTD(td))
			if err != nil {
				return err
			}
			if err := checkNetworkConfiguration(w.NetworkConfiguration, state.WireTD(td)); err != nil {
				return err
			}
			if plan.fargate() {
				if err := checkFargateLaunch(w.NetworkConfiguration, w.PlacementConstraints, w.PlacementStrategy); err != nil {
					return err
				}
				w.CapacityProviderStrategy = emptyIfNil(plan.strategy)
			}
			if err := checkStartable(state.WireTD(td)); err != nil {
				return err
			}
		}
		sc := w.Deployments[0].ServiceConnectConfiguration
		if in.ServiceConnectConfiguration != nil && changed(sc, in.ServiceConnectConfiguration) {
			sc, deploy = in.ServiceConnectConfiguration, true
		}
		volumes := w.Deployments[0].VolumeConfigurations
		if in.VolumeConfigurations != nil && changed(volumes, in.VolumeConfigurations) {
			volumes, deploy = in.VolumeConfigurations, true
		}
		if in.HealthCheckGracePeriodSeconds != nil {
			w.HealthCheckGracePeriodSeconds = in.HealthCheckGracePeriodSeconds
		}
		if in.EnableExecuteCommand != nil {
			w.EnableExecuteCommand = *in.EnableExecuteCommand
		}
		if in.EnableECSManagedTags != nil {
			w.EnableECSManagedTags = *in.EnableECSManagedTags
		}
		if in.PropagateTags != "" {
			w.PropagateTags = in.PropagateTags
		}
		if in.AvailabilityZoneRebalancing != "" {
			w.AvailabilityZoneRebalancing = in.AvailabilityZoneRebalancing
		}
		if in.DesiredCount != nil {
			if w.SchedulingStrategy == ecsapi.SchedulingStrategyDaemon {
				return invalidParameter(daemonNoDesiredCount)
			}
			w.DesiredCount = *in.DesiredCount
		}
		if deploy {
			for i := range w.Deployments {
				w.Deployments[i].Status = "ACTIVE"
			}
			d := s.newDeployment(c, &w)
			td, err := s.FindTaskDef(tx, c, w.TaskDefinition)
			if err != nil {
				return err
			}
			if d.ServiceConnectConfiguration, d.ServiceConnectResources, err = s.serviceConnect(tx, c, cl, w.Tags, sc, state.WireTD(td)); err != nil {
				return err
			}
			d.VolumeConfigurations = volumes
			w.Deployments = append([]ecsapi.Deployment{d}, w.Deployments...)

			svc.Service = state.ServiceFromWire(&w)
			svc.SetMutualTLS(d.Id, state.MutualTLS(svc.Deployments[0].ServiceConnectConfiguration, svc.Tags))
			tasks, err := state.ClusterTasks(s.reader(ctx), c.Keys(), cl.ClusterName)
			if err != nil {
				return err
			}
			if err := s.StartServiceDeployment(tx, c, svc, cl.ClusterName, state.WireTD(td), tasks); err != nil {
				return err
			}
		} else {
			w.Deployments[0].DesiredCount = w.DesiredCount
			w.Deployments[0].UpdatedAt = c.Time()
			svc.Service = state.ServiceFromWire(&w)
		}
		out, rec = svc.Service.Wire(), svc
		return tx.Put(k, svc)
	})
	if err != nil {
		return nil, err
	}
	if err := s.serviceCounts(ctx, c, &out, rec); err != nil {
		return nil, err
	}
	return &ecsapi.UpdateServiceResponse{Service: &out}, nil
}

func mergeDeploymentConfiguration(have, set *ecsapi.DeploymentConfiguration) *ecsapi.DeploymentConfiguration {
	out := *have
	if set.MaximumPercent != nil {
		out.MaximumPercent = set.MaximumPercent
	}
	if set.MinimumHealthyPercent != nil {
		out.MinimumHealthyPercent = set.MinimumHealthyPercent
	}
	if set.DeploymentCircuitBreaker != nil {
		out.DeploymentCircuitBreaker = set.DeploymentCircuitBreaker
	}
	if set.Alarms != nil {
		out.Alarms = set.Alarms
	}
	if set.Strategy != "" {
		out.Strategy = set.Strategy
	}
	if set.BakeTimeInMinutes != nil {
		out.BakeTimeInMinutes = set.BakeTimeInMinutes
	}
	return &out
}

// DeleteService starts deleting a service: it goes DRAINING, and INACTIVE
// once none of its tasks runs.
func (s *Service) DeleteService(ctx context.Context, in *ecsapi.DeleteServiceRequest) (*ecsapi.DeleteServiceResponse, error) {
	c := s.call(ctx)
	var out ecsapi.Service
	err := s.Store.Update(ctx, func(tx *store.Tx) error {
		cl, svc, k, err := s.activeService(tx, c, in.Cluster, in.Service)
		if err != nil {
			return err
		}
		if svc.DesiredCount > 0 && !deref(in.Force) && svc.SchedulingStrategy != ecsapi.SchedulingStrategyDaemon {
			return invalidParameter("The service cannot be stopped while it is scaled above 0.").
				WithHint("scale %q to 0 with `aws ecs update-service --desired-count 0`, or delete it with --force", svc.ServiceName)
		}
		svc.Status, svc.DesiredCount = "DRAINING", 0
		for i := range svc.Deployments {
			svc.Deployments[i].DesiredCount = 0
		}
		live, err := s.ServiceHasTasks(tx, c, cl.ClusterName, svc.ServiceName)
		if err != nil {
			return err
		}
		if !live {
			s.Retire(c, svc)
		}
		out = svc.Service.Wire()
		return tx.Put(k, svc)
	})
	if err != nil {
		return nil, err
	}
	return &ecsapi.DeleteServiceResponse{Service: &out}, nil
}

// serviceCounts fills a service's and its deployments' task counts from
// its tasks (a deployment's failed tasks count from rec.CountFrom[id] on),
// and the current service revisions' counts.
func (s *Service) serviceCounts(ctx context.Context, c call, svc *ecsapi.Service, rec *serviceRecord) error {
	countFrom := rec.CountFrom
	cluster := strings.TrimPrefix(svc.ClusterArn, s.ARN(c, "cluster/"))
	kvs, err := s.Store.List(ctx, c.Keys().Tasks(cluster))
	if err != nil {
		return err
	}
	svc.RunningCount, svc.PendingCount = 0, 0
	byDeployment := map[string]*ecsapi.Deployment{}
	for i := range svc.Deployments {
		d := &svc.Deployments[i]
		d.RunningCount, d.PendingCount, d.FailedTasks = 0, 0, 0
		byDeployment[d.Id] = d
	}
	for _, kv := range kvs {
		var t taskRecord
		if err := kv.Decode(&t); err != nil {
			return err
		}
		if t.Service != svc.ServiceName {
			continue
		}
		d := byDeployment[t.StartedBy]
		if d != nil && t.LastStatus == "STOPPED" && (t.StopCode == ecsapi.TaskStopCodeTaskFailedToStart || t.StopCode == ecsapi.TaskStopCodeEssentialContainerExited || t.FailedHealth) &&
			(t.StoppedAt == nil || !t.StoppedAt.Before(countFrom[d.Id])) {
			d.FailedTasks++
		}
		if t.DesiredStatus != "RUNNING" {
			continue
		}
		pending, running := state.Counted(t.LastStatus)
		if running {
			svc.RunningCount++
			if d != nil {
				d.RunningCount++
			}
		}
		if pending {
			svc.PendingCount++
			if d != nil {
				d.PendingCount++
			}
		}
	}
	svc.CurrentServiceRevisions = nil
	for _, d := range svc.Deployments {
		if arn := rec.Revisions[d.Id]; arn != "" {
			sum := ecsapi.ServiceCurrentRevisionSummary{Arn: arn, RunningTaskCount: d.RunningCount, PendingTaskCount: d.PendingCount}
			if d.Status == "PRIMARY" {
				sum.RequestedTaskCount = svc.DesiredCount
			}
			svc.CurrentServiceRevisions = append(svc.CurrentServiceRevisions, sum)
		}
	}
	return nil
}

// DescribeServices describes services, reporting unknown ones as failures.
func (s *Service) DescribeServices(ctx context.Context, in *ecsapi.DescribeServicesRequest) (*ecsapi.DescribeServicesResponse, error) {
	c := s.call(ctx)
	if len(in.Services) > 10 {
		return nil, invalidParameter("At most 10 services can be described at once.")
	}
	cluster, err := s.ExistingCluster(s.reader(ctx), c, in.Cluster, false)
	if err != nil {
		return nil, err
	}
	out := &ecsapi.DescribeServicesResponse{Services: []ecsapi.Service{}, Failures: []ecsapi.Failure{}}
	for _, ref := range in.Services {
		name, err := s.serviceName(c, cluster, ref)
		if err != nil {
			out.Failures = append(out.Failures, failureOf(ref, "MISSING", ""))
			continue
		}
		var svc serviceRecord
		ok, err := s.Store.Get(ctx, c.Keys().Service(cluster, name), &svc)
		if err != nil {
			return nil, err
		}
		if !ok {
			// ECS names a missing service by the ARN it was given, or by
			// the short form service/NAME, without the cluster.
			arn := ref
			if !state.IsARN(ref) {
				arn = s.ARN(c, "service/"+name)
			}
			out.Failures = append(out.Failures, failureOf(arn, "MISSING", ""))
			continue
		}
		v := svc.Service.Wire()
		if err := s.serviceCounts(ctx, c, &v, &svc); err != nil {
			return nil, err
		}
		if !contains(in.Include, ecsapi.ServiceFieldTags) {
			v.Tags = nil
		}
		out.Services = append(out.Services, v)
	}
	return out, nil
}

// ListServices lists the ARNs of a cluster's services that are not
// INACTIVE.
func (s *Service) ListServices(ctx context.Context, in *ecsapi.ListServicesRequest) (*ecsapi.ListServicesResponse, error) {
	c := s.call(ctx)
	limit, err := pageSize(in.MaxResults, 10, 100)
	if err != nil {
		return nil, err
	}
	cluster, err := s.ExistingCluster(s.reader(ctx), c, in.Cluster, true)
	if err != nil {
		return nil, err
	}
	scope := fmt.Sprintf("ListServices/%s/%s/%s/%s/%s", c.Region, cluster, in.LaunchType, in.SchedulingStrategy, in.ResourceManagementType)
	after, err := s.start(scope, in.NextToken)
	if err != nil {
		return nil, err
	}
	arns, last, more, err := store.Scan(ctx, s.Store, c.Keys().Services(cluster), after, limit, func(kv store.KV) (string, bool, error) {
		var svc serviceRecord
		if err := kv.Decode(&svc); err != nil {
			return "", false, err
		}
		ok := svc.Status != "INACTIVE" &&
			(in.LaunchType == "" || svc.LaunchType == in.LaunchType) &&
			(in.SchedulingStrategy == "" || svc.SchedulingStrategy == in.SchedulingStrategy)
		return svc.ServiceArn, ok, nil
	})
	if err != nil {
		return nil, err
	}
	if arns == nil {
		arns = []string{}
	}
	return &ecsapi.ListServicesResponse{ServiceArns: arns, NextToken: s.tokens.Next(scope, last, more)}, nil
}

// ListServicesByNamespace lists the services whose Service Connect
// configuration uses a namespace.
func (s *Service) ListServicesByNamespace(ctx context.Context, in *ecsapi.ListServicesByNamespaceRequest) (*ecsapi.ListServicesByNamespaceResponse, error) {
	c := s.call(ctx)
	limit, err := pageSize(in.MaxResults, 10, 100)
	if err != nil {
		return nil, err
	}
	scope := "ListServicesByNamespace/" + c.Region + "/" + in.Namespace
	after, err := s.start(scope, in.NextToken)
	if err != nil {
		return nil, err
	}
	// The namespace may be named; deployments record its ARN.
	var nsArn string
	err = s.Store.Update(ctx, func(tx *store.Tx) error {
		ns, err := cloudmap.FindNamespace(tx, c.Region, in.Namespace)
		if ns != nil {
			nsArn = ns.Arn
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if nsArn == "" {
		return nil, clientCode("NamespaceNotFoundException", "Namespace "+in.Namespace+" was not found.")
	}
	arns, last, more, err := store.Scan(ctx, s.Store, c.Keys().Services(""), after, limit, func(kv store.KV) (string, bool, error) {
		var svc serviceRecord
		if err := json.Unmarshal(kv.Value, &svc); err != nil {
			return "", false, err
		}
		if svc.Status == "INACTIVE" || len(svc.Deployments) == 0 {
			return "", false, nil
		}
		sc := svc.Deployments[0].ServiceConnectConfiguration
		ok := sc != nil && sc.Enabled && (sc.Namespace == nsArn || sc.Namespace == in.Namespace)
		return svc.ServiceArn, ok, nil
	})
	if err != nil {
		return nil, err
	}
	if arns == nil {
		arns = []string{}
	}
	return &ecsapi.ListServicesByNamespaceResponse{ServiceArns: arns, NextToken: s.tokens.Next(scope, last, more)}, nil
}
