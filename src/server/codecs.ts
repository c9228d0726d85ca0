// The Check and ShouldRateLimit methods as the transport serves them: proto-loader's definitions
// with our one-pass request decoder and fast response writers (the same objects and bytes as
// proto-loader's own, a fraction of the garbage). One place, so the service, its warm-up and the
// allocation tests run the same code.
import { checkResponseWriter } from '../envoy/check-response-wire.js';
import { plainDecoder } from '../envoy/plain-decoder.js';
import { envoyProtos, envoyReflection } from '../envoy/protos.js';
import { rateLimitResponseWriter } from './rls-response-wire.js';

/** Authorization/Check. */
export function checkMethod() {
  const def = envoyProtos().envoy.service.auth.v3.Authorization.service.Check;
  return {
    ...def,
    requestDeserialize: plainDecoder(envoyReflection().lookupType('envoy.service.auth.v3.CheckRequest'), def.requestDeserialize),
    responseSerialize: checkResponseWriter(def.responseSerialize as (v: unknown) => Buffer),
  };
}

/** RateLimitService/ShouldRateLimit. */
export function shouldRateLimitMethod() {
  const def = envoyProtos().envoy.service.ratelimit.v3.RateLimitService.service.ShouldRateLimit;
  return {
    ...def,
    requestDeserialize: plainDecoder(envoyReflection().lookupType('envoy.service.ratelimit.v3.RateLimitRequest'), def.requestDeserialize),
    responseSerialize: rateLimitResponseWriter(def.responseSerialize as (v: unknown) => Buffer),
  };
}
