// Prints the node options envoy-authz should start with on this machine (deploy/entrypoint.sh
// runs it, then node with them): --single-threaded-gc --heap-growing-percent=10 when the process
// may use one CPU. Its one argument is the NODE_OPTIONS the service will run with (the entrypoint
// runs this without them).
import { serviceGcFlags } from '../server/gc-threads.js';

process.stdout.write(`${serviceGcFlags([], process.argv[2] ?? '').join(' ')}\n`);
