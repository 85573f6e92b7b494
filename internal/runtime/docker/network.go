package docker

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"github.com/wharfhq/wharf/internal/runtime"
)

// EnsureNetwork creates a bridge network with spec's subnet, gateway and
// labels unless a network of that name exists. An existing one is an error
// when its driver is not bridge, or when spec asks for a subnet or gateway
// it does not have.
func (d *Docker) EnsureNetwork(ctx context.Context, spec runtime.NetworkSpec) error {
	if spec.Name == "" {
		return fmt.Errorf("ensure network: no name")
	}
	var want netip.Prefix
	if spec.Subnet != "" {
		p, err := netip.ParsePrefix(spec.Subnet)
		if err != nil {
			return fmt.Errorf("network %q: subnet %q: %w", spec.Name, spec.Subnet, err)
		}
		want = p.Masked()
	}
	// The engine does not make creation atomic: a concurrent create of the
	// same name and subnet can fail on the subnet before the winner's
	// network is visible. Calls through this runtime take turns; against
	// other clients the check after a failed create has to do.
	d.networkMu.Lock()
	defer d.networkMu.Unlock()
	nw, found, err := d.network(ctx, spec.Name)
	if err != nil {
		return err
	}
	if !found {
		opts := network.CreateOptions{Driver: "bridge", Labels: spec.Labels}
		if spec.Subnet != "" || spec.Gateway != "" {
			opts.IPAM = &network.IPAM{
				Driver: "default",
				Config: []network.IPAMConfig{{Subnet: spec.Subnet, Gateway: spec.Gateway}},
			}
		}
		_, cerr := d.cli.NetworkCreate(ctx, spec.Name, opts)
		if cerr == nil {
			return nil
		}
		// Someone else may have created it meanwhile; the engine then
		// says conflict, or, with a fixed subnet, that the subnet is taken.
		// Check theirs.
		if nw, found, err = d.network(ctx, spec.Name); err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("create network %q: %w", spec.Name, cerr)
		}
	}
	return matchNetwork(nw, spec, want)
}

// matchNetwork checks that an existing network is what spec describes.
func matchNetwork(nw network.Inspect, spec runtime.NetworkSpec, want netip.Prefix) error {
	if nw.Driver != "bridge" {
		return fmt.Errorf("network %q exists with driver %q, not bridge; remove it (docker network rm %s) or choose another name", spec.Name, nw.Driver, spec.Name)
	}
	var subnets, gateways []string
	subnetOK, gatewayOK := !want.IsValid(), spec.Gateway == ""
	for _, c := range nw.IPAM.Config {
		subnets = append(subnets, c.Subnet)
		gateways = append(gateways, c.Gateway)
		if want.IsValid() {
			p, err := netip.ParsePrefix(c.Subnet)
			if err != nil || p.Masked() != want {
				continue
			}
			subnetOK = true
		}
		if c.Gateway == spec.Gateway {
			gatewayOK = true
		}
	}
	if !subnetOK {
		return fmt.Errorf("network %q exists with subnet %s, not %s; remove it (docker network rm %s) or choose another subnet",
			spec.Name, orNone(subnets), spec.Subnet, spec.Name)
	}
	if !gatewayOK {
		return fmt.Errorf("network %q exists with gateway %s, not %s; remove it (docker network rm %s) or choose another gateway",
			spec.Name, orNone(gateways), spec.Gateway, spec.Name)
	}
	return nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ", ")
}

// network finds the network named exactly name (the engine's name filter
// matches substrings, and inspect also matches id prefixes).
func (d *Docker) network(ctx context.Context, name string) (network.Inspect, bool, error) {
	list, err := d.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", name))})
	if err != nil {
		return network.Inspect{}, false, fmt.Errorf("list networks: %w", err)
	}
	for _, nw := range list {
		if nw.Name == name {
			return nw, true, nil
		}
	}
	return network.Inspect{}, false, nil
}

// RemoveNetwork removes a network; a missing one is not an error, one with
// containers attached is.
func (d *Docker) RemoveNetwork(ctx context.Context, name string) error {
	err := d.cli.NetworkRemove(ctx, name)
	if err == nil || cerrdefs.IsNotFound(err) {
		return nil
	}
	return fmt.Errorf("remove network %q: %w", name, err)
}
