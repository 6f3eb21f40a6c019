import { DeployStepError, UnreachableError } from '../errors.ts';

/**
 * Runs per-host work across a fleet: at most `forks` hosts at a time, every
 * started host's work runs to its end (a failure elsewhere never cancels it),
 * and each host ends with its own outcome.
 */
export interface RunPolicy {
  /** Hosts worked on at the same time. */
  forks: number;
  /**
   * Once more than this share of the hosts (0-100) has failed, hosts not yet
   * started are skipped. Undefined: every host is tried.
   */
  maxFailPercentage?: number;
}

export type HostSettled<T> = { host: string; status: 'done'; value: T } | { host: string; status: 'failed'; error: unknown } | { host: string; status: 'skipped' };

export const DEFAULT_FORKS = 10;

export async function forEachHost<T>(hosts: readonly string[], policy: RunPolicy, work: (host: string) => Promise<T>): Promise<HostSettled<T>[]> {
  const results = new Map<string, HostSettled<T>>();
  const limit = policy.maxFailPercentage;
  let failures = 0;
  let next = 0;
  const tooManyFailures = (): boolean => limit !== undefined && (failures * 100) / hosts.length > limit;
  const worker = async (): Promise<void> => {
    while (next < hosts.length) {
      const host = hosts[next++]!;
      if (tooManyFailures()) {
        results.set(host, { host, status: 'skipped' });
        continue;
      }
      try {
        results.set(host, { host, status: 'done', value: await work(host) });
      } catch (error) {
        failures++;
        results.set(host, { host, status: 'failed', error });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(policy.forks, hosts.length)) }, worker));
  return hosts.map((host) => results.get(host)!);
}

export type HostOutcome = 'ok' | 'changed' | 'failed' | 'unreachable' | 'skipped';

/** The worst wins when one host has several results in a run. */
const SEVERITY: Record<HostOutcome, number> = { ok: 0, changed: 1, skipped: 2, failed: 3, unreachable: 4 };

export interface HostRecap {
  host: string;
  outcome: HostOutcome;
  /** Changes made on the host (containers created, restarted, files written, steps run). */
  changes: number;
  /** Why it failed, was unreachable or skipped. Never holds secrets: callers redact. */
  errors: string[];
  /** Log tails of the containers that failed there. */
  logs: { container: string; tail: string }[];
}

/** Per-host outcomes of one command, in the order hosts were first seen. */
export class Recap {
  private readonly hosts = new Map<string, HostRecap>();

  /** `lost` tells a failure caused by a dropped connection (unreachable) from one on the host. */
  constructor(
    hosts: readonly string[] = [],
    private readonly lost: (host: string) => boolean = () => false,
  ) {
    for (const host of hosts) this.entry(host);
  }

  ok(host: string, changes = 0): void {
    const entry = this.entry(host);
    entry.changes += changes;
    this.raise(entry, changes > 0 ? 'changed' : 'ok');
  }

  fail(host: string, error: unknown, redact: (text: string) => string = (text) => text): void {
    const entry = this.entry(host);
    entry.errors.push(redact(error instanceof Error ? error.message : String(error)));
    if (error instanceof DeployStepError && error.logTail) entry.logs.push({ container: error.container, tail: redact(error.logTail) });
    this.raise(entry, error instanceof UnreachableError || this.lost(host) ? 'unreachable' : 'failed');
  }

  skip(host: string, why: string): void {
    const entry = this.entry(host);
    entry.errors.push(why);
    this.raise(entry, 'skipped');
  }

  outcome(host: string): HostOutcome {
    return this.entry(host).outcome;
  }

  get failed(): HostRecap[] {
    return this.rows().filter((row) => row.outcome === 'failed' || row.outcome === 'unreachable');
  }

  rows(): HostRecap[] {
    return [...this.hosts.values()];
  }

  private entry(host: string): HostRecap {
    let entry = this.hosts.get(host);
    if (!entry) {
      entry = { host, outcome: 'ok', changes: 0, errors: [], logs: [] };
      this.hosts.set(host, entry);
    }
    return entry;
  }

  private raise(entry: HostRecap, outcome: HostOutcome): void {
    if (SEVERITY[outcome] > SEVERITY[entry.outcome]) entry.outcome = outcome;
  }
}

/** The recap as a table, one row per host, for the end of every fleet command. */
export function formatRecap(recap: Recap): string {
  const rows = recap.rows().map((row) => [row.host, row.outcome, String(row.changes), row.errors[0] ?? '']);
  const header = ['HOST', 'OUTCOME', 'CHANGES', 'FIRST ERROR'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  return [header, ...rows].map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}
