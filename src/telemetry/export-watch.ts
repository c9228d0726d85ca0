// Says once when span export starts failing (collector unreachable, refusing) and once when it
// works again, instead of nothing or a line per batch: an operator learns that traces are being
// dropped, and the log is not flooded while the collector is away.
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-node';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from './logger.js';

export class WatchedSpanExporter implements SpanExporter {
  private failing = false;

  constructor(
    private readonly inner: SpanExporter,
    private readonly log: Logger,
    /** Where spans go (logged with the transitions; never carries credentials: headers are not part of it). */
    private readonly endpoint: string,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code === ExportResultCode.FAILED) {
        if (!this.failing) {
          this.failing = true;
          this.log.warn(
            { event: 'trace_export_failed', endpoint: this.endpoint, err: result.error ? errorMessage(result.error) : 'export failed' },
            'cannot export spans to the trace collector; dropping them until it answers',
          );
        }
      } else if (this.failing) {
        this.failing = false;
        this.log.info({ event: 'trace_export_recovered', endpoint: this.endpoint }, 'trace collector answers again');
      }
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}
