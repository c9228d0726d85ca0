// grpc.health.v1.Health: one status per component service and one for the whole server ('').
import type { Server } from '@grpc/grpc-js';
import type { GrpcServer } from './transport.js';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';

export const AUTHZ_SERVICE = 'envoy.service.auth.v3.Authorization';
export const RLS_SERVICE = 'envoy.service.ratelimit.v3.RateLimitService';

export class Health {
  private readonly impl: HealthImplementation;
  private readonly services: readonly string[];

  constructor(services: readonly string[]) {
    this.services = ['', ...services];
    this.impl = new HealthImplementation(Object.fromEntries(this.services.map((s) => [s, 'NOT_SERVING'])));
  }

  addTo(server: GrpcServer): void {
    // The library registers its handlers through addService only; ours takes the same arguments.
    const registrar = { addService: (def: Parameters<Server['addService']>[0], impl: Parameters<Server['addService']>[1]) => server.addService(def, impl) };
    this.impl.addToServer(registrar);
  }

  setAll(status: ServingStatus): void {
    for (const s of this.services) this.impl.setStatus(s, status);
  }

  /** Sets one service's status (a service this server does not have is ignored). */
  set(service: string, status: ServingStatus): void {
    if (this.services.includes(service)) this.impl.setStatus(service, status);
  }
}
