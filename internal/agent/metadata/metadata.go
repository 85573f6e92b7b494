package metadata

import "time"

// Task is a task's metadata (GET ${ECS_CONTAINER_METADATA_URI_V4}/task).
type Task struct {
	Cluster          string      `json:"Cluster"`
	TaskARN          string      `json:"TaskARN"`
	Family           string      `json:"Family"`
	Revision         string      `json:"Revision"`
	DesiredStatus    string      `json:"DesiredStatus"`
	KnownStatus      string      `json:"KnownStatus"`
	Limits           *Limits     `json:"Limits,omitempty"`
	PullStartedAt    *time.Time  `json:"PullStartedAt,omitempty"`
	PullStoppedAt    *time.Time  `json:"PullStoppedAt,omitempty"`
	AvailabilityZone string      `json:"AvailabilityZone"`
	LaunchType       string      `json:"LaunchType"`
	Containers       []Container `json:"Containers"`
	// EphemeralStorageMetrics is Fargate's: the task's storage in MiB.
	EphemeralStorageMetrics *EphemeralStorageMetrics `json:"EphemeralStorageMetrics,omitempty"`
}

// EphemeralStorageMetrics are a Fargate task's storage use and size, in
// MiB.
type EphemeralStorageMetrics struct {
	Utilized int64 `json:"Utilized"`
	Reserved int64 `json:"Reserved"`
}

// Container is a container's metadata (GET ${ECS_CONTAINER_METADATA_URI_V4}).
type Container struct {
	DockerID      string            `json:"DockerId"`
	Name          string            `json:"Name"`
	DockerName    string            `json:"DockerName"`
	Image         string            `json:"Image"`
	ImageID       string            `json:"ImageID"`
	Labels        map[string]string `json:"Labels"`
	DesiredStatus string            `json:"DesiredStatus"`
	KnownStatus   string            `json:"KnownStatus"`
	ExitCode      *int32            `json:"ExitCode,omitempty"`
	Limits        Limits            `json:"Limits"`
	CreatedAt     *time.Time        `json:"CreatedAt,omitempty"`
	StartedAt     *time.Time        `json:"StartedAt,omitempty"`
	FinishedAt    *time.Time        `json:"FinishedAt,omitempty"`
	Type          string            `json:"Type"`
	Networks      []Network         `json:"Networks"`
	Health        *Health           `json:"Health,omitempty"`
	ContainerARN  string            `json:"ContainerARN"`
	LogDriver     string            `json:"LogDriver,omitempty"`
	LogOptions    map[string]string `json:"LogOptions,omitempty"`
}

// Limits are a task's or a container's CPU (vCPUs for a task, CPU units
// for a container) and memory (MiB).
type Limits struct {
	CPU    float64 `json:"CPU"`
	Memory int64   `json:"Memory"`
}

// Network is a container's network attachment.
type Network struct {
	NetworkMode              string   `json:"NetworkMode"`
	IPv4Addresses            []string `json:"IPv4Addresses,omitempty"`
	AttachmentIndex          *int     `json:"AttachmentIndex,omitempty"`
	MACAddress               string   `json:"MACAddress,omitempty"`
	IPv4SubnetCIDRBlock      string   `json:"IPv4SubnetCIDRBlock,omitempty"`
	DomainNameServers        []string `json:"DomainNameServers,omitempty"`
	PrivateDNSName           string   `json:"PrivateDNSName,omitempty"`
	SubnetGatewayIpv4Address string   `json:"SubnetGatewayIpv4Address,omitempty"`
}

// Health is a container's health, for containers with a health check.
type Health struct {
	Status string `json:"status"`
}
