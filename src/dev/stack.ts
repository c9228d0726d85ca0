// `make run`: the whole local stack in the foreground - demo upstream, envoy-authz, Envoy -
// on embedded defaults. Ctrl-C (or any component exiting) stops all of it.
import { errorMessage } from '../lib/errors.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { serviceGcFlags } from '../server/gc-threads.js';
import { dirname, join } from 'node:path';
import { startEchoUpstream } from './echo-upstream.js';
import { ensureDevIssuer } from './issuer.js';
import { ensureDevAdminToken, ensureDevApiKey, ensureDevSigningKey } from './local-secrets.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const envoyBin = process.env.ENVOY_BIN ?? 'envoy';

function say(msg: string): void {
  process.stderr.write(`[stack] ${msg}\n`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `url` until it answers 200 (true) or `timeoutMs` passes (false). */
async function waitFor(url: string, timeoutMs: number, stopped: () => boolean): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until && !stopped()) {
    const ok = await fetch(url, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return true;
    await sleep(200);
  }
  return false;
}

async function main(): Promise<void> {
  if (await ensureDevIssuer(join(root, '.dev', 'issuer'))) say('created the development issuer key in .dev/issuer');
  await ensureDevApiKey(join(root, '.dev'));
  await ensureDevSigningKey(join(root, '.dev'));
  await ensureDevAdminToken(join(root, '.dev'));
  const upstream = await startEchoUpstream('127.0.0.1', 9080);
  say('demo upstream on 127.0.0.1:9080');

  const children: ChildProcess[] = [];
  let stopping = false;
  const stopAll = (code: number): void => {
    if (stopping) return;
    stopping = true;
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    upstream.server.close();
    process.exitCode = code;
  };
  const start = (name: string, cmd: string, args: string[]): void => {
    const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', (err) => {
      say(`${name} failed to start: ${err.message}`);
      stopAll(1);
    });
    child.on('exit', (code, signal) => {
      if (!stopping) say(`${name} exited (${signal ?? code}); stopping the stack`);
      stopAll(stopping ? 0 : 1);
    });
    children.push(child);
  };

  process.once('SIGINT', () => stopAll(0));
  process.once('SIGTERM', () => stopAll(0));

  // Envoy starts once envoy-authz is ready: its first health check of the ext_authz cluster then
  // passes, instead of marking the cluster failed (and serving through panic mode) for a minute.
  start('envoy-authz', process.execPath, [...serviceGcFlags([]), join(root, 'dist', 'src', 'main.js'), '--config', join(root, 'envoy', 'local', 'authz.yaml')]);
  if (!(await waitFor('http://127.0.0.1:9192/readyz', 60_000, () => stopping))) {
    if (!stopping) say('envoy-authz did not become ready within 60 s (see its log above); stopping the stack');
    return stopAll(1);
  }
  say('envoy-authz ready on 127.0.0.1:9191 (admin 127.0.0.1:9192)');
  start('envoy', envoyBin, ['-c', join(root, 'envoy', 'envoy.yaml'), '--log-level', 'warn', '--base-id', '9191']);
  if (!(await waitFor('http://127.0.0.1:9901/ready', 60_000, () => stopping))) {
    if (!stopping) say('Envoy did not become ready within 60 s (see its log above); stopping the stack');
    return stopAll(1);
  }
  say('Envoy ready on http://127.0.0.1:8080, https://127.0.0.1:8443, mTLS https://127.0.0.1:8444');
  say('try: curl -H "Authorization: Bearer $(make -s token)" http://127.0.0.1:8080/hello');
  say('     curl -H "x-api-key: $(make -s apikey)" http://127.0.0.1:8080/hello');
  say('     curl -H "Authorization: Bearer $(make -s admin-token)" http://127.0.0.1:9192/v1/revocations');
  say('     curl -i -H "Authorization: Bearer $(make -s token)" "http://127.0.0.1:8080/hello?count=99"   (400: envoy/local/openapi.yaml)');
}

main().catch((err: unknown) => {
  say(errorMessage(err));
  process.exitCode = 1;
});
