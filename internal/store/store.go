// Package store keeps Wharf's state in etcd: an embedded single-member etcd
// by default or an external cluster, with every write a compare-and-swap
// transaction over the revisions it read.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3rpc"
	"go.etcd.io/etcd/server/v3/proxy/grpcproxy/adapter"
	"go.uber.org/zap"
)

// ErrNotLeader is returned by a fenced transaction after its leadership
// was lost.
var ErrNotLeader = errors.New("store: leadership lost")

// ErrConflict is returned when a transaction kept losing races to other
// writers and gave up.
var ErrConflict = errors.New("store: too many concurrent updates, try again")

// Config says which etcd to use.
type Config struct {
	// Endpoints of an external etcd cluster. Empty means start an embedded
	// single-member etcd under DataDir.
	Endpoints []string
	// DataDir holds the embedded etcd's data.
	DataDir string
	// Prefix is prepended to every key; it lets several Wharf installations
	// share one etcd. Default "/wharf".
	Prefix string
	// DialTimeout bounds connecting to etcd. Default 10 s.
	DialTimeout time.Duration
	Logger      *slog.Logger
}

// Store is a handle on Wharf's etcd.
type Store struct {
	cli      *clientv3.Client
	embedded *embed.Etcd
	prefix   string
	log      *slog.Logger
	// watch is Watch; Follow's tests replace it with watches that fail.
	watch func(ctx context.Context, prefix string, from int64) (<-chan Event, <-chan error)
}

// Open connects to etcd, starting the embedded one first when no endpoints
// are configured.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "/wharf"
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	s := &Store{prefix: strings.TrimSuffix(cfg.Prefix, "/"), log: cfg.Logger}
	s.watch = s.Watch
	endpoints := cfg.Endpoints
	if len(endpoints) == 0 {
		e, err := startEmbedded(ctx, cfg.DataDir)
		if err != nil {
			return nil, err
		}
		s.embedded = e
		endpoints = []string{e.Clients[0].Addr().String()}
		cfg.Logger.Info("embedded etcd ready", "data_dir", cfg.DataDir, "etcd_endpoint", endpoints[0])
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            endpoints,
		DialTimeout:          cfg.DialTimeout,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		Logger:               zap.NewNop(),
		Context:              context.Background(),
	})
	if err != nil {
		s.closeEmbedded()
		return nil, fmt.Errorf("connect to etcd %v: %w", endpoints, err)
	}
	if s.embedded != nil {
		// Reads and writes call the embedded etcd in process, without
		// sockets or gRPC. Watches and leases keep the network client: the
		// in-process watch adapter can deadlock under many concurrent
		// watches (etcd-io/etcd#18879).
		cli.KV = clientv3.NewKVFromKVClient(adapter.KvServerToKvClient(v3rpc.NewQuotaKVServer(s.embedded.Server)), cli)
	}
	s.cli = cli
	// Fail fast with a clear message when the cluster cannot be reached.
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if _, err := cli.Get(pctx, s.prefix+"/"); err != nil {
		s.Close()
		return nil, fmt.Errorf("etcd %v not reachable (check --etcd-endpoints and that a quorum is up): %w", endpoints, err)
	}
	return s, nil
}

func startEmbedded(ctx context.Context, dir string) (*embed.Etcd, error) {
	if dir == "" {
		return nil, errors.New("store: embedded etcd needs a data directory")
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Name = "wharf"
	cfg.Dir = filepath.Join(dir, "etcd")
	cfg.LogLevel = "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	client := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", ports[0])}
	peer := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", ports[1])}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.AutoCompactionMode = embed.CompactorModePeriodic
	cfg.AutoCompactionRetention = "1h"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: %w", cfg.Dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, errors.New("embedded etcd did not become ready within 60s")
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
}

func freePorts(n int) ([]string, error) {
	var ports []string
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a port for embedded etcd: %w", err)
		}
		ls = append(ls, l)
		_, p, _ := net.SplitHostPort(l.Addr().String())
		ports = append(ports, p)
	}
	return ports, nil
}

// Close disconnects and stops the embedded etcd, if any.
func (s *Store) Close() error {
	var err error
	if s.cli != nil {
		err = s.cli.Close()
	}
	s.closeEmbedded()
	return err
}

func (s *Store) closeEmbedded() {
	if s.embedded != nil {
		s.embedded.Close()
		s.embedded = nil
	}
}

// Client is the underlying etcd client, for leases, watches and elections.
func (s *Store) Client() *clientv3.Client { return s.cli }

// Key returns the full etcd key of a store key.
func (s *Store) Key(key string) string { return s.prefix + "/" + strings.TrimPrefix(key, "/") }

// Get reads one object into v; found is false when the key does not exist.
func (s *Store) Get(ctx context.Context, key string, v any) (found bool, err error) {
	resp, err := s.cli.Get(ctx, s.Key(key))
	if err != nil {
		return false, fmt.Errorf("get %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return false, nil
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, v); err != nil {
		return false, fmt.Errorf("decode %s: %w", key, err)
	}
	return true, nil
}

// KV is one key and its raw JSON value.
type KV struct {
	Key   string // store key, without the prefix
	Value []byte
}

// Decode decodes the value into v, naming the key if it cannot.
func (kv KV) Decode(v any) error {
	if err := json.Unmarshal(kv.Value, v); err != nil {
		return fmt.Errorf("decode %s: %w", kv.Key, err)
	}
	return nil
}

// Page lists keys under prefix in key order, starting after the key after
// (empty for the beginning), at most limit of them (0 for all).
func (s *Store) Page(ctx context.Context, prefix, after string, limit int) ([]KV, bool, error) {
	full := s.Key(prefix)
	start := full
	if after != "" {
		start = s.Key(after) + "\x00"
	}
	opts := []clientv3.OpOption{clientv3.WithRange(clientv3.GetPrefixRangeEnd(full)), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(limit)))
	}
	resp, err := s.cli.Get(ctx, start, opts...)
	if err != nil {
		return nil, false, fmt.Errorf("list %s: %w", prefix, err)
	}
	kvs := make([]KV, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		kvs[i] = KV{Key: strings.TrimPrefix(string(kv.Key), s.prefix+"/"), Value: kv.Value}
	}
	return kvs, resp.More, nil
}

// List returns every key under prefix.
func (s *Store) List(ctx context.Context, prefix string) ([]KV, error) {
	kvs, _, err := s.Page(ctx, prefix, "", 0)
	return kvs, err
}

// Count returns how many keys are under prefix.
func (s *Store) Count(ctx context.Context, prefix string) (int64, error) {
	full := s.Key(prefix)
	resp, err := s.cli.Get(ctx, full, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", prefix, err)
	}
	return resp.Count, nil
}

// Update runs fn in a transaction and commits its writes only if nothing it
// read has changed since; otherwise it runs fn again on fresh data, for up
// to 15 seconds before giving up with ErrConflict. fn must
// have no effects outside tx, since it may run several times. An error from
// fn aborts the transaction and is returned as is.
func (s *Store) Update(ctx context.Context, fn func(tx *Tx) error) error {
	backoff := time.Millisecond
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		tx := &Tx{s: s, ctx: ctx, reads: map[string]int64{}, ranges: map[string]bool{}, listed: map[string]int64{}, writes: map[string][]byte{}}
		if err := fn(tx); err != nil {
			return err
		}
		ok, err := tx.commit()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		for _, l := range tx.fences {
			select {
			case <-l.Done:
				return ErrNotLeader
			default:
			}
		}
		sleep := backoff/2 + rand.N(backoff)
		select {
		case <-time.After(sleep):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(backoff*2, 50*time.Millisecond)
	}
	return ErrConflict
}

// Tx is a read-compare-write transaction. Reads see one snapshot of the
// store plus the transaction's own writes.
type Tx struct {
	s      *Store
	ctx    context.Context
	rev    int64            // snapshot revision, fixed by the first read
	reads  map[string]int64 // full key → mod revision read (0: absent)
	ranges map[string]bool  // full prefixes read
	listed map[string]int64 // full key → mod revision seen by List
	fences []*Leadership
	writes map[string][]byte
}

var deleted = []byte(nil)

func (tx *Tx) get(full string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	if tx.rev != 0 {
		opts = append(opts, clientv3.WithRev(tx.rev))
	}
	resp, err := tx.s.cli.Get(tx.ctx, full, opts...)
	if err != nil {
		return nil, err
	}
	if tx.rev == 0 {
		tx.rev = resp.Header.Revision
	}
	return resp, nil
}

// Get reads key into v; found is false when it does not exist.
func (tx *Tx) Get(key string, v any) (found bool, err error) {
	full := tx.s.Key(key)
	if w, ok := tx.writes[full]; ok {
		if w == nil {
			return false, nil
		}
		return true, json.Unmarshal(w, v)
	}
	resp, err := tx.get(full)
	if err != nil {
		return false, fmt.Errorf("get %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		tx.reads[full] = 0
		return false, nil
	}
	tx.reads[full] = resp.Kvs[0].ModRevision
	if err := json.Unmarshal(resp.Kvs[0].Value, v); err != nil {
		return false, fmt.Errorf("decode %s: %w", key, err)
	}
	return true, nil
}

// List reads every key under prefix, with the transaction's own writes
// applied. The commit fails if any key under prefix is created or changed
// meanwhile.
func (tx *Tx) List(prefix string) ([]KV, error) {
	full := tx.s.Key(prefix)
	resp, err := tx.get(full, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	tx.ranges[full] = true
	var kvs []KV
	seen := map[string]bool{}
	for _, kv := range resp.Kvs {
		k := string(kv.Key)
		seen[k] = true
		tx.listed[k] = kv.ModRevision
		v := kv.Value
		if w, ok := tx.writes[k]; ok {
			if w == nil {
				continue
			}
			v = w
		}
		kvs = append(kvs, KV{Key: strings.TrimPrefix(k, tx.s.prefix+"/"), Value: v})
	}
	for k, w := range tx.writes {
		if w != nil && !seen[k] && strings.HasPrefix(k, full) {
			kvs = append(kvs, KV{Key: strings.TrimPrefix(k, tx.s.prefix+"/"), Value: w})
		}
	}
	return kvs, nil
}

// Put writes v as JSON at key when the transaction commits.
func (tx *Tx) Put(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	tx.writes[tx.s.Key(key)] = b
	return nil
}

// Delete removes key when the transaction commits.
func (tx *Tx) Delete(key string) { tx.writes[tx.s.Key(key)] = deleted }

// MaxOps is how many compares, and how many writes, one transaction may
// hold: etcd's default limit of operations per transaction (--max-txn-ops).
const MaxOps = 128

// Size returns how many compares and writes the commit would send, each of
// which etcd bounds by MaxOps.
func (tx *Tx) Size() (compares, writes int) {
	compares = len(tx.reads) + len(tx.ranges) + len(tx.fences)
	for k := range tx.writes {
		if _, ok := tx.listed[k]; ok {
			if _, read := tx.reads[k]; !read {
				compares++
			}
		}
	}
	return compares, len(tx.writes)
}

func (tx *Tx) commit() (bool, error) {
	if len(tx.writes) == 0 {
		return true, nil
	}
	var cmps []clientv3.Cmp
	for k, rev := range tx.reads {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", rev))
	}
	for p := range tx.ranges {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(p).WithPrefix(), "<", tx.rev+1))
	}
	// A range compare cannot see a key deleted since the read; a key
	// written back after being listed must still be the one listed.
	for k := range tx.writes {
		if rev, ok := tx.listed[k]; ok {
			if _, read := tx.reads[k]; !read {
				cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", rev))
			}
		}
	}
	for _, l := range tx.fences {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(l.key), "=", l.rev))
	}
	ops := make([]clientv3.Op, 0, len(tx.writes))
	for k, w := range tx.writes {
		if w == nil {
			ops = append(ops, clientv3.OpDelete(k))
		} else {
			ops = append(ops, clientv3.OpPut(k, string(w)))
		}
	}
	resp, err := tx.s.cli.Txn(tx.ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return false, fmt.Errorf("commit: %w", err)
	}
	return resp.Succeeded, nil
}

// GetMany reads several keys from one snapshot. The result holds each
// key's raw JSON value, nil for keys that do not exist.
func (s *Store) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	out := make([][]byte, len(keys))
	const batch = 100 // below etcd's default limit of 128 operations per transaction
	var rev int64
	for start := 0; start < len(keys); start += batch {
		end := min(start+batch, len(keys))
		ops := make([]clientv3.Op, 0, end-start)
		for _, k := range keys[start:end] {
			var opts []clientv3.OpOption
			if rev != 0 {
				opts = append(opts, clientv3.WithRev(rev))
			}
			ops = append(ops, clientv3.OpGet(s.Key(k), opts...))
		}
		resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return nil, fmt.Errorf("get %d keys: %w", len(keys), err)
		}
		rev = resp.Header.Revision
		for i, r := range resp.Responses {
			if kvs := r.GetResponseRange().Kvs; len(kvs) > 0 {
				out[start+i] = kvs[0].Value
			}
		}
	}
	return out, nil
}

// ListAt returns every key under prefix and the store revision it was read
// at.
func (s *Store) ListAt(ctx context.Context, prefix string) ([]KV, int64, error) {
	resp, err := s.cli.Get(ctx, s.Key(prefix), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", prefix, err)
	}
	kvs := make([]KV, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		kvs[i] = KV{Key: strings.TrimPrefix(string(kv.Key), s.prefix+"/"), Value: kv.Value}
	}
	return kvs, resp.Header.Revision, nil
}

// ErrCompacted is returned by Watch when the revision to start from has
// been compacted away; the caller should read afresh.
var ErrCompacted = errors.New("store: revision compacted")

// Event is one change seen by Watch.
type Event struct {
	Key      string // store key, without the prefix
	Value    []byte // nil for deletions
	Previous []byte // the value before the change, if any
	Revision int64
	// Restart marks Follow's (re)start of a watch from Revision on; the
	// event names no key.
	Restart bool
}

// Watch streams changes under prefix from revision from on (0: from now).
// The event channel closes when ctx ends or the watch fails; a failure is
// then sent on the error channel (ErrCompacted when from is too old).
func (s *Store) Watch(ctx context.Context, prefix string, from int64) (<-chan Event, <-chan error) {
	events := make(chan Event, 64)
	errc := make(chan error, 1)
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithPrevKV()}
	if from > 0 {
		opts = append(opts, clientv3.WithRev(from))
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	wc := s.cli.Watch(wctx, s.Key(prefix), opts...)
	go func() {
		defer close(events)
		defer cancel()
		for resp := range wc {
			if err := resp.Err(); err != nil {
				if resp.CompactRevision != 0 {
					err = ErrCompacted
				}
				errc <- err
				return
			}
			for _, ev := range resp.Events {
				e := Event{Key: strings.TrimPrefix(string(ev.Kv.Key), s.prefix+"/"), Revision: ev.Kv.ModRevision}
				if ev.Type == clientv3.EventTypePut {
					e.Value = ev.Kv.Value
				}
				if ev.PrevKv != nil {
					e.Previous = ev.PrevKv.Value
				}
				select {
				case events <- e:
				case <-ctx.Done():
					return
				}
			}
		}
		if ctx.Err() == nil {
			errc <- errors.New("store: watch ended")
		}
	}()
	return events, errc
}

// Heartbeat keeps key alive: it renews the lease the key holds, or puts the
// key with value under a new lease of ttl when it has none. The key
// disappears ttl after the last heartbeat; watchers see a put when it
// (re)appears and a delete when it expires.
func (s *Store) Heartbeat(ctx context.Context, key string, value any, ttl time.Duration) error {
	b, err := json.Marshal(value)
	if err != nil {
		return err
	}
	full := s.Key(key)
	resp, err := s.cli.Get(ctx, full)
	if err != nil {
		return fmt.Errorf("heartbeat %s: %w", key, err)
	}
	if len(resp.Kvs) > 0 && resp.Kvs[0].Lease != 0 {
		if _, err := s.cli.KeepAliveOnce(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err == nil {
			return nil
		}
	}
	lease, err := s.cli.Grant(ctx, int64(max(ttl/time.Second, 1)))
	if err != nil {
		return fmt.Errorf("heartbeat %s: grant lease: %w", key, err)
	}
	if _, err := s.cli.Put(ctx, full, string(b), clientv3.WithLease(lease.ID)); err != nil {
		return fmt.Errorf("heartbeat %s: %w", key, err)
	}
	return nil
}

// Revision returns the store's current revision.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	resp, err := s.cli.Get(ctx, s.prefix+"/", clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("read the store revision: %w", err)
	}
	return resp.Header.Revision, nil
}
