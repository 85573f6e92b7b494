#!/usr/bin/env bash
# Checks that internal/api/* is what tools/apigen makes from the installed
# botocore models. The check needs the botocore version the code was
# generated from; with another version it says so and passes.
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(sed -n 's/.*botocore [a-z]* model \([0-9.]*\);.*/\1/p' internal/api/ecs/zz_generated_types.go | head -1)
have=$(python3 -c 'import botocore; print(botocore.__version__)' 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  echo "verify-generate: skipped: the code was generated from botocore $want, and ${have:-no botocore} is installed"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for pkg in ecs servicediscovery; do
  cp -r "internal/api/$pkg" "$tmp/$pkg"
done
go generate ./internal/api/...
status=0
for pkg in ecs servicediscovery; do
  if ! diff -r -q "$tmp/$pkg" "internal/api/$pkg" >/dev/null; then
    echo "verify-generate: internal/api/$pkg is stale; run 'make generate' and commit the result"
    status=1
  fi
done
exit $status
