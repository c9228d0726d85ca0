// What every decision-log sink is: it takes an event (masked and scrubbed) and never blocks or
// throws into the Check; what it cannot keep it drops and counts.
import type { DecisionEvent } from './event.js';

export type SinkName = 'console' | 'file' | 'service';

export interface DecisionLogSink {
  readonly name: SinkName;
  write(event: DecisionEvent): void;
  /** Writes or uploads what is still buffered (bounded in time), then stops. */
  close(): Promise<void>;
}

/** Counts of a sink: events written/uploaded, events dropped, failed writes or uploads. */
export type SinkOutcome = 'sent' | 'dropped' | 'failed';
export type SinkCounter = (sink: SinkName, outcome: SinkOutcome, n: number) => void;
