package agent

import (
	"time"

	"github.com/wharfhq/wharf/internal/agent/hostnet"
)

// What the external tests (package agent_test, which can import testenv)
// need of the agent's internals.

var BridgeGateway = hostnet.BridgeGateway

const (
	LabelInstance = labelInstance
	LabelManaged  = labelManaged
	LabelStateDir = labelStateDir
	LabelHost     = labelHost
)

func (a *Agent) SetScrapeEvery(d time.Duration) { a.scrapeEvery = d }

func (a *Agent) ServiceConnectDir(taskArn string) string { return a.serviceConnectDir(taskArn) }

// ContainerID is the engine id of a task's container; "" when unknown.
func (a *Agent) ContainerID(taskArn, name string) string {
	m := a.manager(taskArn)
	if m == nil {
		return ""
	}
	return m.ContainerID(name)
}

// ProxyName is the name of a Service Connect task's proxy container.
func (a *Agent) ProxyName(taskArn string) string {
	if m := a.manager(taskArn); m != nil && m.sc != nil {
		return m.sc.proxy
	}
	return ""
}
