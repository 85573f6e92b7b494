package docker

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/go-connections/nat"

	"github.com/wharfhq/wharf/internal/runtime"
)

// These tests need no engine: they check the translation of specs, in
// particular what depends on the API version, which the engine on a test
// machine fixes.

func TestCreateRequestMacAddressByAPIVersion(t *testing.T) {
	for _, tc := range []struct {
		name, version, mode string
		wantConfigMAC       string // container.Config.MacAddress
		wantEndpointMAC     string // EndpointsConfig[mode].MacAddress
	}{
		{name: "user-defined network, API 1.41", version: "1.41", mode: "appnet", wantConfigMAC: "02:42:ac:11:00:99"},
		{name: "user-defined network, API 1.43", version: "1.43", mode: "appnet", wantConfigMAC: "02:42:ac:11:00:99"},
		{name: "user-defined network, API 1.44", version: "1.44", mode: "appnet", wantEndpointMAC: "02:42:ac:11:00:99"},
		{name: "user-defined network, API 1.51", version: "1.51", mode: "appnet", wantEndpointMAC: "02:42:ac:11:00:99"},
		{name: "default bridge, API 1.41", version: "1.41", mode: "bridge", wantConfigMAC: "02:42:ac:11:00:99"},
		{name: "default bridge, API 1.44", version: "1.44", mode: "bridge", wantEndpointMAC: "02:42:ac:11:00:99"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := createRequestFor(&runtime.ContainerSpec{
				Name:        "c",
				Image:       "busybox",
				NetworkMode: tc.mode,
				MacAddress:  "02:42:ac:11:00:99",
			}, tc.version)
			if err != nil {
				t.Fatal(err)
			}
			if got := req.config.MacAddress; got != tc.wantConfigMAC { //nolint:staticcheck // checking the pre-1.44 field
				t.Errorf("Config.MacAddress = %q, want %q", got, tc.wantConfigMAC)
			}
			var gotEP string
			if req.network != nil {
				if ep := req.network.EndpointsConfig[tc.mode]; ep != nil {
					gotEP = ep.MacAddress
				}
			}
			if gotEP != tc.wantEndpointMAC {
				t.Errorf("EndpointsConfig[%q].MacAddress = %q, want %q", tc.mode, gotEP, tc.wantEndpointMAC)
			}
		})
	}
}

func TestCreateRequestFields(t *testing.T) {
	spec := &runtime.ContainerSpec{
		Name:              "c",
		Image:             "busybox",
		NetworkMode:       "appnet",
		IPv4Address:       "10.0.0.5",
		Aliases:           []string{"web"},
		Links:             []string{"db:db"},
		CPUShares:         1,
		StopTimeout:       1500 * time.Millisecond,
		Init:              true,
		PortBindings:      []runtime.PortBinding{{ContainerPort: 80}, {ContainerPort: 53, HostPort: 5353, Protocol: "UDP", HostIP: "127.0.0.1"}},
		Mounts:            []runtime.Mount{{Source: "/srv", Target: "/data", ReadOnly: true}, {Source: "cache", Target: "/cache", Volume: true}, {Target: "/scratch", Volume: true}},
		HealthCheck:       &runtime.HealthCheck{Test: []string{"CMD", "true"}, Interval: time.Second, Retries: 2},
		MemoryLimit:       64 << 20,
		MemoryReservation: 32 << 20,
	}
	req, err := createRequestFor(spec, "1.41")
	if err != nil {
		t.Fatal(err)
	}
	ep := req.network.EndpointsConfig["appnet"]
	checks := []struct {
		name      string
		got, want any
	}{
		{"network mode", string(req.host.NetworkMode), "appnet"},
		{"endpoint ipv4", ep.IPAMConfig.IPv4Address, "10.0.0.5"},
		{"endpoint aliases", ep.Aliases, []string{"web"}},
		{"endpoint links", ep.Links, []string{"db:db"}},
		{"host links", req.host.Links, []string(nil)},
		{"cpu shares raised to the minimum", req.host.CPUShares, int64(2)},
		{"stop timeout rounded up", *req.config.StopTimeout, 2},
		{"init", *req.host.Init, true},
		{"memory", req.host.Memory, int64(64 << 20)},
		{"memory reservation", req.host.MemoryReservation, int64(32 << 20)},
		{"exposed ports", req.config.ExposedPorts, nat.PortSet{"80/tcp": {}, "53/udp": {}}},
		{"port bindings", req.host.PortBindings, nat.PortMap{
			"80/tcp": {{HostPort: ""}},
			"53/udp": {{HostIP: "127.0.0.1", HostPort: "5353"}},
		}},
		{"binds", req.host.Binds, []string{"/srv:/data:ro"}},
		{"volume mounts", req.host.Mounts, []mount.Mount{
			{Type: mount.TypeVolume, Source: "cache", Target: "/cache"},
			{Type: mount.TypeVolume, Target: "/scratch"},
		}},
		{"health interval", req.config.Healthcheck.Interval, time.Second},
		{"health retries", req.config.Healthcheck.Retries, 2},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestCreateRequestRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec runtime.ContainerSpec
		want string // in the error
	}{
		{"no image", runtime.ContainerSpec{}, "no image"},
		{"fixed ip on the default bridge", runtime.ContainerSpec{NetworkMode: "bridge", IPv4Address: "172.17.0.9"}, "user-defined network"},
		{"aliases with host networking", runtime.ContainerSpec{NetworkMode: "host", Aliases: []string{"a"}}, "user-defined network"},
		{"mac with no network", runtime.ContainerSpec{NetworkMode: "none", MacAddress: "02:42:ac:11:00:99"}, "needs a bridge network"},
		{"relative bind source", runtime.ContainerSpec{Mounts: []runtime.Mount{{Source: "data", Target: "/data"}}}, "not an absolute path"},
		{"relative target", runtime.ContainerSpec{Mounts: []runtime.Mount{{Source: "/data", Target: "data"}}}, "not an absolute path"},
		{"unknown protocol", runtime.ContainerSpec{PortBindings: []runtime.PortBinding{{ContainerPort: 80, Protocol: "icmp"}}}, "protocol"},
		{"port out of range", runtime.ContainerSpec{PortBindings: []runtime.PortBinding{{ContainerPort: 70000}}}, "out of range"},
		{"negative cpu shares", runtime.ContainerSpec{CPUShares: -1}, "negative CPU shares"},
		{"empty health test", runtime.ContainerSpec{HealthCheck: &runtime.HealthCheck{}}, "health check has no test"},
		{"nameless ulimit", runtime.ContainerSpec{Ulimits: []runtime.Ulimit{{Soft: 1, Hard: 1}}}, "ulimit without a name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			if tc.name != "no image" {
				spec.Image = "busybox"
			}
			_, err := createRequestFor(&spec, "1.41")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("createRequestFor = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestRepoDigest(t *testing.T) {
	digests := []string{
		"registry.example/other@sha256:1111111111111111111111111111111111111111111111111111111111111111",
		"busybox@sha256:2222222222222222222222222222222222222222222222222222222222222222",
	}
	for _, tc := range []struct {
		ref     string
		digests []string
		want    string
	}{
		{"busybox:1.36", digests, digests[1]},
		{"docker.io/library/busybox", digests, digests[1]},
		{"unrelated", digests, digests[0]},
		{"busybox", nil, ""},
	} {
		if got := repoDigest(tc.ref, tc.digests); got != tc.want {
			t.Errorf("repoDigest(%q) = %q, want %q", tc.ref, got, tc.want)
		}
	}
}

func TestReadStream(t *testing.T) {
	for _, tc := range []struct {
		name, in, wantErr, wantOut string
	}{
		{"success", `{"stream":"Step 1/2\n"}{"stream":"ok\n"}`, "", "Step 1/2\nok"},
		{"error detail", `{"status":"Pulling"}{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}`, "manifest unknown", ""},
		{"bare error", `{"error":"boom"}`, "boom", ""},
		{"truncated", `{"stream":"a"`, "read engine progress stream", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := readStream(strings.NewReader(tc.in))
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("readStream error = %v, want %q", err, tc.wantErr)
			}
			if tc.wantOut != "" && out != tc.wantOut {
				t.Errorf("readStream output = %q, want %q", out, tc.wantOut)
			}
		})
	}
}
