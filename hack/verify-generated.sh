#!/usr/bin/env bash
# Checks that generated code is what tools/apigen makes from its inputs:
#
#   - internal/ecs/state from the schema pinned beside it and the committed
#     wire types, whatever botocore is installed: this check always runs;
#   - internal/api/* from the installed botocore models. That check needs the
#     botocore version the code was generated from; with another version it
#     says so and passes.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

cp internal/ecs/state/zz_generated_records.go "$tmp/zz_generated_records.go"
go generate ./internal/ecs/state/
if ! diff -q "$tmp/zz_generated_records.go" internal/ecs/state/zz_generated_records.go >/dev/null; then
  echo "verify-generate: internal/ecs/state is stale; run 'make generate' and commit the result"
  status=1
fi

want=$(sed -n 's/.*botocore [a-z]* model \([0-9.]*\);.*/\1/p' internal/api/ecs/zz_generated_types.go | head -1)
have=$(python3 -c 'import botocore; print(botocore.__version__)' 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  echo "verify-generate: internal/api skipped: the code was generated from botocore $want, and ${have:-no botocore} is installed"
  exit $status
fi
for pkg in ecs servicediscovery; do
  cp -r "internal/api/$pkg" "$tmp/$pkg"
done
go generate ./internal/api/...
for pkg in ecs servicediscovery; do
  if ! diff -r -q "$tmp/$pkg" "internal/api/$pkg" >/dev/null; then
    echo "verify-generate: internal/api/$pkg is stale; run 'make generate' and commit the result"
    status=1
  fi
done
exit $status
