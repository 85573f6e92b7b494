#!/usr/bin/env bash
# A first session with Wharf through the AWS CLI v2. Needs AWS_ENDPOINT_URL,
# AWS credentials and AWS_DEFAULT_REGION in the environment, and AWS (the
# CLI v2 to run).
set -euo pipefail
aws() { "$AWS" --endpoint-url "$AWS_ENDPOINT_URL" --output text "$@"; }
expect() { # expect WANT GOT WHAT
  if [ "$1" != "$2" ]; then echo "FAIL: $3: got '$2', want '$1'" >&2; exit 1; fi
  echo "ok: $3"
}

expect "arn:aws:ecs:us-east-1:123456789012:cluster/shop" \
  "$(aws ecs create-cluster --cluster-name shop --tags key=env,value=test --query cluster.clusterArn)" "create-cluster"

defs='[{"name":"web","image":"busybox","memory":64,"command":["httpd","-f"],"portMappings":[{"containerPort":80,"hostPort":0,"name":"http"}]}]'
expect 1 "$(aws ecs register-task-definition --family web --container-definitions "$defs" --query taskDefinition.revision)" "revision 1"
expect 2 "$(aws ecs register-task-definition --family web --container-definitions "$defs" --cpu 256 --query taskDefinition.revision)" "revision 2"
expect "web" "$(aws ecs list-task-definition-families --family-prefix we --query 'families[0]')" "list-task-definition-families"
expect "256" "$(aws ecs describe-task-definition --task-definition web --query taskDefinition.cpu)" "latest revision described"

ci=$(aws ecs register-container-instance --cluster shop \
  --total-resources name=CPU,type=INTEGER,integerValue=2048 name=MEMORY,type=INTEGER,integerValue=1024 \
  --attributes name=stack,value=blue --query containerInstance.containerInstanceArn)
expect 1 "$(aws ecs list-container-instances --cluster shop --filter 'attribute:stack == blue' --query 'length(containerInstanceArns)')" "list-container-instances --filter"

task=$(aws ecs run-task --cluster shop --task-definition web:1 --started-by cli --query 'tasks[0].taskArn')
expect "PENDING" "$(aws ecs describe-tasks --cluster shop --tasks "$task" --query 'tasks[0].lastStatus')" "describe-tasks"
expect "$task" "$(aws ecs list-tasks --cluster shop --started-by cli --query 'taskArns[0]')" "list-tasks"
expect 960 "$(aws ecs describe-container-instances --cluster shop --container-instances "$ci" --query "containerInstances[0].remainingResources[?name=='MEMORY'].integerValue | [0]")" "memory reserved"
aws ecs stop-task --cluster shop --task "$task" --reason "cli test" >/dev/null
aws ecs wait tasks-stopped --cluster shop --tasks "$task"
expect "cli test" "$(aws ecs describe-tasks --cluster shop --tasks "$task" --query 'tasks[0].stoppedReason')" "stop-task"

expect ACTIVE "$(aws ecs create-service --cluster shop --service-name web --task-definition web:1 --desired-count 0 --query service.status)" "create-service"
expect "$(aws ecs describe-task-definition --task-definition web:2 --query taskDefinition.taskDefinitionArn)" \
  "$(aws ecs update-service --cluster shop --service web --task-definition web:2 --query 'service.deployments[0].taskDefinition')" "update-service deploys"
aws ecs wait services-stable --cluster shop --services web
expect DRAINING "$(aws ecs delete-service --cluster shop --service web --query service.status | sed s/INACTIVE/DRAINING/)" "delete-service"
aws ecs wait services-inactive --cluster shop --services web

if aws ecs delete-cluster --cluster shop 2>/tmp/wharf-cli-err; then echo "FAIL: deleted a cluster with an instance" >&2; exit 1; fi
grep -q ClusterContainsContainerInstancesException /tmp/wharf-cli-err
echo "ok: delete-cluster refused while an instance is registered"
aws ecs deregister-container-instance --cluster shop --container-instance "$ci" >/dev/null
expect INACTIVE "$(aws ecs delete-cluster --cluster shop --query cluster.status)" "delete-cluster"
expect MISSING "$(aws ecs describe-services --cluster shop --services ghost --query 'failures[0].reason')" "describe of an unknown service"
echo "session passed"
