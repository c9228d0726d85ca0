// `make run`: the whole local stack in the foreground - demo upstream, envoy-authz, Envoy -
// on embedded defaults. Ctrl-C (or any component exiting) stops all of it.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { startEchoUpstream } from './echo-upstream.js';
import { ensureDevIssuer } from './issuer.js';
import { ensureDevApiKey, ensureDevSigningKey } from './local-secrets.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const envoyBin = process.env.ENVOY_BIN ?? 'envoy';

function say(msg: string): void {
  process.stderr.write(`[stack] ${msg}\n`);
}

async function main(): Promise<void> {
  if (await ensureDevIssuer(join(root, '.dev', 'issuer'))) say('created the development issuer key in .dev/issuer');
  await ensureDevApiKey(join(root, '.dev'));
  await ensureDevSigningKey(join(root, '.dev'));
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

  start('envoy-authz', process.execPath, [join(root, 'dist', 'src', 'main.js'), '--config', join(root, 'envoy', 'local', 'authz.yaml')]);
  start('envoy', envoyBin, ['-c', join(root, 'envoy', 'envoy.yaml'), '--log-level', 'warn', '--base-id', '9191']);
  say('envoy-authz on 127.0.0.1:9191 (admin 127.0.0.1:9192), Envoy on http://127.0.0.1:8080, https://127.0.0.1:8443, mTLS https://127.0.0.1:8444');
  say('try: curl -H "Authorization: Bearer $(make -s token)" http://127.0.0.1:8080/hello');
  say('     curl -H "x-api-key: $(make -s apikey)" http://127.0.0.1:8080/hello');
  process.once('SIGINT', () => stopAll(0));
  process.once('SIGTERM', () => stopAll(0));
}

main().catch((err: unknown) => {
  say(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
});
