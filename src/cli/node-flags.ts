// Prints the node options envoy-authz should start with on this machine (deploy/entrypoint.sh
// runs it, then node with them): --single-threaded-gc when the process may use one CPU.
import { serviceGcFlags } from '../server/gc-threads.js';

process.stdout.write(`${serviceGcFlags([]).join(' ')}\n`);
