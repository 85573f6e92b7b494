package state

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Keys names the store keys of one region's ECS state. The layout:
//
//	ecs/<region>/clusters/<name>
//	ecs/<region>/taskdefs/<family>/<revision, 10 digits>
//	ecs/<region>/families/<family>                  revision counter
//	ecs/<region>/instances/<cluster>/<id>
//	ecs/<region>/ec2/<cluster>/<ec2 instance id>     → container instance id
//	ecs/<region>/tasks/<cluster>/<id>
//	ecs/<region>/placed/<cluster>/<instance id>/<task id>   a task not stopped, by instance
//	ecs/<region>/services/<cluster>/<name>
//	ecs/<region>/service-deployments/<cluster>/<service>/<inverted time>-<id>
//	ecs/<region>/service-revisions/<cluster>/<service>/<id>
//	ecs/<region>/settings/<hex principal>/<name>
//	ecs/<region>/idempotency/<op>/<scope>/<hex token>
//	ecs/<region>/ipam/<address>                      → the task that holds it
//	heartbeats/<region>/<cluster>/<instance id>      an agent's session, under its lease
//
// Prefix methods (plural names) end in a slash, so that a listing takes
// no key of a longer name.
type Keys struct{ Region string }

// Prefix is where all ECS state lives.
const Prefix = "ecs/"

func (k Keys) key(parts ...string) string {
	return Prefix + k.Region + "/" + strings.Join(parts, "/")
}

func (k Keys) prefix(parts ...string) string { return k.key(parts...) + "/" }

func (k Keys) Cluster(name string) string { return k.key("clusters", name) }
func (k Keys) Clusters() string           { return k.prefix("clusters") }

// TaskDef is a task definition revision's key; revisions are padded so that
// key order is revision order.
func (k Keys) TaskDef(family string, revision int) string {
	return k.key("taskdefs", family, fmt.Sprintf("%010d", revision))
}

// TaskDefRevision is TaskDef for a revision given as in an ARN; a revision
// that is not a number names no stored revision.
func (k Keys) TaskDefRevision(family, revision string) string {
	n, err := strconv.Atoi(revision)
	if err != nil {
		return k.key("taskdefs", family, revision)
	}
	return k.TaskDef(family, n)
}

// TaskDefs is the prefix of a family's revisions, or of every family's
// for "".
func (k Keys) TaskDefs(family string) string {
	if family == "" {
		return k.prefix("taskdefs")
	}
	return k.prefix("taskdefs", family)
}

func (k Keys) Family(family string) string { return k.key("families", family) }
func (k Keys) Families() string            { return k.prefix("families") }

func (k Keys) Instance(cluster, id string) string { return k.key("instances", cluster, id) }

// Instances is the prefix of a cluster's container instances, or of every
// cluster's for "".
func (k Keys) Instances(cluster string) string { return k.scoped("instances", cluster) }

func (k Keys) EC2(cluster, ec2ID string) string { return k.key("ec2", cluster, ec2ID) }

func (k Keys) Task(cluster, id string) string { return k.key("tasks", cluster, id) }

// Tasks is the prefix of a cluster's tasks, or of every cluster's for "".
func (k Keys) Tasks(cluster string) string { return k.scoped("tasks", cluster) }

func (k Keys) Placed(cluster, instanceID, taskID string) string {
	return k.key("placed", cluster, instanceID, taskID)
}

// PlacedOn is the prefix of the tasks placed on an instance and not
// stopped.
func (k Keys) PlacedOn(cluster, instanceID string) string {
	return k.prefix("placed", cluster, instanceID)
}

func (k Keys) Service(cluster, name string) string { return k.key("services", cluster, name) }

// Services is the prefix of a cluster's services, or of every cluster's
// for "".
func (k Keys) Services(cluster string) string { return k.scoped("services", cluster) }

// ServiceDeployment is a service deployment's key: its inverted creation
// time makes key order newest first.
func (k Keys) ServiceDeployment(cluster, service string, created time.Time, id string) string {
	return k.key("service-deployments", cluster, service, fmt.Sprintf("%019d-%s", int64(1<<62)-created.UnixNano(), id))
}

// ServiceDeployments is the prefix of a service's service deployments, or
// of every service's for "".
func (k Keys) ServiceDeployments(cluster, service string) string {
	if cluster == "" {
		return k.prefix("service-deployments")
	}
	return k.prefix("service-deployments", cluster, service)
}

func (k Keys) ServiceRevision(cluster, service, id string) string {
	return k.key("service-revisions", cluster, service, id)
}
func (k Keys) ServiceRevisions() string { return k.prefix("service-revisions") }

func (k Keys) Setting(principal, name string) string {
	return k.key("settings", fmt.Sprintf("%x", principal), name)
}

func (k Keys) Idempotency(op, scope, token string) string {
	return k.key("idempotency", op, scope, hex.EncodeToString([]byte(token)))
}
func (k Keys) Idempotencies() string { return k.prefix("idempotency") }

// Address is the key that holds an awsvpc address for its task.
func (k Keys) Address(ip string) string { return k.key("ipam", ip) }

func (k Keys) scoped(kind, cluster string) string {
	if cluster == "" {
		return k.prefix(kind)
	}
	return k.prefix(kind, cluster)
}

// HeartbeatPrefix is where agents' sessions live, outside the ECS prefix:
// they are under leases, and the service scheduler does not follow them.
const HeartbeatPrefix = "heartbeats/"

// HeartbeatRecord is what an agent's session key holds.
type HeartbeatRecord struct {
	Since time.Time `json:"since"`
}

// Heartbeat is the key of an instance's agent session.
func (k Keys) Heartbeat(cluster, instanceID string) string {
	return HeartbeatPrefix + k.Region + "/" + cluster + "/" + instanceID
}

// ClusterOf returns the region and cluster of a key of a cluster's
// instances, tasks or services: the changes the service scheduler follows.
func ClusterOf(key string) (region, cluster string, ok bool) {
	parts := strings.SplitN(key, "/", 5)
	if len(parts) < 4 || parts[0]+"/" != Prefix {
		return "", "", false
	}
	switch parts[2] {
	case "services", "tasks", "instances":
		return parts[1], parts[3], true
	}
	return "", "", false
}
