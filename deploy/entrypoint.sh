#!/bin/sh
# The image's entrypoint: envoy-authz under node with the options that fit the CPUs this container
# may use (dist/src/cli/node-flags.js: --single-threaded-gc --heap-growing-percent=10 at one CPU; see
# src/server/gc-threads.ts).
# NODE_FLAGS, when set, replaces that choice. Arguments go to envoy-authz.
set -eu
app=$(cd "$(dirname "$0")/.." && pwd)
# node-flags.js runs without NODE_OPTIONS (a preload there would run twice, and what it prints would
# become options); it reads them from its argument, so an operator's GC option there is kept.
flags=${NODE_FLAGS-$(NODE_OPTIONS='' node "$app/dist/src/cli/node-flags.js" "${NODE_OPTIONS-}")}
# The flags are words: split them, but never expand a glob in them.
set -f
# shellcheck disable=SC2086
exec node $flags "$app/dist/src/main.js" "$@"
