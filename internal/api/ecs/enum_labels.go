package ecs

// enumLabels names members in ECS's "<field> should be one of [A,B]"
// messages where ECS does not use the member's name.
var enumLabels = map[string]string{
	"launchType":         "launch type",
	"schedulingStrategy": "Scheduling strategy",
}
