/**
 * The record bench/cold-deploy.ts writes, and the figures drawn from it
 * (the longest chain, the target), shared by the bench (printed) and the
 * report (markdown) so both show the same figures.
 */
import type { RunRecord } from './common.ts';

export interface ServiceDependencies {
  name: string;
  /** What applyPlan waits for before starting it. */
  requires: string[];
}

export interface ColdDeploySettings {
  /** The enabled services, in the order the serial deploy ran them. */
  services: ServiceDependencies[];
  /** The target: the parallel deploy within the longest chain plus this share of it. */
  targetMargin: number;
}

export interface ColdDeployRun {
  /** Wall seconds of the CLI. */
  seconds: number;
  rssMiB: number;
}

export interface ColdDeploySamples {
  /** One `deploy --services <one>` each, in dependency order; applySeconds is the CLI's own figure for the service (its first step to its end). */
  serial: (ColdDeployRun & { service: string; applySeconds: number })[];
  /** One `deploy` of everything; applySeconds per service, as the CLI reports each. */
  parallel: ColdDeployRun & { applySeconds: Record<string, number> };
}

export type ColdDeployRecord = RunRecord<ColdDeploySettings, ColdDeploySamples>;

export interface Chain {
  services: string[];
  seconds: number;
}

/** The heaviest path through `requires`, each service weighted by its seconds. */
export function longestChain(services: readonly ServiceDependencies[], secondsOf: (service: string) => number): Chain {
  const byName = new Map(services.map((s) => [s.name, s]));
  const heavier = (a: Chain, b: Chain): Chain => (b.seconds > a.seconds ? b : a);
  const chains = new Map<string, Chain>();
  const chainEndingAt = (name: string): Chain => {
    let chain = chains.get(name);
    if (!chain) {
      const before = byName.get(name)!.requires.map(chainEndingAt).reduce(heavier, { services: [], seconds: 0 });
      chain = { services: [...before.services, name], seconds: before.seconds + secondsOf(name) };
      chains.set(name, chain);
    }
    return chain;
  };
  return services.map((s) => chainEndingAt(s.name)).reduce(heavier);
}

export interface ColdDeploySummary {
  serialTotal: number;
  parallel: number;
  /** Weighted by each service's wall seconds alone. */
  chain: Chain;
  ratio: number;
  targetMet: boolean;
}

export function summarise({ settings, samples }: ColdDeployRecord): ColdDeploySummary {
  const alone = new Map(samples.serial.map((run) => [run.service, run.seconds]));
  const chain = longestChain(settings.services, (service) => alone.get(service)!);
  const parallel = samples.parallel.seconds;
  return {
    serialTotal: samples.serial.reduce((sum, run) => sum + run.seconds, 0),
    parallel,
    chain,
    ratio: parallel / chain.seconds,
    targetMet: parallel <= (1 + settings.targetMargin) * chain.seconds,
  };
}
