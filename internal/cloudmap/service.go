package cloudmap

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"time"

	sd "github.com/wharfhq/wharf/internal/api/servicediscovery"
	"github.com/wharfhq/wharf/internal/awsproto"
	"github.com/wharfhq/wharf/internal/store"
)

// Config configures the Cloud Map service.
type Config struct {
	Store *store.Store
	// Account is the 12-digit account id in ARNs.
	Account string
	// DefaultRegion serves calls that carry no signed region (in-process
	// callers). Default us-east-1.
	DefaultRegion string
	// TokenKey signs pagination tokens; servers sharing a store must share
	// it. Empty means one is kept in the store.
	TokenKey []byte
	// CheckableSubnets are the addresses besides loopback that health checks
	// (HealthCheckConfig) may contact: the ones Wharf manages. Instances at
	// any other address are never contacted and keep their health. Default
	// 10.88.0.0/16, the awsvpc subnet.
	CheckableSubnets []netip.Prefix
	// HealthCheckInterval is how often each instance of a service with a
	// HealthCheckConfig is checked. Default 10 s.
	HealthCheckInterval time.Duration
	// Retention is how long finished operations stay readable, and how long
	// a CreatorRequestId is remembered. Default 24 h.
	Retention time.Duration
	Logger    *slog.Logger
	Now       func() time.Time
}

// Service implements the Cloud Map API.
type Service struct {
	st        *store.Store
	account   string
	region    string
	tokens    *awsproto.Tokens
	checkable []netip.Prefix
	interval  time.Duration
	retention time.Duration
	log       *slog.Logger
	now       func() time.Time

	// health holds the health checker's consecutive results, by instance.
	healthMu sync.Mutex
	health   map[string]*streak

	// discovered caches services' decoded instances by revision, and
	// catalogs the regions' namespaces and services for a moment, for
	// DiscoverInstances.
	discovered sync.Map // region/service id → *discovered
	catalogs   sync.Map // region → *catalog
}

var _ sd.API = (*Service)(nil)

// New returns the Cloud Map service over cfg.Store. Run does its
// background work.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("cloudmap: no store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DefaultRegion == "" {
		cfg.DefaultRegion = "us-east-1"
	}
	if !regexp.MustCompile(`^\d{12}$`).MatchString(cfg.Account) {
		return nil, fmt.Errorf("account id %q must be 12 digits", cfg.Account)
	}
	if cfg.CheckableSubnets == nil {
		cfg.CheckableSubnets = []netip.Prefix{netip.MustParsePrefix("10.88.0.0/16")}
	}
	if cfg.HealthCheckInterval <= 0 {
		cfg.HealthCheckInterval = 10 * time.Second
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 24 * time.Hour
	}
	key := cfg.TokenKey
	if len(key) == 0 {
		var err error
		if key, err = cfg.Store.SharedKey(ctx, "config/pagination-key"); err != nil {
			return nil, err
		}
	}
	checkable := make([]netip.Prefix, len(cfg.CheckableSubnets))
	for i, p := range cfg.CheckableSubnets {
		checkable[i] = p.Masked()
	}
	return &Service{
		st:        cfg.Store,
		account:   cfg.Account,
		region:    cfg.DefaultRegion,
		tokens:    awsproto.NewTokens(key),
		checkable: checkable,
		interval:  cfg.HealthCheckInterval,
		retention: cfg.Retention,
		log:       cfg.Logger,
		now:       cfg.Now,
		health:    map[string]*streak{},
	}, nil
}

// Run does the background work until ctx ends: it runs submitted
// operations, checks the health of instances of services with a
// HealthCheckConfig, and removes expired operations. Several servers may
// run it at once: operations are claimed in transactions and one elected
// server checks health.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { s.runOperations(ctx) })
	wg.Go(func() { s.runHealthChecks(ctx) })
	wg.Go(func() { s.runSweeper(ctx) })
	wg.Wait()
}

// call holds what every operation needs to know about its caller.
type call struct {
	region string
	now    time.Time
}

func (s *Service) call(ctx context.Context) call {
	return call{region: awsproto.RegionOf(ctx, s.region), now: s.now().UTC()}
}

func (s *Service) arn(c call, resource string) string {
	return "arn:aws:servicediscovery:" + c.region + ":" + s.account + ":" + resource
}

// resolveID accepts the id of a namespace or service (kind "namespace" or
// "service"), or its ARN in the caller's account and region, and returns
// the id; ok is false for an ARN of another kind, account or region.
func (s *Service) resolveID(c call, kind, ref string) (id string, ok bool) {
	if !strings.HasPrefix(ref, "arn:") {
		return ref, true
	}
	k, id, ok := s.parseARN(c, ref)
	return id, ok && k == kind
}

// parseARN splits a Cloud Map ARN of this account and the caller's region
// into its resource kind and id.
func (s *Service) parseARN(c call, arn string) (kind, id string, ok bool) {
	rest, ok := strings.CutPrefix(arn, "arn:aws:servicediscovery:"+c.region+":"+s.account+":")
	if !ok {
		return "", "", false
	}
	kind, id, ok = strings.Cut(rest, "/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", "", false
	}
	return kind, id, true
}

// Resource ids as Cloud Map forms them.

const (
	lowerAlnum = "abcdefghijklmnopqrstuvwxyz0123456789"
	upperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
)

func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func newNamespaceID() string  { return "ns-" + randomString(16, lowerAlnum) }
func newServiceID() string    { return "srv-" + randomString(16, lowerAlnum) }
func newHostedZoneID() string { return "Z" + randomString(13, upperAlnum) }
func newOperationID() string {
	return randomString(32, lowerAlnum) + "-" + randomString(8, lowerAlnum)
}

// hashOf is a short stable digest of v's JSON encoding.
func hashOf(v ...any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// getRecord reads key into a new T inside tx; nil when it does not exist.
func getRecord[T any](tx *store.Tx, key string) (*T, error) {
	v := new(T)
	found, err := tx.Get(key, v)
	if err != nil || !found {
		return nil, err
	}
	return v, nil
}

func ptr[T any](v T) *T { return &v }
