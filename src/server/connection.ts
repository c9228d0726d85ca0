// One HTTP/2 connection's limits, over its whole life: the preface must come quickly, the
// connection is recycled at a maximum age (GOAWAY, then closed after a grace period), closed when
// idle, its peer may not ping too often (grpc-go's keepalive enforcement), its calls in progress
// are bounded, and a peer that resets streams faster than a legitimate client would (rapid reset,
// CVE-2023-44487) is sent GOAWAY ENHANCE_YOUR_CALM and cut off. All timers are per connection,
// none per call.
import { constants, type Http2Session } from 'node:http2';

export interface ConnectionLimits {
  /** The client's preface and SETTINGS, and its ACK of ours, must arrive within this. */
  readonly prefaceTimeoutMs: number;
  /** Recycle a connection after this long (±10 % jitter); 0: never. */
  readonly maxConnectionAgeMs: number;
  /** After the GOAWAY for age, calls in flight get this long before the connection is cut. */
  readonly maxConnectionAgeGraceMs: number;
  /** Close a connection that has had no call in progress for this long; 0: never. */
  readonly maxConnectionIdleMs: number;
  /** Client pings closer together than this are strikes; more than MAX_PING_STRIKES: GOAWAY. */
  readonly keepaliveMinPingIntervalMs: number;
  /** Ping an idle connection this often; drop it when the answer does not come within the timeout. */
  readonly keepaliveTimeMs: number;
  readonly keepaliveTimeoutMs: number;
  /** Calls in progress per connection, counting a reset call until its handler has stopped. */
  readonly maxConcurrentStreams: number;
  /** Streams the client may reset in one second before the connection is closed. */
  readonly maxResetsPerSecond: number;
}

/** grpc-go's allowance of too-early pings before it answers GOAWAY ENHANCE_YOUR_CALM. */
const MAX_PING_STRIKES = 2;
const JITTER = 0.1;

export type CloseReason = 'preface_timeout' | 'max_age' | 'max_age_grace' | 'idle' | 'too_many_pings' | 'rapid_reset' | 'keepalive_timeout';

export class Connection {
  /** Calls accepted and not yet finished (a reset call is finished when its handler has stopped). */
  private inProgress = 0;
  private lastActive = Date.now();
  private lastPing = 0;
  private pingStrikes = 0;
  private resetPingStrikes = false;
  private resetWindowStart = 0;
  private resetsInWindow = 0;
  /** Pending timers, cleared when the connection closes (a fired timer removes itself). */
  private readonly timers = new Set<NodeJS.Timeout>();
  private closing = false;
  private lastStreamId = 0;

  constructor(
    private readonly session: Http2Session,
    private readonly limits: ConnectionLimits,
    private readonly onClose: (reason: CloseReason) => void = () => undefined,
  ) {
    this.awaitPreface();
    this.scheduleAge();
    this.scheduleIdle();
    this.keepalive();
    session.on('ping', () => this.onPing());
    session.once('close', () => {
      for (const t of this.timers) clearTimeout(t);
    });
  }

  /** The highest stream id seen (named in a GOAWAY as the last one we may have processed). */
  noteStream(id: number): void {
    if (id > this.lastStreamId) this.lastStreamId = id;
  }

  /** Whether a new call may start (else it is refused: REFUSED_STREAM). */
  admit(): boolean {
    if (this.closing || this.inProgress >= this.limits.maxConcurrentStreams) return false;
    this.inProgress += 1;
    return true;
  }

  /** An admitted call finished (answered, or reset and its handler stopped). */
  finished(): void {
    this.inProgress -= 1;
    this.lastActive = Date.now();
  }

  /** We sent an answer: like grpc-go, data from us clears the peer's ping strikes (BDP pings follow data). */
  answered(): void {
    this.resetPingStrikes = true;
  }

  /** The client reset a stream before its answer; too many in one second closes the connection. */
  reset(now = Date.now()): void {
    if (now - this.resetWindowStart >= 1000) {
      this.resetWindowStart = now;
      this.resetsInWindow = 0;
    }
    this.resetsInWindow += 1;
    if (this.resetsInWindow > this.limits.maxResetsPerSecond) this.calm('rapid_reset');
  }

  private timer(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  private awaitPreface(): void {
    let settings = false;
    let acked = false;
    const ok = (): boolean => settings && acked;
    this.timer(this.limits.prefaceTimeoutMs, () => {
      if (!ok()) this.destroy('preface_timeout');
    });
    this.session.once('remoteSettings', () => (settings = true));
    this.session.once('localSettings', () => (acked = true));
  }

  private scheduleAge(): void {
    const age = this.limits.maxConnectionAgeMs;
    if (age <= 0) return;
    const jittered = age * (1 - JITTER + Math.random() * 2 * JITTER);
    this.timer(jittered, () => {
      this.goaway('max_age');
      this.timer(this.limits.maxConnectionAgeGraceMs, () => this.destroy('max_age_grace'));
    });
  }

  private scheduleIdle(): void {
    const idle = this.limits.maxConnectionIdleMs;
    if (idle <= 0) return;
    // One timer per connection: it re-arms for the time left rather than being reset per call.
    const check = (): void => {
      const left = this.lastActive + idle - Date.now();
      if (this.inProgress === 0 && left <= 0) return this.goaway('idle');
      this.timer(this.inProgress === 0 ? left : idle, check);
    };
    this.timer(idle, check);
  }

  private keepalive(): void {
    const tick = (): void => {
      if (this.session.destroyed || this.session.closed) return;
      let answered = false;
      const giveUp = setTimeout(() => {
        if (!answered) this.destroy('keepalive_timeout');
      }, this.limits.keepaliveTimeoutMs);
      giveUp.unref();
      const sent = this.session.ping((err) => {
        answered = !err;
        clearTimeout(giveUp);
      });
      if (!sent) clearTimeout(giveUp);
      this.timer(this.limits.keepaliveTimeMs, tick);
    };
    this.timer(this.limits.keepaliveTimeMs, tick);
  }

  private onPing(): void {
    const now = Date.now();
    if (this.resetPingStrikes) {
      // grpc-go's http2_server handlePing: the first ping after data from us is not checked.
      this.resetPingStrikes = false;
      this.pingStrikes = 0;
    } else if (this.lastPing !== 0 && now - this.lastPing < this.limits.keepaliveMinPingIntervalMs) {
      this.pingStrikes += 1;
      if (this.pingStrikes > MAX_PING_STRIKES) this.calm('too_many_pings');
    }
    this.lastPing = now;
  }

  /** GOAWAY NO_ERROR: calls in flight finish, no new ones start; Node closes the connection after the last. */
  private goaway(reason: CloseReason): void {
    if (this.closing || this.session.closed || this.session.destroyed) return;
    this.closing = true;
    this.onClose(reason);
    this.session.close();
  }

  /** GOAWAY ENHANCE_YOUR_CALM with grpc-go's debug data, then the connection is cut. */
  private calm(reason: 'too_many_pings' | 'rapid_reset'): void {
    if (this.session.destroyed) return;
    this.closing = true;
    this.onClose(reason);
    this.session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM, this.lastStreamId, Buffer.from(reason));
    this.session.destroy();
  }

  private destroy(reason: CloseReason): void {
    if (this.session.destroyed) return;
    this.closing = true;
    this.onClose(reason);
    this.session.destroy();
  }
}
