import { describe, expect, it } from 'vitest';
import { DeployStepError, UnreachableError } from '../../src/errors.ts';
import { forEachHost, formatRecap, Recap } from '../../src/fleet/runner.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('forEachHost', () => {
  it('runs at most `forks` hosts at a time and every host to its end', async () => {
    let running = 0;
    let peak = 0;
    const hosts = Array.from({ length: 9 }, (_, i) => `node${i}`);
    const settled = await forEachHost(hosts, { forks: 3 }, async (host) => {
      running++;
      peak = Math.max(peak, running);
      await sleep(5);
      running--;
      if (host === 'node4') throw new Error('boom');
      return host.toUpperCase();
    });
    expect(peak).toBe(3);
    expect(settled.map((r) => r.status)).toEqual(['done', 'done', 'done', 'done', 'failed', 'done', 'done', 'done', 'done']);
    expect(settled[0]).toEqual({ host: 'node0', status: 'done', value: 'NODE0' });
  });

  it('never cancels a started host when another fails', async () => {
    const finished: string[] = [];
    await forEachHost(['slow', 'fails'], { forks: 2, maxFailPercentage: 0 }, async (host) => {
      if (host === 'fails') throw new Error('x');
      await sleep(20);
      finished.push(host);
    });
    expect(finished).toEqual(['slow']);
  });

  it('skips hosts not yet started once more than max-fail-percentage failed', async () => {
    const hosts = ['a', 'b', 'c', 'd'];
    const settled = await forEachHost(hosts, { forks: 1, maxFailPercentage: 25 }, async (host) => {
      if (host === 'a' || host === 'b') throw new Error(`${host} down`);
    });
    // a failed (25%: not more than 25), b failed (50%), c and d never start.
    expect(settled.map((r) => r.status)).toEqual(['failed', 'failed', 'skipped', 'skipped']);
  });
});

describe('Recap', () => {
  it('keeps the worst outcome per host and redacts what it records', () => {
    const recap = new Recap(['ctl', 'c1', 'c2', 'c3']);
    recap.ok('ctl', 3);
    recap.ok('c1');
    recap.fail('c2', new DeployStepError('c2', 'nova_compute', 'wait for health', 'password s3cret rejected', 'log says s3cret'), (t) => t.replaceAll('s3cret', '****'));
    recap.ok('c2', 2);
    recap.fail('c3', new UnreachableError('cannot connect to host c3'));
    expect(recap.rows().map((r) => [r.host, r.outcome, r.changes])).toEqual([
      ['ctl', 'changed', 3],
      ['c1', 'ok', 0],
      ['c2', 'failed', 2],
      ['c3', 'unreachable', 0],
    ]);
    expect(recap.failed.map((r) => r.host)).toEqual(['c2', 'c3']);
    const table = formatRecap(recap);
    expect(table).not.toContain('s3cret');
    expect(table.split('\n')[0]).toMatch(/^HOST\s+OUTCOME\s+CHANGES\s+FIRST ERROR$/);
    expect(recap.rows()[2]!.logs).toEqual([{ container: 'nova_compute', tail: 'log says ****' }]);
  });
});
