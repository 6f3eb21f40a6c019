import { describe, expect, it } from 'vitest';
import { probeDelayMs } from '../../src/deploy/health.ts';

/** The times (ms after the start) at which a wait probes, up to `untilMs`. */
function probeTimes(untilMs: number): number[] {
  const times = [0];
  for (let probes = 0; times.at(-1)! + probeDelayMs(probes) <= untilMs; probes++) times.push(times.at(-1)! + probeDelayMs(probes));
  return times;
}

describe('health wait probes', () => {
  it('probes soon after the start, then further apart, never more than 3 s apart', () => {
    expect(probeDelayMs(0)).toBe(500);
    const gaps = Array.from({ length: 30 }, (_, i) => probeDelayMs(i));
    expect(gaps.every((gap, i) => i === 0 || gap >= gaps[i - 1]!)).toBe(true);
    expect(Math.max(...gaps)).toBe(3000);
    // A service healthy after 2 s is seen within a second of it.
    expect(probeTimes(4000).find((t) => t >= 2000)! - 2000).toBeLessThanOrEqual(1000);
  });

  it('costs a container that takes 20 s a third of the probes a fixed half-second poll would (each is a docker exec)', () => {
    expect(probeTimes(20_000).length).toBeLessThanOrEqual(Math.ceil(20_000 / 500 / 3));
  });
});
