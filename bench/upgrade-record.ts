/**
 * The record bench/upgrade.ts writes, and its summary table, shared by the
 * bench (printed) and the report (markdown) so both show the same figures.
 */
import { stats, type RunRecord } from './common.ts';

/** A stretch without an answer: from the first failed probe to the next success, seconds from the scenario's start. */
export interface Outage {
  from: number;
  to: number;
  /** Fleet scenarios: the node it was seen on. */
  node?: string;
}

/** One change to a running service, timed, with its availability watched. */
export interface Scenario {
  name: string;
  /** The service whose own start (samples.ownStart) the longest outage is held against; absent when no such target applies. */
  service?: string;
  /** What was probed, and how often. */
  watched: string;
  /** The command's exit status (0 for the steps made from the bench's own process). */
  status: number | null;
  /** The end of the command's stderr when it failed. */
  error?: string;
  /** From the scenario's start to the command's return. */
  seconds: number;
  outages: Outage[];
  probes: number;
  failedProbes: number;
  /** The CLI's "HOST: CONTAINER: healthy after N s" lines: a new container's start to its passing health test. */
  healthyAfter: { host: string; container: string; seconds: number }[];
  /** One watched container that started during the scenario: its State.StartedAt, seconds from the scenario's start (splits an outage into the swap and the start). */
  startedSeconds?: number;
  /** The kolla-ansible way: first answer after the steps returned, seconds from the scenario's start. */
  answeredSeconds?: number;
  /** Fleet scenarios: stretches in which no node answered. */
  allDown?: Outage[];
}

export interface UpgradeSettings {
  /** The all-in-one's deploy-side config directory. */
  configDir: string;
  registry: string;
  /** The tag every change went to and came back from. */
  baseTag: string;
  newTag: string;
  probeIntervalMs: number;
  ownStartIntervalMs: number;
  probeTimeoutMs: number;
  /** Target: the longest outage at most the service's own start (median) plus this. */
  targetMarginSeconds: number;
  /** Whether the fleet part (BENCH_UPGRADE_FLEET=1) ran. */
  fleet: boolean;
}

/** One restart of a service, seconds from the restart's request. */
export interface OwnStart {
  /** To the first successful probe: the service's own start. */
  seconds: number;
  /** To the new process's State.StartedAt (the old one stopped by then). */
  startedSeconds: number;
}

export interface UpgradeSamples {
  /** Per service, each try. */
  ownStart: Record<string, OwnStart[]>;
  scenarios: Scenario[];
}

export type UpgradeRecord = RunRecord<UpgradeSettings, UpgradeSamples>;

const s = (seconds: number): string => seconds.toFixed(2);

export const longestOutage = (outages: readonly Outage[]): number => Math.max(0, ...outages.map((o) => o.to - o.from));

export const TABLE_HEADER = ['scenario', 'wall s', 'longest unavailable s', 'own start s (median)', 'target: unavailable ≤ own start + margin', 'notes'];

/** The outage around the new container's start, split there: the old one stopping and the swap, then the service starting. */
export function outageSplit(scenario: Scenario): { outage: number; beforeStart: number; afterStart: number } | undefined {
  const started = scenario.startedSeconds;
  if (started === undefined) return undefined;
  const outage = scenario.outages.find((o) => o.from <= started && started <= o.to);
  return outage && { outage: outage.to - outage.from, beforeStart: started - outage.from, afterStart: outage.to - started };
}

function notes(scenario: Scenario): string {
  const parts: string[] = [];
  if (scenario.status !== 0) parts.push(`failed (exit ${scenario.status})`);
  const split = outageSplit(scenario);
  if (split) parts.push(`${s(split.beforeStart)} s of it before the new container's start, ${s(split.afterStart)} s after`);
  for (const h of scenario.healthyAfter) parts.push(`${h.container} healthy after ${s(h.seconds)} s (CLI)`);
  if (scenario.answeredSeconds !== undefined) parts.push(`first answer ${s(scenario.answeredSeconds - scenario.seconds)} s after the steps returned`);
  if (scenario.allDown) parts.push(scenario.allDown.length ? `no node answering for ${s(longestOutage(scenario.allDown))} s` : 'some node answered throughout');
  if (scenario.failedProbes === 0) parts.push(`no probe failed (${scenario.probes} probes)`);
  return parts.join('; ');
}

/** One row per scenario, in the order they ran. */
export function tableRows({ settings, samples }: UpgradeRecord): string[][] {
  return samples.scenarios.map((scenario) => {
    const window = longestOutage(scenario.outages);
    const own = scenario.service ? samples.ownStart[scenario.service] : undefined;
    const ownMedian = own?.length ? stats(own.map((o) => o.seconds)).median : undefined;
    const limit = ownMedian === undefined ? undefined : ownMedian + settings.targetMarginSeconds;
    const target = limit === undefined ? 'n/a' : window <= limit ? `met (≤ ${s(limit)})` : `missed by ${s(window - limit)} s`;
    return [scenario.name, s(scenario.seconds), s(window), ownMedian === undefined ? '—' : `${s(ownMedian)} (${own!.length} tries)`, target, notes(scenario)];
  });
}
