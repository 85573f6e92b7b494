#!/usr/bin/env bash
# Seed 001's Cloud Map session through the AWS CLI v2: an HTTP namespace for
# resources without DNS names, a public DNS namespace with an A record and a
# TCP health check, instances with custom attributes, and discovery filtered
# by those attributes. Needs AWS_ENDPOINT_URL, AWS credentials and
# AWS_DEFAULT_REGION in the environment, and AWS (the CLI v2 to run).
set -euo pipefail
aws() { "$AWS" --endpoint-url "$AWS_ENDPOINT_URL" --output text "$@"; }
# The CLI sends discover-instances to data-<endpoint host>, which does not
# resolve for 127.0.0.1. Wharf's endpoint also answers HTTP proxy requests,
# so pointing HTTP_PROXY at it makes the prefixed name irrelevant. (CLIs
# whose botocore knows it can set AWS_DISABLE_HOST_PREFIX_INJECTION=true
# instead.)
discover() {
  env -u NO_PROXY -u no_proxy HTTP_PROXY="$AWS_ENDPOINT_URL" \
    "$AWS" --endpoint-url "$AWS_ENDPOINT_URL" --output text servicediscovery discover-instances "$@"
}
errs=$(mktemp)
trap 'rm -f "$errs"' EXIT
expect() { # expect WANT GOT WHAT
  if [ "$1" != "$2" ]; then echo "FAIL: $3: got '$2', want '$1'" >&2; exit 1; fi
  echo "ok: $3"
}
# wait_op OPERATION_ID: wait until the operation has finished; print its status.
wait_op() {
  local status
  for _ in $(seq 1 100); do
    status=$(aws servicediscovery get-operation --operation-id "$1" --query Operation.Status)
    case "$status" in SUCCESS|FAIL) echo "$status"; return ;; esac
    sleep 0.1
  done
  echo "FAIL: operation $1 still $status" >&2
  exit 1
}

# An HTTP namespace for resources without DNS names.
op=$(aws servicediscovery create-http-namespace --name shared --query OperationId)
expect SUCCESS "$(wait_op "$op")" "create-http-namespace"
ns=$(aws servicediscovery get-operation --operation-id "$op" --query Operation.Targets.NAMESPACE)
expect shared "$(aws servicediscovery get-namespace --id "$ns" --query Namespace.Properties.HttpProperties.HttpName)" "get-namespace"

svc=$(aws servicediscovery create-service --name logs --namespace-id "$ns" --query Service.Id)
expect HTTP "$(aws servicediscovery get-service --id "$svc" --query Service.Type)" "create-service"

op=$(aws servicediscovery register-instance --service-id "$svc" --instance-id shard-1 \
  --attributes ARN=arn:aws:s3:::testbucket,stage=beta,shard=s_1,read_only=no,path=/mylogs --query OperationId)
expect SUCCESS "$(wait_op "$op")" "register-instance shard-1"
op=$(aws servicediscovery register-instance --service-id "$svc" --instance-id shard-2 \
  --attributes ARN=arn:aws:s3:::prodbucket,stage=prod,shard=s_2,read_only=yes,path=/mylogs --query OperationId)
expect SUCCESS "$(wait_op "$op")" "register-instance shard-2"
expect "arn:aws:s3:::testbucket" "$(aws servicediscovery get-instance --service-id "$svc" --instance-id shard-1 --query Instance.Attributes.ARN)" "get-instance"

expect 2 "$(discover --namespace-name shared --service-name logs --query 'length(Instances)')" "discover-instances"
expect shard-1 "$(discover --namespace-name shared --service-name logs --query-parameters stage=beta --query 'Instances[0].InstanceId')" "discover-instances --query-parameters"
expect 1 "$(discover --namespace-name shared --service-name logs --query-parameters stage=beta --query 'length(Instances)')" "only the matching instance"
expect shard-2 "$(discover --namespace-name shared --service-name logs --optional-parameters read_only=yes --query 'Instances[0].InstanceId')" "discover-instances --optional-parameters"
expect 0 "$(discover --namespace-name shared --service-name logs --query-parameters stage=gamma --query 'length(Instances)')" "no instance matches"

if aws servicediscovery delete-service --id "$svc" 2>"$errs"; then echo "FAIL: deleted a service with instances" >&2; exit 1; fi
grep -q ResourceInUse "$errs"
echo "ok: delete-service refused while instances are registered"

# A public DNS namespace whose service answers A records, with a TCP health
# check. 192.168.10.2 is no address Wharf manages, so it is never contacted
# and stays healthy.
op=$(aws servicediscovery create-public-dns-namespace --name kouzie.com --query OperationId)
expect SUCCESS "$(wait_op "$op")" "create-public-dns-namespace"
pub=$(aws servicediscovery get-operation --operation-id "$op" --query Operation.Targets.NAMESPACE)
backend=$(aws servicediscovery create-service --name backend --dns-config "NamespaceId=$pub,DnsRecords=[{Type=A,TTL=60}]" \
  --health-check-config Type=TCP,FailureThreshold=3 --query Service.Id)
expect MULTIVALUE "$(aws servicediscovery get-service --id "$backend" --query Service.DnsConfig.RoutingPolicy)" "create-service --dns-config"
if aws servicediscovery register-instance --service-id "$backend" --instance-id web-1 --attributes stage=beta 2>"$errs"; then
  echo "FAIL: registered an instance without the address its A record needs" >&2; exit 1
fi
grep -q InvalidInput "$errs"
echo "ok: register-instance refused without AWS_INSTANCE_IPV4"
op=$(aws servicediscovery register-instance --service-id "$backend" --instance-id web-1 \
  --attributes AWS_INSTANCE_IPV4=192.168.10.2,AWS_INSTANCE_PORT=80,stage=beta,version=1.0,ready=yes --query OperationId)
expect SUCCESS "$(wait_op "$op")" "register-instance with an address"
expect HEALTHY "$(aws servicediscovery get-instances-health-status --service-id "$backend" --query Status.\"web-1\")" "get-instances-health-status"
expect 192.168.10.2 "$(discover --namespace-name kouzie.com --service-name backend --query-parameters version=1.0 --query 'Instances[0].Attributes.AWS_INSTANCE_IPV4')" "discover-instances in a DNS namespace"

# Clean up: deregister, then delete the services and namespaces.
for pair in "$svc shard-1" "$svc shard-2" "$backend web-1"; do
  set -- $pair
  op=$(aws servicediscovery deregister-instance --service-id "$1" --instance-id "$2" --query OperationId)
  expect SUCCESS "$(wait_op "$op")" "deregister-instance $2"
done
expect 0 "$(discover --namespace-name shared --service-name logs --query 'length(Instances)')" "no instances left"
aws servicediscovery delete-service --id "$svc"
aws servicediscovery delete-service --id "$backend"
echo "ok: delete-service"
expect SUCCESS "$(wait_op "$(aws servicediscovery delete-namespace --id "$ns" --query OperationId)")" "delete-namespace shared"
expect SUCCESS "$(wait_op "$(aws servicediscovery delete-namespace --id "$pub" --query OperationId)")" "delete-namespace kouzie.com"
expect 0 "$(aws servicediscovery list-namespaces --query 'length(Namespaces)')" "list-namespaces"
if aws servicediscovery get-namespace --id "$ns" 2>"$errs"; then echo "FAIL: a deleted namespace is still there" >&2; exit 1; fi
grep -q NamespaceNotFound "$errs"
echo "ok: get-namespace of a deleted namespace"
echo "session passed"
