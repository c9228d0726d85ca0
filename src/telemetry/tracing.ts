// OpenTelemetry traces, off unless the standard environment asks for them:
//   OTEL_TRACES_EXPORTER=otlp  OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318
//   OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf (default) | grpc
// One span per Check and per ShouldRateLimit, joined to the caller's trace (W3C traceparent or
// B3, from the gRPC metadata Envoy sends, else from the HTTP headers inside the CheckRequest),
// with child spans per stage. Attributes name outcomes and identities, never credentials.
// Resource: service.name, service.version, service.instance.id, OTEL_RESOURCE_ATTRIBUTES
// (resource.ts). An unreachable collector is logged once, and its return once (export-watch.ts).
import { context, INVALID_SPAN_CONTEXT, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type TextMapGetter } from '@opentelemetry/api';
import type { Metadata } from '@grpc/grpc-js';
import { CompositePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { B3InjectEncoding, B3Propagator } from '@opentelemetry/propagator-b3';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { WatchedSpanExporter } from './export-watch.js';
import type { Logger } from './logger.js';
import { NO_METRICS, secondsSince, type MetricsSink } from './metrics.js';
import { serviceResource } from './resource.js';
import { isPromise, type Maybe } from '../lib/maybe.js';

const TRACER = 'envoy-authz';

/**
 * Whether a tracer provider is registered. Off (the default), spans are not made at all: the
 * no-op tracer still allocated a tracer, a span and a context per call and per stage, for nothing
 * (with no propagator registered there is no caller context to carry either).
 */
let tracingOn = false;
/** The span handed to code that runs while tracing is off. */
export const NOOP_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

export interface Tracing {
  readonly enabled: boolean;
  shutdown(): Promise<void>;
}

/** Registers the global tracer provider when OTEL_TRACES_EXPORTER=otlp; otherwise spans are no-ops. */
export async function setupTracing(log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<Tracing> {
  if ((env.OTEL_TRACES_EXPORTER ?? 'none') !== 'otlp') return { enabled: false, shutdown: () => Promise.resolve() };
  const grpc = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf';
  // The endpoint as the OTLP specification derives it (the exporters read headers, timeouts and
  // TLS settings from the OTEL_EXPORTER_OTLP_* variables themselves).
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.replace(/\/+$/, '');
  const url = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? (base && grpc !== 'grpc' ? `${base}/v1/traces` : base);
  const exporter =
    grpc === 'grpc'
      ? new (await import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter(url ? { url } : {})
      : new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter(url ? { url } : {});
  // Userinfo in the endpoint (http://user:pass@host) is never logged.
  const shown = (url ?? (grpc === 'grpc' ? 'http://localhost:4317' : 'http://localhost:4318/v1/traces')).replace(/\/\/[^/@]*@/, '//');
  const delay = Number(env.OTEL_BSP_SCHEDULE_DELAY);
  const provider = new NodeTracerProvider({
    resource: serviceResource(env),
    spanProcessors: [new BatchSpanProcessor(new WatchedSpanExporter(exporter, log, shown), Number.isFinite(delay) && delay > 0 ? { scheduledDelayMillis: delay } : {})],
  });
  provider.register({
    propagator: new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER })] }),
  });
  log.info({ event: 'tracing_enabled', protocol: grpc, endpoint: shown }, 'OpenTelemetry tracing on');
  tracingOn = true;
  return {
    enabled: true,
    shutdown: () => {
      tracingOn = false;
      return provider.shutdown();
    },
  };
}

const mapGetter: TextMapGetter<ReadonlyMap<string, string>> = {
  keys: (c) => [...c.keys()],
  get: (c, k) => c.get(k.toLowerCase()),
};

/** The metadata as a lower-case map of single string values; binary values are left out. */
function metadataMap(md: Metadata): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(md.getMap())) if (typeof v === 'string') out.set(k.toLowerCase(), v);
  return out;
}

/**
 * The caller's context: from the gRPC call's metadata, else from the proxied request's headers.
 * With tracing off there is no propagator and nothing to read (no metadata map per call).
 */
export function callerContext(grpcMetadata: Metadata, httpHeaders: ReadonlyMap<string, string> | undefined): Context {
  if (!tracingOn) return ROOT_CONTEXT;
  const fromGrpc = propagation.extract(ROOT_CONTEXT, metadataMap(grpcMetadata), mapGetter);
  if (trace.getSpanContext(fromGrpc)) return fromGrpc;
  return httpHeaders ? propagation.extract(ROOT_CONTEXT, httpHeaders, mapGetter) : ROOT_CONTEXT;
}

/** Runs `fn` in a SERVER span under `parent`; the span ends when what `fn` returns has settled. */
export function serverSpan<T>(name: string, parent: Context, fn: (span: Span) => Maybe<T>): Maybe<T> {
  return serverSpanCall(name, parent, callWithSpan, fn) as Maybe<T>;
}

const callWithSpan = (fn: (span: Span) => unknown, span: Span): unknown => fn(span);

/** serverSpan for `fn(a, span)`: no closure per call on the hot path. */
export function serverSpanCall<A, T>(name: string, parent: Context, fn: (a: A, span: Span) => Maybe<T>, a: A): Maybe<T> {
  if (!tracingOn) return fn(a, NOOP_SPAN);
  return trace.getTracer(TRACER).startActiveSpan(name, { kind: SpanKind.SERVER }, parent, (span) => {
    let r: Maybe<T>;
    try {
      r = fn(a, span);
    } catch (err) {
      span.end();
      throw err;
    }
    if (!isPromise(r)) {
      span.end();
      return r;
    }
    return r.finally(() => span.end());
  });
}

/**
 * Runs `fn` in a child span of the active one; errors mark the span and propagate. Also times the
 * stage for `metrics`' stage-latency histogram. A stage that answers synchronously is ended and
 * timed synchronously (no promise), so a Check whose stages all answer at once makes none.
 */
export function childSpan<T>(name: string, attributes: Attributes, fn: () => T, metrics: MetricsSink = NO_METRICS): T {
  return childSpanCall(name, attributes, callThunk, fn, undefined, undefined, metrics) as T;
}

const callThunk = (fn: () => unknown): unknown => fn();

/**
 * childSpan for `fn(a, b, c)`: the hot path passes a function and its arguments instead of making
 * a closure per call.
 */
export function childSpanCall<A, B, C, T>(name: string, attributes: Attributes, fn: (a: A, b: B, c: C) => T, a: A, b: B, c: C, metrics: MetricsSink = NO_METRICS): T {
  const started = performance.now();
  if (!tracingOn) {
    let r: T;
    try {
      r = fn(a, b, c);
    } catch (err) {
      metrics.stage(name, secondsSince(started));
      throw err;
    }
    // A promise in, a promise out: `T` is that promise's type.
    if (r instanceof Promise) return timedStage(name, r, started, metrics) as T;
    metrics.stage(name, secondsSince(started));
    return r;
  }
  return trace.getTracer(TRACER).startActiveSpan(name, { attributes }, context.active(), (span) => {
    const ended = (): void => {
      span.end();
      metrics.stage(name, secondsSince(started));
    };
    const failed = (err: unknown): never => {
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorCode(err) });
      ended();
      throw err;
    };
    let r: T;
    try {
      r = fn(a, b, c);
    } catch (err) {
      return failed(err);
    }
    if (r instanceof Promise) {
      return r.then((v: unknown) => {
        ended();
        return v;
      }, failed) as T;
    }
    ended();
    return r;
  });
}

/** Our errors' `code`; anything else (a null thrown included) is just 'error'. */
function errorCode(err: unknown): string {
  const code = err !== null && typeof err === 'object' ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : 'error';
}

/** Tracing off, a stage that waits: timed when it settles (an async function: fewer objects per call than `.finally`). */
async function timedStage(name: string, pending: Promise<unknown>, started: number, metrics: MetricsSink): Promise<unknown> {
  try {
    return await pending;
  } finally {
    metrics.stage(name, secondsSince(started));
  }
}

/** The trace id of the active span, if any (for audit records). */
export function activeTraceId(): string | undefined {
  if (!tracingOn) return undefined;
  const sc = trace.getActiveSpan()?.spanContext();
  return sc && trace.isSpanContextValid(sc) ? sc.traceId : undefined;
}
