package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/docker/docker/api/types/network"
)

// webScript serves "pong" over HTTP on port with busybox httpd.
func webScript(listen string) string {
	return "echo pong > /tmp/index.html && exec httpd -f -p " + listen + " -h /tmp"
}

// TestAwsvpc runs a two-container awsvpc task: the containers share the
// pause container's network namespace, so the client reaches the server on
// 127.0.0.1, and the task's address on Wharf's network answers from the
// host.
func TestAwsvpc(t *testing.T) {
	e := newEnv(t)
	web := e.ctr("web", webScript("8080"))
	client := e.ctr("client", `for i in $(seq 1 100); do wget -q -O - http://127.0.0.1:8080/ && exit 0; sleep 0.1; done; exit 1`)
	client.Essential = aws.Bool(false)
	td := e.register("awsvpc", types.NetworkModeAwsvpc, web, client)
	arn := e.run(td)

	task := e.waitTask(arn, "to be RUNNING with its client exited", func(t types.Task) bool {
		return aws.ToString(t.LastStatus) == "RUNNING" && aws.ToString(taskContainerOf(t, "client").LastStatus) == "STOPPED"
	})
	cl := taskContainer(t, task, "client")
	if cl.ExitCode == nil || *cl.ExitCode != 0 {
		t.Fatalf("the client container exited with %v, want 0; its output:\n%s", aws.ToInt32(cl.ExitCode), e.logs(aws.ToString(cl.RuntimeId)))
	}
	if out := e.logs(aws.ToString(cl.RuntimeId)); !strings.Contains(out, "pong") {
		t.Fatalf("the client's output %q lacks the server's answer \"pong\"", out)
	}

	// The attachment is the task's ENI.
	var eni *types.Attachment
	for i := range task.Attachments {
		if aws.ToString(task.Attachments[i].Type) == "ElasticNetworkInterface" {
			eni = &task.Attachments[i]
		}
	}
	if eni == nil {
		t.Fatalf("the task has no ElasticNetworkInterface attachment: %s", jsonOf(task.Attachments))
	}
	details := map[string]string{}
	for _, d := range eni.Details {
		details[aws.ToString(d.Name)] = aws.ToString(d.Value)
	}
	for _, k := range []string{"privateIPv4Address", "macAddress", "networkInterfaceId"} {
		if details[k] == "" {
			t.Fatalf("the attachment lacks %s: %s", k, jsonOf(eni.Details))
		}
	}
	ip, err := netip.ParseAddr(details["privateIPv4Address"])
	if err != nil {
		t.Fatalf("privateIPv4Address: %v", err)
	}
	if _, err := net.ParseMAC(details["macAddress"]); err != nil {
		t.Fatalf("macAddress: %v", err)
	}
	if !strings.HasPrefix(details["networkInterfaceId"], "eni-") {
		t.Fatalf("networkInterfaceId %q does not look like an ENI id", details["networkInterfaceId"])
	}
	if nis := taskContainer(t, task, "web").NetworkInterfaces; len(nis) != 1 || aws.ToString(nis[0].PrivateIpv4Address) != ip.String() {
		t.Errorf("the web container's network interfaces are %s, want one with the attachment's address %s", jsonOf(nis), ip)
	}

	// The pause container holds the address and MAC on Wharf's network, and
	// the address lies in that network's subnet.
	var pause string
	for _, c := range e.containersOf(arn) {
		if c.Labels["wharf.role"] == "pause" {
			pause = c.ID
		}
	}
	if pause == "" {
		t.Fatalf("no pause container carries the task's label")
	}
	pc := e.inspect(pause)
	var found bool
	for name, ep := range pc.NetworkSettings.Networks {
		if ep.IPAddress != ip.String() {
			continue
		}
		found = true
		if !strings.EqualFold(ep.MacAddress, details["macAddress"]) {
			t.Errorf("the pause container's MAC on %s is %s, want the attachment's %s", name, ep.MacAddress, details["macAddress"])
		}
		nw, err := e.docker.NetworkInspect(t.Context(), name, network.InspectOptions{})
		if err != nil {
			t.Fatalf("docker network inspect %s: %v", name, err)
		}
		if len(nw.IPAM.Config) == 0 {
			t.Fatalf("network %s has no subnet", name)
		}
		subnet, err := netip.ParsePrefix(nw.IPAM.Config[0].Subnet)
		if err != nil || !subnet.Contains(ip) {
			t.Errorf("address %s is not inside network %s's subnet %s", ip, name, nw.IPAM.Config[0].Subnet)
		}
	}
	if !found {
		t.Fatalf("the pause container has no endpoint with address %s: %s", ip, jsonOf(pc.NetworkSettings.Networks))
	}

	// The host reaches the task at its address.
	waitHTTP(t, "http://"+net.JoinHostPort(ip.String(), "8080")+"/", "pong")
}

// taskContainerOf is taskContainer for conditions: a missing container is
// the zero value.
func taskContainerOf(task types.Task, name string) types.Container {
	for _, c := range task.Containers {
		if aws.ToString(c.Name) == name {
			return c
		}
	}
	return types.Container{}
}

// TestBridgeDynamicPort publishes a container port on a host port Docker
// picks; the task reports it in networkBindings and it answers from the
// host.
func TestBridgeDynamicPort(t *testing.T) {
	e := newEnv(t)
	web := e.ctr("web", webScript("8080"))
	web.PortMappings = []types.PortMapping{{ContainerPort: aws.Int32(8080), HostPort: aws.Int32(0), Protocol: types.TransportProtocolTcp}}
	td := e.register("bridge", types.NetworkModeBridge, web)
	arn := e.run(td)
	e.sdkWaitRunning(arn)
	task := e.describe(arn)

	// Docker 20.10 may bind the IPv4 and the IPv6 wildcard to different
	// dynamic ports; the test connects over IPv4.
	bindings := taskContainer(t, task, "web").NetworkBindings
	port := int32(0)
	for _, b := range bindings {
		if aws.ToInt32(b.ContainerPort) == 8080 && b.Protocol == types.TransportProtocolTcp && aws.ToString(b.BindIP) == "0.0.0.0" {
			port = aws.ToInt32(b.HostPort)
		}
	}
	if port == 0 {
		t.Fatalf("networkBindings report no IPv4 host port for container port 8080: %s", jsonOf(bindings))
	}
	waitHTTP(t, "http://127.0.0.1:"+strconv.Itoa(int(port))+"/", "pong")
}

// TestHostAndNoneNetworkModes runs a task on the host's network (it serves
// HTTP on a host port the test chose) and one with no network (only the
// loopback interface).
func TestHostAndNoneNetworkModes(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	host := e.register("host", types.NetworkModeHost, e.ctr("web", webScript(fmt.Sprintf("127.0.0.1:%d", port))))
	none := e.register("none", types.NetworkModeNone, e.ctr("app", `cat /proc/net/dev; exec sleep 3600`))
	hostTask, noneTask := e.run(host), e.run(none)

	e.waitRunning(hostTask)
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "pong")

	task := e.waitRunning(noneTask)
	id := aws.ToString(taskContainer(t, task, "app").RuntimeId)
	if mode := e.inspect(id).HostConfig.NetworkMode; mode != "none" {
		t.Errorf("the none task's container has network mode %q", mode)
	}
	var ifaces []string
	waitFor(t, "the none task's container to list its interfaces", taskWait, func() (bool, string) {
		ifaces = nil
		for _, l := range lines(e.logs(id)) {
			if name, _, ok := strings.Cut(l, ":"); ok && !strings.Contains(name, "|") {
				ifaces = append(ifaces, strings.TrimSpace(name))
			}
		}
		return len(ifaces) > 0, "no output yet"
	})
	if len(ifaces) != 1 || ifaces[0] != "lo" {
		t.Errorf("the none task's container has interfaces %v, want only lo", ifaces)
	}
}
