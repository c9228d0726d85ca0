#!/bin/sh
# The image's entrypoint: envoy-authz under node with the options that fit the CPUs this container
# may use (dist/src/cli/node-flags.js: --single-threaded-gc at one CPU; see src/server/gc-threads.ts).
# NODE_FLAGS, when set, replaces that choice. Arguments go to envoy-authz.
set -eu
app=$(cd "$(dirname "$0")/.." && pwd)
flags=${NODE_FLAGS-$(node "$app/dist/src/cli/node-flags.js")}
# shellcheck disable=SC2086 # the flags are words
exec node $flags "$app/dist/src/main.js" "$@"
