// Package metadata serves the task metadata endpoint that containers reach
// on their network's gateway: ECS's versions 4 and 3 (one answer format for
// both) of a container's and its task's metadata and resource use, and the
// configuration a Service Connect proxy long-polls. Every path carries the
// asking container's token, which tells the server who asks; the server
// holds no task state itself but asks the task's Source.
package metadata
