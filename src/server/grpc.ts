// The gRPC listener: message-size caps set deliberately, optional TLS/mTLS, no reflection service.
import type { Server} from '@grpc/grpc-js';
import { ServerCredentials, type ChannelOptions } from '@grpc/grpc-js';
import { readReferencedFile } from '../config/files.js';
import type { LoadedConfig } from '../config/loader.js';
import type { ServerConfig } from '../config/schema.js';

export function serverOptions(cfg: ServerConfig): ChannelOptions {
  return {
    'grpc.max_receive_message_length': cfg.max_receive_message_bytes,
    'grpc.max_send_message_length': cfg.max_send_message_bytes,
    'grpc.max_concurrent_streams': cfg.max_concurrent_streams,
    // Envoy keeps long-lived HTTP/2 connections; answer its pings, drop dead peers.
    'grpc.keepalive_time_ms': 60_000,
    'grpc.keepalive_timeout_ms': 20_000,
    'grpc.keepalive_permit_without_calls': 1,
  };
}

export async function serverCredentials(loaded: Pick<LoadedConfig, 'file' | 'dir'>, cfg: ServerConfig): Promise<ServerCredentials> {
  if (!cfg.tls) return ServerCredentials.createInsecure();
  const at = '/server/tls';
  const [cert, key, ca] = await Promise.all([
    readReferencedFile(loaded, `${at}/cert_file`, cfg.tls.cert_file),
    readReferencedFile(loaded, `${at}/key_file`, cfg.tls.key_file, { secret: true }),
    cfg.tls.client_ca_file === undefined ? undefined : readReferencedFile(loaded, `${at}/client_ca_file`, cfg.tls.client_ca_file),
  ]);
  // Node's TLS floor is 1.2 (raised in main.ts should a runtime flag have lowered it).
  return ServerCredentials.createSsl(ca ?? null, [{ cert_chain: cert, private_key: key }], ca !== undefined);
}

export function bind(server: Server, address: string, creds: ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port)));
  });
}
