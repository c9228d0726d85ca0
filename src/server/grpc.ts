// The gRPC listener's settings: message-size caps set deliberately, optional TLS/mTLS, connection
// lifetime and abuse limits (docs/operations.md "Hardening"). No reflection service.
import { readReferencedFile } from '../config/files.js';
import type { LoadedConfig } from '../config/loader.js';
import type { ServerConfig } from '../config/schema.js';
import type { TlsMaterial, TransportOptions } from './transport.js';

export function serverOptions(cfg: ServerConfig): TransportOptions {
  return {
    maxReceiveBytes: cfg.max_receive_message_bytes,
    maxSendBytes: cfg.max_send_message_bytes,
    maxConcurrentStreams: cfg.max_concurrent_streams,
    bodyTimeoutMs: cfg.body_timeout_ms,
    prefaceTimeoutMs: cfg.http2_preface_timeout_ms,
    maxConnectionAgeMs: cfg.max_connection_age_ms,
    maxConnectionAgeGraceMs: cfg.max_connection_age_grace_ms,
    maxConnectionIdleMs: cfg.max_connection_idle_ms,
    // Envoy keeps long-lived HTTP/2 connections: ping them, drop dead peers.
    keepaliveTimeMs: cfg.keepalive_time_ms,
    keepaliveTimeoutMs: cfg.keepalive_timeout_ms,
    keepaliveMinPingIntervalMs: cfg.keepalive_min_ping_interval_ms,
    maxResetsPerSecond: cfg.max_stream_resets_per_second,
    maxSessionMemoryMb: cfg.max_session_memory_mb,
  };
}

/** The listener's certificate, key and (for mTLS) client CA; undefined for plaintext. */
export async function serverCredentials(loaded: Pick<LoadedConfig, 'file' | 'dir'>, cfg: ServerConfig): Promise<TlsMaterial | undefined> {
  if (!cfg.tls) return undefined;
  const at = '/server/tls';
  const [cert, key, ca] = await Promise.all([
    readReferencedFile(loaded, `${at}/cert_file`, cfg.tls.cert_file),
    readReferencedFile(loaded, `${at}/key_file`, cfg.tls.key_file, { secret: true }),
    cfg.tls.client_ca_file === undefined ? undefined : readReferencedFile(loaded, `${at}/client_ca_file`, cfg.tls.client_ca_file),
  ]);
  // Node's TLS floor is 1.2 (raised in main.ts should a runtime flag have lowered it).
  return { cert, key, ...(ca ? { ca } : {}) };
}
