// Server CPU per call of an empty Check handler: grpc-js's Server against our transport
// (src/server/transport.ts, with the production defaults of serverOptions), under the same
// client load (grpc-js client, 32 calls in flight, one connection). Indicative on a shared
// machine: run it a few times. Usage: npx tsx bench/floor/transport-cpu.ts [calls] [rounds]
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { parseConfig } from '../../src/config/loader.js';
import { serverOptions } from '../../src/server/grpc.js';
import { envoyProtos } from '../../src/envoy/protos.js';
import { GrpcServer } from '../../src/server/transport.js';
import { authzClient } from '../../test/helpers/grpc.js';
import { checkRequest } from '../../test/helpers/requests.js';

type Kind = 'grpc-js' | 'lean';
const service = (): Parameters<Server['addService']>[0] => envoyProtos().envoy.service.auth.v3.Authorization.service;
const empty = { Check: (_c: unknown, cb: (e: null, r: { status: { code: number } }) => void) => cb(null, { status: { code: 0 } }) };

async function serve(kind: Kind): Promise<void> {
  let port: number;
  if (kind === 'grpc-js') {
    const server = new Server({ 'grpc.max_concurrent_streams': 1000 });
    server.addService(service(), empty);
    port = await new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  } else {
    const server = new GrpcServer(serverOptions(parseConfig('bench.yaml', '{}').server));
    server.addService(service(), empty);
    port = await server.bind('127.0.0.1:0', undefined);
  }
  process.send?.({ port });
  process.on('message', () => {
    const u = process.cpuUsage();
    process.send?.({ cpuUs: u.user + u.system });
  });
}

async function measure(kind: Kind, calls: number): Promise<number> {
  const child = fork(fileURLToPath(import.meta.url), ['serve', kind], { execArgv: ['--import', 'tsx'] });
  const next = (): Promise<{ port?: number; cpuUs?: number }> => new Promise((r) => child.once('message', (m) => r(m as { port?: number; cpuUs?: number })));
  const { port } = await next();
  const client = authzClient(`127.0.0.1:${port}`);
  const req = checkRequest();
  const run = async (n: number): Promise<void> => {
    let left = n;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (left-- > 0) await client.check(req);
      }),
    );
  };
  await run(2000); // warm-up: JIT, connection
  child.send('cpu');
  const before = (await next()).cpuUs!;
  await run(calls);
  child.send('cpu');
  const after = (await next()).cpuUs!;
  client.close();
  child.kill();
  return (after - before) / calls;
}

if (process.argv[2] === 'serve') {
  await serve(process.argv[3] as Kind);
} else {
  const calls = Number(process.argv[2] ?? 20000);
  const rounds = Number(process.argv[3] ?? 3);
  const results: Record<Kind, number[]> = { 'grpc-js': [], lean: [] };
  for (let i = 0; i < rounds; i++) {
    for (const kind of ['grpc-js', 'lean'] as const) results[kind].push(await measure(kind, calls));
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  for (const kind of ['grpc-js', 'lean'] as const) {
    console.log(`${kind}: server CPU ${median(results[kind]).toFixed(1)} us/call (runs: ${results[kind].map((x) => x.toFixed(1)).join(', ')})`);
  }
}
