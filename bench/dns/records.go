package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/wharfhq/wharf/internal/api"
	sd "github.com/wharfhq/wharf/internal/api/servicediscovery"
	"github.com/wharfhq/wharf/internal/cloudmap"
	"github.com/wharfhq/wharf/internal/store"
)

const (
	region = "us-east-1"
	ttl    = 60
	soaTTL = 30
)

// layout names what the run serves: zones bench-<n>.local, services
// svc-<n> with A and SRV records, instances i-<n> with an IPv4 address
// and a port.
type layout struct {
	namespaces, services, instances int
}

func (l layout) zone(n int) string         { return fmt.Sprintf("bench-%d.local", n) }
func (l layout) service(s int) string      { return fmt.Sprintf("svc-%d", s) }
func (l layout) instance(s, i int) string  { return fmt.Sprintf("i-%d", i) }
func (l layout) port(s, i int) int         { return 10000 + i }
func (l layout) total() int                { return l.namespaces * l.services * l.instances }
func (l layout) nsID(n int) string         { return fmt.Sprintf("ns-bench%d", n) }
func (l layout) serviceID(n, s int) string { return fmt.Sprintf("srv-bench%d-%d", n, s) }
func (l layout) ip(n, s, i int) string {
	k := (n*l.services+s)*l.instances + i
	return fmt.Sprintf("10.%d.%d.%d", 100+k>>16, k>>8&0xFF, k&0xFF)
}
func (l layout) fqdn(n, s int) string      { return l.service(s) + "." + l.zone(n) + "." }
func (l layout) target(n, s, i int) string { return l.instance(s, i) + "." + l.fqdn(n, s) }

// load writes every namespace, service and instance into the store, 100
// keys per transaction.
func (l layout) load(ctx context.Context, st *store.Store) error {
	type kv struct {
		key string
		v   any
	}
	var batch []kv
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := st.Update(ctx, func(tx *store.Tx) error {
			for _, p := range batch {
				if err := tx.Put(p.key, p.v); err != nil {
					return err
				}
			}
			return nil
		})
		batch = batch[:0]
		return err
	}
	add := func(key string, v any) error {
		batch = append(batch, kv{key, v})
		if len(batch) == 100 {
			return flush()
		}
		return nil
	}
	now := time.Now()
	for n := range l.namespaces {
		ns := cloudmap.NamespaceRecord{Namespace: sd.Namespace{
			Id: l.nsID(n), Name: l.zone(n), Type: sd.NamespaceTypeDnsPrivate, CreateDate: api.NewTime(now),
			Properties: &sd.NamespaceProperties{DnsProperties: &sd.DnsProperties{SOA: &sd.SOA{TTL: soaTTL}}},
		}}
		if err := add(cloudmap.NamespaceKey(region, l.nsID(n)), ns); err != nil {
			return err
		}
		for s := range l.services {
			srvID := l.serviceID(n, s)
			svc := cloudmap.ServiceRecord{Service: sd.Service{
				Id: srvID, NamespaceId: l.nsID(n), Name: l.service(s), Type: sd.ServiceTypeDnsHttp,
				DnsConfig: &sd.DnsConfig{RoutingPolicy: sd.RoutingPolicyMultivalue, DnsRecords: []sd.DnsRecord{
					{Type: sd.RecordTypeA, TTL: ttl}, {Type: sd.RecordTypeSrv, TTL: ttl},
				}},
			}}
			if err := add(cloudmap.ServiceKey(region, srvID), svc); err != nil {
				return err
			}
			for i := range l.instances {
				inst := cloudmap.InstanceRecord{
					Instance: sd.Instance{Id: l.instance(s, i), Attributes: map[string]string{
						"AWS_INSTANCE_IPV4": l.ip(n, s, i),
						"AWS_INSTANCE_PORT": fmt.Sprint(l.port(s, i)),
					}},
					ServiceID: srvID, Health: sd.HealthStatusHealthy, UpdatedAt: now,
				}
				if err := add(cloudmap.InstanceKey(region, srvID, l.instance(s, i)), inst); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// writeZones writes one zone file per namespace with the records Wharf
// serves, and returns their names and paths.
func (l layout) writeZones(dir string, serial uint32) (map[string]string, error) {
	files := map[string]string{}
	for n := range l.namespaces {
		zone := l.zone(n)
		path := filepath.Join(dir, zone+".zone")
		f, err := os.Create(path)
		if err != nil {
			return nil, err
		}
		w := bufio.NewWriter(f)
		fmt.Fprintf(w, "$ORIGIN %s.\n$TTL %d\n", zone, ttl)
		fmt.Fprintf(w, "@ %d IN SOA ns1.%s. hostmaster.%s. %d 7200 900 1209600 %d\n", soaTTL, zone, zone, serial, soaTTL)
		fmt.Fprintf(w, "@ %d IN NS ns1.%s.\nns1 %d IN A 127.0.0.1\n", soaTTL, zone, soaTTL)
		for s := range l.services {
			svc := l.service(s)
			for i := range l.instances {
				fmt.Fprintf(w, "%s IN A %s\n", svc, l.ip(n, s, i))
				fmt.Fprintf(w, "%s IN SRV 1 1 %d %s.%s\n", svc, l.port(s, i), l.instance(s, i), svc)
				fmt.Fprintf(w, "%s.%s IN A %s\n", l.instance(s, i), svc, l.ip(n, s, i))
			}
		}
		if err := w.Flush(); err != nil {
			f.Close()
			return nil, err
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		files[zone] = path
	}
	return files, nil
}

// writeQueries writes n queries in dnsperf's format, shuffled with a
// fixed seed: 40 % A of a service, 20 % SRV of a service, 30 % A of an
// SRV target, 10 % names that do not exist (NXDOMAIN).
func (l layout) writeQueries(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	r := rand.New(rand.NewPCG(1, 2))
	for range n {
		z, s, i := r.IntN(l.namespaces), r.IntN(l.services), r.IntN(l.instances)
		switch p := r.IntN(10); {
		case p < 4:
			fmt.Fprintf(w, "%s A\n", l.fqdn(z, s))
		case p < 6:
			fmt.Fprintf(w, "%s SRV\n", l.fqdn(z, s))
		case p < 9:
			fmt.Fprintf(w, "%s A\n", l.target(z, s, i))
		default:
			fmt.Fprintf(w, "missing-%d.%s. A\n", s, l.zone(z))
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
