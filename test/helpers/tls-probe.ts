// Offers TLS 1.1 for real. Node's own client refuses to (its OpenSSL security level forbids it),
// so a Node-based "refuses TLS 1.1" test passes whatever the server allows; `openssl s_client`
// at security level 0 does offer it, and `legacyTlsServer` proves that it does.
import { execFile } from 'node:child_process';
import { createServer } from 'node:tls';
import { afterAll } from 'vitest';

export type ProbeOutcome = 'negotiated TLSv1.1' | 'refused';

export function offerTls11(port: number, host = '127.0.0.1'): Promise<ProbeOutcome> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'openssl',
      ['s_client', '-connect', `${host}:${port}`, '-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0', '-servername', 'localhost'],
      { timeout: 10_000 },
      (err, stdout) => {
        if (err && 'killed' in err && err.killed) return reject(new Error('openssl s_client timed out'));
        // s_client prints the protocol it tried even when the handshake failed; a cipher is only
        // printed for a completed handshake ("Cipher is (NONE)" otherwise).
        const completed = /^New, .*Cipher is (?!\(NONE\))\S+/m.test(stdout);
        resolve(completed && /^\s*Protocol\s*:\s*TLSv1\.1\s*$/m.test(stdout) ? 'negotiated TLSv1.1' : 'refused');
      },
    );
    child.stdin?.end();
  });
}

/** A TLS server that still accepts TLS 1.0 and 1.1: the probe's control. */
export async function legacyTlsServer(cert: Buffer, key: Buffer): Promise<number> {
  const server = createServer({ cert, key, minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' }, (socket) => socket.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as { port: number }).port;
}
