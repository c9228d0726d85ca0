// Hot-path metric recording without the OTel SDK's per-call attribute hashing (it sorts and
// stringifies the attributes object on every add()/record()). Each instrument keeps its own cells,
// found by attribute values through nested Maps (no key string, no attributes object per call);
// the attributes object of a cell is built once, when the cell is. Counters are exported by an
// observable counter of the same name, histograms by a MetricProducer with the SDK's histogram
// data (buckets, sum, count, min, max): names, attributes, units and values are what the SDK's
// own instruments export (test/unit/telemetry/metric-cells.test.ts compares them).
import { ValueType, type Attributes, type HrTime, type Meter, type MetricOptions } from '@opentelemetry/api';
import { millisToHrTime } from '@opentelemetry/core';
import { emptyResource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  type CollectionResult,
  type HistogramMetricData,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';

/**
 * Cells per instrument, as the SDK's default cardinality limit (2000, the overflow cell
 * included): later attribute sets are counted under {otel.metric.overflow: true}, as there.
 * Our attribute values are bounded anyway (DESIGN.md); this bounds memory whatever happens.
 */
export const MAX_CELLS = 2000;
const OVERFLOW: Attributes = Object.freeze({ 'otel.metric.overflow': true });

type Level = Map<string, unknown>;

/** Cells by up to four attribute values (in `keys` order); `make` creates a cell on first sight. */
export class AttributeCells<T> {
  private readonly root: Level = new Map();
  private readonly list: { readonly attributes: Attributes; readonly cell: T }[] = [];
  private overflow: T | undefined;

  constructor(
    private readonly keys: readonly string[],
    private readonly make: () => T,
    private readonly max = MAX_CELLS,
  ) {
    if (keys.length > 4) throw new Error('at most 4 attributes');
  }

  get(a = '', b = '', c = '', d = ''): T {
    const n = this.keys.length;
    let level = this.root;
    // Every level but the last maps a value to the next level; the last maps it to the cell.
    for (let i = 0; i < n - 1; i++) {
      const v = i === 0 ? a : i === 1 ? b : c;
      let next = level.get(v) as Level | undefined;
      if (next === undefined) {
        if (this.list.length >= this.max - 1) return this.overflowCell();
        next = new Map();
        level.set(v, next);
      }
      level = next;
    }
    const last = n <= 1 ? a : n === 2 ? b : n === 3 ? c : d;
    const cell = level.get(last) as T | undefined;
    if (cell !== undefined) return cell;
    if (this.list.length >= this.max - 1) return this.overflowCell();
    const made = this.make();
    level.set(last, made);
    const values = [a, b, c, d];
    const attributes: Attributes = {};
    this.keys.forEach((k, i) => (attributes[k] = values[i]));
    this.list.push({ attributes: Object.freeze(attributes), cell: made });
    return made;
  }

  private overflowCell(): T {
    if (this.overflow === undefined) {
      this.overflow = this.make();
      this.list.push({ attributes: OVERFLOW, cell: this.overflow });
    }
    return this.overflow;
  }

  /** Every cell, in the order they were made. */
  forEach(fn: (attributes: Attributes, cell: T) => void): void {
    for (const e of this.list) fn(e.attributes, e.cell);
  }
}

/** A monotonic counter (an OTel Counter's add()), exported as an observable counter of the same name. */
export class CounterCells {
  private readonly cells: AttributeCells<{ n: number }>;

  constructor(meter: Meter, name: string, options: MetricOptions, keys: readonly string[]) {
    this.cells = new AttributeCells(keys, () => ({ n: 0 }));
    meter.createObservableCounter(name, options).addCallback((r) => this.cells.forEach((attributes, c) => r.observe(c.n, attributes)));
  }

  /** Attribute values in the order of `keys`; a negative `n` is ignored, as the SDK's counter does. */
  add(n: number, a?: string, b?: string, c?: string, d?: string): void {
    if (!(n >= 0)) return;
    this.cells.get(a, b, c, d).n += n;
  }
}

interface HistogramCell {
  readonly startTime: HrTime;
  readonly counts: number[];
  sum: number;
  count: number;
  min: number;
  max: number;
}

/** A histogram (an OTel Histogram's record(): explicit buckets, sum, count, min, max), exported by `HistogramProducer`. */
export class HistogramCells {
  private readonly cells: AttributeCells<HistogramCell>;

  constructor(
    readonly name: string,
    readonly options: { readonly description: string; readonly unit: string },
    readonly boundaries: readonly number[],
    keys: readonly string[],
  ) {
    this.cells = new AttributeCells(keys, () => ({ startTime: millisToHrTime(Date.now()), counts: new Array<number>(boundaries.length + 1).fill(0), sum: 0, count: 0, min: Infinity, max: -Infinity }));
  }

  /** As the SDK: a negative or NaN value is ignored; the bucket is the first boundary >= value. */
  record(value: number, a?: string, b?: string): void {
    if (!(value >= 0)) return;
    const c = this.cells.get(a, b);
    c.count += 1;
    c.sum += value;
    if (value < c.min) c.min = value;
    if (value > c.max) c.max = value;
    const bs = this.boundaries;
    let lo = 0;
    let hi = bs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (bs[mid]! < value) lo = mid + 1;
      else hi = mid;
    }
    c.counts[lo]! += 1;
  }

  /** Cumulative data as the SDK's HistogramAggregator gives it (copies: the exporter may keep them). */
  metricData(endTime: HrTime): HistogramMetricData {
    const dataPoints: HistogramMetricData['dataPoints'] = [];
    this.cells.forEach((attributes, c) => {
      dataPoints.push({
        attributes,
        startTime: c.startTime,
        endTime,
        value: { min: c.min, max: c.max, sum: c.sum, count: c.count, buckets: { boundaries: [...this.boundaries], counts: [...c.counts] } },
      });
    });
    return {
      descriptor: { name: this.name, description: this.options.description, unit: this.options.unit, valueType: ValueType.DOUBLE },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.HISTOGRAM,
      dataPoints,
    };
  }
}

/** Hands the histograms to a metric reader (Prometheus, OTLP) at each collection, under the meter's scope. */
export class HistogramProducer implements MetricProducer {
  constructor(
    private readonly scope: string,
    private readonly histograms: readonly HistogramCells[],
  ) {}

  collect(): Promise<CollectionResult> {
    const endTime = millisToHrTime(Date.now());
    const metrics = this.histograms.map((h) => h.metricData(endTime)).filter((m) => m.dataPoints.length > 0);
    // The reader keeps the SDK's resource and merges our scope metrics into it.
    return Promise.resolve({ resourceMetrics: { resource: emptyResource(), scopeMetrics: metrics.length > 0 ? [{ scope: { name: this.scope }, metrics }] : [] }, errors: [] });
  }
}
