// An unreachable trace collector is said once (not once per export), and its return once, while
// spans keep being made; nothing else is logged about it. A real OTLP/HTTP receiver appears on
// the port the exporter had been failing to reach. (A file of its own: the tracer provider is
// process-global.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { createLogger } from '../../src/telemetry/logger.js';
import { serverSpan, setupTracing, type Tracing } from '../../src/telemetry/tracing.js';
import { freePort } from '../helpers/ports.js';
import { capture } from '../helpers/log.js';
import { startOtlpReceiver } from '../helpers/otlp.js';

// The exporter's own retries end within this (it reads the variable from the process environment).
process.env.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT = '1000';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('trace exporter reachability', () => {
  const logs = capture();
  let port: number;
  let tracing: Tracing;
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>> | undefined;

  beforeAll(async () => {
    port = await freePort();
    tracing = await setupTracing(createLogger('info', logs.stream), {
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_BSP_SCHEDULE_DELAY: '50',
    });
  });
  afterAll(async () => {
    await tracing?.shutdown();
    receiver?.server.close();
  });

  const events = (name: string): Record<string, unknown>[] => logs.lines().filter((l) => l.event === name);
  /** Makes a span every 50 ms until `done` or the time is up. */
  async function spansUntil(done: () => boolean, ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (!done() && Date.now() < until) {
      await serverSpan('probe', ROOT_CONTEXT, () => Promise.resolve());
      await sleep(50);
    }
  }

  it('logs one warning while the collector is away, then one line when it answers again', async () => {
    await spansUntil(() => events('trace_export_failed').length > 0, 15_000);
    expect(events('trace_export_failed')).toHaveLength(1);
    expect(events('trace_export_failed')[0]).toMatchObject({ level: 'warn', endpoint: `http://127.0.0.1:${port}/v1/traces` });
    // Several more batches fail: still one line.
    await spansUntil(() => false, 3000);
    expect(events('trace_export_failed')).toHaveLength(1);

    receiver = await startOtlpReceiver(port);
    await spansUntil(() => events('trace_export_recovered').length > 0 && receiver!.spans.length > 0, 15_000);
    await spansUntil(() => false, 500);
    expect(events('trace_export_recovered')).toHaveLength(1);
    expect(events('trace_export_failed')).toHaveLength(1);
    expect(receiver.spans.some((s) => s.name === 'probe')).toBe(true);
    // Nothing else about the exporter: no line per failed batch.
    expect(logs.lines().filter((l) => l.event !== 'tracing_enabled').map((l) => l.event)).toEqual(['trace_export_failed', 'trace_export_recovered']);
  });
});
