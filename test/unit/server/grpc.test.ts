import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/loader.js';
import { serverCredentials, serverOptions } from '../../../src/server/grpc.js';
import { devCerts } from '../../helpers/certs.js';
import { tempDir } from '../../helpers/tmp.js';

describe('gRPC listener settings', () => {
  const tmp = tempDir();

  it('sets message size caps and stream limits from config', () => {
    const cfg = parseConfig('t.yaml', 'server: {max_receive_message_bytes: 8192, max_send_message_bytes: 4096, max_concurrent_streams: 7}');
    expect(serverOptions(cfg.server)).toMatchObject({ maxReceiveBytes: 8192, maxSendBytes: 4096, maxConcurrentStreams: 7 });
  });

  it('refuses a world-readable TLS private key, naming the key', async () => {
    const certs = devCerts(`${tmp.dir}/certs`);
    tmp.write('open.key', certs.read('server.key'), 0o644);
    const cfg = parseConfig('t.yaml', 'server: {tls: {cert_file: certs/server.crt, key_file: open.key}}');
    await expect(serverCredentials({ file: 't.yaml', dir: tmp.dir }, cfg.server)).rejects.toMatchObject({
      code: 'config_invalid',
      problems: [{ keyPath: '/server/tls/key_file' }],
    });
  });
});
