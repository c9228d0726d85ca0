// Real gRPC clients for the service under test: Envoy's Authorization and the standard Health.
import { Client, credentials, loadPackageDefinition, Metadata, type ChannelCredentials, type ChannelOptions, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import type { CheckRequest, CheckRequest__Output } from '../../src/gen/envoy/service/auth/v3/CheckRequest.js';
import type { CheckResponse__Output } from '../../src/gen/envoy/service/auth/v3/CheckResponse.js';
import type { RateLimitResponse__Output } from '../../src/gen/envoy/service/ratelimit/v3/RateLimitResponse.js';
import { envoyProtos } from '../../src/envoy/protos.js';

export interface AuthzClient {
  /** Accepts the decoded (__Output) shape the builders make: on the wire the two are the same message. */
  check(req: CheckRequest | CheckRequest__Output, deadlineMs?: number): Promise<CheckResponse__Output>;
  close(): void;
}

export function authzClient(address: string, creds: ChannelCredentials = credentials.createInsecure(), options: ChannelOptions = {}): AuthzClient {
  const Ctor = envoyProtos().envoy.service.auth.v3.Authorization;
  const client = new Ctor(address, creds, options);
  return {
    check: (req, deadlineMs = 5000) =>
      new Promise((resolve, reject) => {
        client.Check(req as CheckRequest, new Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(err) : resolve(res!)));
      }),
    close: () => client.close(),
  };
}

interface HealthStub extends Client {
  check(req: { service: string }, cb: (err: ServiceError | null, res?: { status: string }) => void): void;
}

export function healthCheck(address: string, service = '', creds: ChannelCredentials = credentials.createInsecure()): Promise<string> {
  const pkg = loadPackageDefinition(loadSync(healthProtoPath, { enums: String })) as unknown as {
    grpc: { health: { v1: { Health: new (addr: string, c: ChannelCredentials) => HealthStub } } };
  };
  const client = new pkg.grpc.health.v1.Health(address, creds);
  return new Promise((resolve, reject) => {
    client.check({ service }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res!.status);
    });
  });
}

/** Calls any unary method path with an empty message: used to prove a service is not there. */
export function callRaw(address: string, path: string): Promise<ServiceError | null> {
  const c = new Client(address, credentials.createInsecure());
  return new Promise((resolve) => {
    c.makeUnaryRequest(
      path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
      (err: ServiceError | null) => {
        c.close();
        resolve(err);
      },
    );
  });
}

export interface RlsClient {
  shouldRateLimit(domain: string, descriptors: [string, string][][], hits?: number): Promise<RateLimitResponse__Output>;
  close(): void;
}

/** `ownConnection`: a connection of its own (grpc-js otherwise shares one among clients of one address). */
export function rlsClient(address: string, opts: { ownConnection?: boolean } = {}): RlsClient {
  const Ctor = envoyProtos().envoy.service.ratelimit.v3.RateLimitService;
  const client = new Ctor(address, credentials.createInsecure(), opts.ownConnection ? { 'grpc.use_local_subchannel_pool': 1 } : {});
  return {
    shouldRateLimit: (domain, descriptors, hits) =>
      new Promise((resolve, reject) => {
        client.ShouldRateLimit(
          { domain, descriptors: descriptors.map((d) => ({ entries: d.map(([key, value]) => ({ key, value })) })), ...(hits !== undefined ? { hits_addend: hits } : {}) },
          new Metadata(),
          { deadline: Date.now() + 5000 },
          (err, res) => (err ? reject(err) : resolve(res!)),
        );
      }),
    close: () => client.close(),
  };
}
