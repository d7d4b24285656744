#!/usr/bin/env bash
# Regenerates proto/generated/ from proto/*.proto. The output is committed; CI checks it is current.
set -euo pipefail
cd "$(dirname "$0")"
rm -rf generated
npx proto-loader-gen-types --keepCase --longs=String --enums=String --defaults --oneofs --grpcLib=@grpc/grpc-js \
  --outDir=generated --targetFileExtension=.ts --importFileExtension=.ts federation.proto
