package state

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"

	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/store"
)

// State is what the ECS state's changes need besides a transaction: the
// store, the account every ARN is in, and the range awsvpc tasks get their
// addresses from.
type State struct {
	Store   *store.Store
	Account string
	Subnet  netip.Prefix

	clusters sync.Map // region/cluster → *sync.Mutex, see Serialize
}

func (s *State) ARN(c Scope, resource string) string {
	return "arn:aws:ecs:" + c.Region + ":" + s.Account + ":" + resource
}

// ResourceOf returns the resource part of an ECS ARN of this account and
// the caller's region, or ok=false when s is not such an ARN.
func (s *State) ResourceOf(c Scope, s2 string) (resource string, ok bool) {
	prefix := "arn:aws:ecs:" + c.Region + ":" + s.Account + ":"
	if !strings.HasPrefix(s2, prefix) {
		return "", false
	}
	return strings.TrimPrefix(s2, prefix), true
}

func IsARN(s string) bool { return strings.HasPrefix(s, "arn:") }

// ScopedID resolves a reference to a cluster's task or container instance
// (kind "task" or "container-instance"): an ARN in the long form
// kind/cluster/id or the short form kind/id, or the bare 32-hex-digit id.
func (s *State) ScopedID(c Scope, kind, cluster, ref string) (string, bool) {
	if IsARN(ref) {
		res, ok := s.ResourceOf(c, ref)
		rest, isKind := strings.CutPrefix(res, kind+"/")
		if !ok || !isKind {
			return "", false
		}
		if cl, id, ok := strings.Cut(rest, "/"); ok {
			if cl != cluster {
				return "", false
			}
			rest = id
		}
		ref = rest
	}
	if len(ref) != 32 || strings.Trim(ref, "0123456789abcdef") != "" {
		return "", false
	}
	return ref, true
}

// NewID returns 32 hex digits, the form of task and container instance ids.
func NewID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// NewUUID returns a random RFC 4122 UUID, the form of container ids.
func NewUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

var NamePattern = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,255}$`)

// FindTaskDef reads the task definition ref names: a given revision, or the
// latest ACTIVE revision of a family.
func (s *State) FindTaskDef(r Reader, c Scope, ref string) (*TaskDefRecord, error) {
	family, rev, err := s.TaskDefRef(c, ref)
	if err != nil {
		return nil, err
	}
	missing := NotFound(KindTaskDefinition, ref, fmt.Sprintf("task definition %q does not exist; register it with `aws ecs register-task-definition`", ref))
	var td TaskDefRecord
	if rev > 0 {
		ok, err := r.Get(c.Keys().TaskDef(family, rev), &td)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, missing
		}
		return &td, nil
	}
	kvs, err := r.List(c.Keys().TaskDefs(family))
	if err != nil {
		return nil, err
	}
	for i := len(kvs) - 1; i >= 0; i-- {
		if err := kvs[i].Decode(&td); err != nil {
			return nil, err
		}
		if td.Status == ecsapi.TaskDefinitionStatusActive {
			return &td, nil
		}
	}
	return nil, missing
}

// TaskDefRef splits a task definition reference (family, family:revision or
// ARN) into family and revision (0 when absent).
func (s *State) TaskDefRef(c Scope, ref string) (family string, rev int, err error) {
	if ref == "" {
		return "", 0, Invalid(KindTaskDefinition, ref, "A task definition must be given as family, family:revision or ARN.")
	}
	if IsARN(ref) {
		res, ok := s.ResourceOf(c, ref)
		rest, isTD := strings.CutPrefix(res, "task-definition/")
		if !ok || !isTD {
			return "", 0, Invalid(KindTaskDefinition, ref, fmt.Sprintf("%q is not a task definition ARN of account %s in region %s.", ref, s.Account, c.Region))
		}
		ref = rest
	}
	family, revStr, hasRev := strings.Cut(ref, ":")
	if !NamePattern.MatchString(family) {
		return "", 0, Invalid(KindTaskDefinition, ref, fmt.Sprintf("Task definition family %q is invalid.", family))
	}
	if hasRev {
		rev, err = strconv.Atoi(revStr)
		if err != nil || rev < 1 {
			return "", 0, Invalid(KindTaskDefinition, ref, fmt.Sprintf("Task definition revision %q is invalid: it must be a positive number.", revStr))
		}
	}
	return family, rev, nil
}

func (s *State) InstanceKey(c Scope, arn string) string {
	res, _ := s.ResourceOf(c, arn)
	return c.Keys().Instance(split(strings.TrimPrefix(res, "container-instance/")))
}

// FindInstance reads a container instance; nil when it does not exist.
func (s *State) FindInstance(r Reader, c Scope, cluster, ref string) (*InstanceRecord, error) {
	id, ok := s.ScopedID(c, "container-instance", cluster, ref)
	if !ok {
		return nil, nil
	}
	return Get[InstanceRecord](r, c.Keys().Instance(cluster, id))
}

func AttributeValue(attrs []Attribute, name string) (string, bool) {
	for _, a := range attrs {
		if a.Name == name {
			return a.Value, true
		}
	}
	return "", false
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// Each converts every element of a list, between stored and wire shapes.
func Each[T, U any](in []T, f func(*T) U) []U {
	if in == nil {
		return nil
	}
	out := make([]U, len(in))
	for i := range in {
		out[i] = f(&in[i])
	}
	return out
}

// One converts what p points to, between stored and wire shapes; nil
// stays nil.
func One[T, U any](p *T, f func(*T) U) *U {
	if p == nil {
		return nil
	}
	v := f(p)
	return &v
}

// WireTD is a task definition revision in its wire shape.
func WireTD(td *TaskDefRecord) *ecsapi.TaskDefinition {
	w := td.TaskDefinition.Wire()
	return &w
}

// split cuts a "cluster/name" resource path in two.
func split(path string) (cluster, name string) {
	cluster, name, _ = strings.Cut(path, "/")
	return cluster, name
}

// MergeTags adds or replaces tags by key.
func MergeTags(have []Tag, add []ecsapi.Tag) []Tag {
	out := append([]Tag(nil), have...)
	for _, t := range TagsFromWire(add) {
		replaced := false
		for i := range out {
			if out[i].Key == t.Key {
				out[i].Value, replaced = t.Value, true
			}
		}
		if !replaced {
			out = append(out, t)
		}
	}
	return out
}

// ClusterName resolves a cluster reference (name, ARN or empty for
// "default") to a name.
func (s *State) ClusterName(c Scope, ref string) (string, error) {
	if ref == "" {
		return "default", nil
	}
	if IsARN(ref) {
		res, ok := s.ResourceOf(c, ref)
		name, isCluster := strings.CutPrefix(res, "cluster/")
		if !ok || !isCluster {
			return "", Invalid(KindCluster, ref, fmt.Sprintf("%q is not a cluster ARN of account %s in region %s.", ref, s.Account, c.Region))
		}
		ref = name
	}
	if !NamePattern.MatchString(ref) && ref != FargatePool {
		return "", Invalid(KindCluster, ref, fmt.Sprintf("Cluster name %q is invalid: up to 255 letters, numbers, hyphens and underscores are allowed.", ref))
	}
	return ref, nil
}

// ActiveCluster reads a cluster inside tx and fails unless it is ACTIVE.
func (s *State) ActiveCluster(r Reader, c Scope, ref string) (*ClusterRecord, error) {
	name, err := s.ClusterName(c, ref)
	if err != nil {
		return nil, err
	}
	if name == FargatePool {
		return poolCluster(s, c), nil
	}
	var cl ClusterRecord
	ok, err := r.Get(c.Keys().Cluster(name), &cl)
	if err != nil {
		return nil, err
	}
	if !ok || cl.Status != "ACTIVE" {
		return nil, clusterNotFound(name)
	}
	return &cl, nil
}

// ExistingCluster resolves a cluster reference outside a transaction and
// checks that the cluster exists (and, with active, that it is ACTIVE).
func (s *State) ExistingCluster(r Reader, c Scope, ref string, active bool) (string, error) {
	name, err := s.ClusterName(c, ref)
	if err != nil {
		return "", err
	}
	if name == FargatePool {
		return name, nil
	}
	var cl ClusterRecord
	ok, err := r.Get(c.Keys().Cluster(name), &cl)
	if err != nil {
		return "", err
	}
	if !ok || active && cl.Status != "ACTIVE" {
		return "", clusterNotFound(name)
	}
	return name, nil
}

// Serialize makes this server's writes to one cluster's tasks and instances
// take turns. They mostly change the same instance records; queueing here
// is cheaper than retrying conflicts in etcd, whose compares still guard
// against other servers. The returned function releases the turn.
func (s *State) Serialize(c Scope, ref string) func() {
	name, err := s.ClusterName(c, ref)
	if err != nil {
		return func() {}
	}
	m, _ := s.clusters.LoadOrStore(c.Region+"/"+name, new(sync.Mutex))
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

func clusterNotFound(name string) *Error {
	return NotFound(KindCluster, name, fmt.Sprintf("no cluster named %q exists in this region; create it with `aws ecs create-cluster --cluster-name %s`", name, name))
}
