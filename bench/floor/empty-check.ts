// The floor of the Check comparison: grpc-js serving Envoy's Authorization service with a
// handler that answers OK at once. Whatever envoy-authz costs above this is our own work.
// It answers ShouldRateLimit with OK too, so that it can stand behind both of Envoy's filters
// (bench/scenarios/envoy.ts: what the filters cost through Envoy with a server that does nothing).
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { envoyProtos } from '../../src/envoy/protos.js';

const port = Number(process.argv[2] ?? '0');
const server = new Server({ 'grpc.max_concurrent_streams': 1000 });
server.addService(envoyProtos().envoy.service.auth.v3.Authorization.service, {
  Check: (_call: unknown, callback: (err: null, res: { status: { code: number } }) => void) => callback(null, { status: { code: 0 } }),
});
server.addService(envoyProtos().envoy.service.ratelimit.v3.RateLimitService.service, {
  ShouldRateLimit: (_call: unknown, callback: (err: null, res: { overall_code: string }) => void) => callback(null, { overall_code: 'OK' }),
});
server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err) => {
  if (err) throw err;
});
process.once('SIGTERM', () => server.forceShutdown());
