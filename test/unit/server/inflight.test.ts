// Calls in flight, counted per config generation and for the service: shutdown waits on these.
import { describe, expect, it } from 'vitest';
import { InFlight } from '../../../src/server/inflight.js';

describe('InFlight', () => {
  it('counts a call in its own count and every parent\'s, once however often it is ended', () => {
    const service = new InFlight();
    const generation = new InFlight(service);
    const end1 = generation.begin();
    const end2 = generation.begin();
    const end3 = service.begin();
    expect([generation.size, service.size]).toEqual([2, 3]);
    end1();
    end1();
    expect([generation.size, service.size]).toEqual([1, 2]);
    end2();
    end3();
    expect([generation.size, service.size]).toEqual([0, 0]);
  });

  it('resolves idle() when the last call ends, on every level, and false on timeout', async () => {
    const service = new InFlight();
    const generation = new InFlight(service);
    expect(await service.idle(10)).toBe(true);
    const end = generation.begin();
    const both = Promise.all([generation.idle(5_000), service.idle(5_000)]);
    expect(await service.idle(20)).toBe(false);
    end();
    expect(await both).toEqual([true, true]);
  });
});
