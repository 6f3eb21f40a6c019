import { InputError, KollaError } from '../errors.ts';
import { claimHosts, ensureImage, isNothing, recordStamp, runStep } from '../deploy/apply.ts';
import { failure } from '../deploy/failures.ts';
import { waitHealthy } from '../deploy/health.ts';
import { observeAndDiff } from '../deploy/operations.ts';
import type { Deployment } from '../deploy/session.ts';
import { forEachHost } from '../fleet/runner.ts';
import type { DesiredContainer, DesiredService, DesiredStep } from '../plan/desired.ts';
import { isEmptyPlan, stepId, type ContainerAction, type Plan, type ServicePlan } from '../plan/diff.ts';
import { backupDatabases } from './backup.ts';
import { replaceContainer } from './swap.ts';

/** How many hosts of a service change at once: a count, or a share of its hosts. */
export type Serial = { count: number } | { percent: number };

export function parseSerial(text: string): Serial {
  const match = /^(\d+)(%?)$/.exec(text.trim());
  const value = match ? Number(match[1]) : NaN;
  if (!match || value < 1 || (match[2] && value > 100)) throw new InputError(`--serial: expected a number of hosts (1, 2, ...) or a share of them (1%-100%), got "${text}"`);
  return match[2] ? { percent: value } : { count: value };
}

/** Hosts cut into batches, in order; a share rounds up, so every batch has a host. */
export function batches<T>(hosts: readonly T[], serial: Serial): T[][] {
  const size = 'count' in serial ? serial.count : Math.max(1, Math.ceil((hosts.length * serial.percent) / 100));
  const out: T[][] = [];
  for (let i = 0; i < hosts.length; i += size) out.push(hosts.slice(i, i + size));
  return out;
}

/** Services after the ones they require, use or come after, otherwise in the order given. */
export function inDependencyOrder(services: readonly DesiredService[]): DesiredService[] {
  const byName = new Map(services.map((s) => [s.role.service, s]));
  const ordered: DesiredService[] = [];
  const visit = (service: DesiredService, path: readonly string[]): void => {
    if (ordered.includes(service)) return;
    if (path.includes(service.role.service)) throw new InputError(`services require each other in a cycle: ${[...path, service.role.service].join(' -> ')}`, { file: service.role.file, key: 'requires' });
    for (const needed of [...service.role.requires, ...service.role.uses, ...service.role.after.map((a) => a.service)]) {
      const dependency = byName.get(needed);
      if (dependency) visit(dependency, [...path, service.role.service]);
    }
    ordered.push(service);
  };
  for (const service of services) visit(service, []);
  return ordered;
}

export interface UpgradeOptions {
  serial: Serial;
  healthTimeoutSeconds: number;
  log(line: string): void;
}

/**
 * Rolling upgrade to what globals.yml now names (per-service tags):
 * every new image is pulled on every host first (a failed pull changes
 * nothing anywhere); then service by service, in dependency order, the
 * service's steps run as its role lists them, a database backup before
 * the first schema migration, and each `start` rolls its containers out
 * batch by batch, each container replaced and gated on health (see
 * replaceContainer). A host whose new container is not healthy gets the
 * old one back; the rollout stops once more hosts failed than
 * --max-fail-percentage allows (by default, at the first).
 */
export async function upgrade(deployment: Deployment, options: UpgradeOptions): Promise<Plan> {
  const { plan } = await observeAndDiff(deployment, { runSteps: true });
  if (isEmptyPlan(plan)) return plan;
  await claimHosts(deployment, deployment.desired.hosts);
  if (!(await pullEverything(deployment, plan, options))) return plan;
  for (const service of inDependencyOrder(deployment.desired.services)) {
    const servicePlan = plan.services.find((p) => p.service === service.role.service)!;
    if (isNothing(servicePlan)) continue;
    if (!(await upgradeService(deployment, service, servicePlan, options))) {
      options.log(`upgrade stopped at ${service.role.service}; services after it were not touched`);
      break;
    }
  }
  return plan;
}

const CHANGED = new Set<ContainerAction['action']>(['create', 'recreate', 'restart']);

async function pullEverything(deployment: Deployment, plan: Plan, options: UpgradeOptions): Promise<boolean> {
  const actions = new Map(plan.services.flatMap((s) => s.containers).map((a) => [`${a.host}/${a.container}`, a]));
  const containers = deployment.desired.services.flatMap((s) => [...s.containers, ...s.dataContainers]);
  const settled = await forEachHost(deployment.desired.hosts, deployment.policy, async (host) => {
    const { engine } = await deployment.pool.get(host);
    for (const container of containers.filter((c) => c.host === host)) {
      const action = actions.get(`${host}/${container.name}`);
      if (action && CHANGED.has(action.action)) await ensureImage(engine, container, action.pull === true);
    }
  });
  const failed = settled.filter((r) => r.status === 'failed');
  for (const result of failed) deployment.recap.fail(result.host, result.error, deployment.redact);
  if (failed.length > 0) options.log(`pull failed on ${failed.map((r) => r.host).join(', ')}: nothing was changed on any host`);
  return failed.length === 0;
}

async function upgradeService(deployment: Deployment, service: DesiredService, plan: ServicePlan, options: UpgradeOptions): Promise<boolean> {
  const name = service.role.service;
  const configRoot = String(deployment.globals.node_config_directory);
  const actionOf = (container: DesiredContainer): ContainerAction => plan.containers.find((c) => c.host === container.host && c.container === container.name)!;
  const isOut = (host: string): boolean => ['failed', 'unreachable'].includes(deployment.recap.outcome(host));
  options.log(`${name}: upgrading`);

  // Data containers hold what the services keep: created where missing, never replaced.
  const dataHosts = [...new Set(service.dataContainers.filter((c) => actionOf(c).action === 'create').map((c) => c.host))];
  const created = await forEachHost(dataHosts, deployment.policy, async (host) => {
    const { engine } = await deployment.pool.get(host);
    for (const data of service.dataContainers.filter((c) => c.host === host && actionOf(c).action === 'create')) await engine.create(data.spec);
  });
  for (const result of created) if (result.status === 'failed') deployment.recap.fail(result.host, result.error, deployment.redact);

  const allHosts = [...new Set(service.containers.map((c) => c.host))];
  const allowedFailures = Math.floor(((deployment.policy.maxFailPercentage ?? 0) * allHosts.length) / 100);
  const failedHosts = new Set(allHosts.filter(isOut));
  const roll = async (names: readonly string[]): Promise<boolean> => {
    const targets = service.containers.filter((c) => names.includes(c.name) && actionOf(c).action !== 'none');
    const hosts = [...new Set(targets.map((c) => c.host))].filter((h) => !isOut(h));
    const cut = batches(hosts, options.serial);
    for (const [index, batch] of cut.entries()) {
      options.log(`${name}: batch ${index + 1}/${cut.length}: ${batch.join(', ')}`);
      const settled = await forEachHost(batch, { forks: deployment.policy.forks }, async (host) => {
        let changes = 0;
        for (const container of targets.filter((c) => c.host === host)) {
          await upgradeContainer(deployment, container, actionOf(container), options);
          changes++;
        }
        return changes;
      });
      for (const result of settled) {
        if (result.status === 'done') deployment.recap.ok(result.host, result.value);
        if (result.status !== 'failed') continue;
        const error = result.error instanceof KollaError ? result.error : await failure(deployment, result.host, name, 'upgrade', String(result.error));
        deployment.recap.fail(result.host, error, deployment.redact);
        failedHosts.add(result.host);
      }
      if (failedHosts.size > allowedFailures) {
        options.log(`${name}: rollout stopped: ${[...failedHosts].join(', ')} failed; ${cut.slice(index + 1).flat().join(', ') || 'no other host'} left as it was`);
        return false;
      }
    }
    return true;
  };

  // One step on one host; a failure stops the service (its later steps and hosts are not touched).
  const runOnce = async (step: DesiredStep): Promise<boolean> => {
    if (isOut(step.host)) {
      options.log(`${name}: stopped: ${step.description} runs on ${step.host}, which failed`);
      return false;
    }
    try {
      options.log(`${step.host}: ${name}: ${step.description}`);
      await runStep(deployment, service, step, { stageConfig: true });
      deployment.recap.ok(step.host, 1);
      return true;
    } catch (error) {
      deployment.recap.fail(step.host, error, deployment.redact);
      options.log(`${name}: stopped: ${(error as Error).message}`);
      return false;
    }
  };
  // A schema migration is not undone by putting the old containers back: keep the data first.
  let backedUp = false;
  const backUp = async (): Promise<boolean> => {
    if (backedUp) return true;
    backedUp = true;
    try {
      await backupDatabases(deployment, service, options.log);
      return true;
    } catch (error) {
      deployment.recap.fail((error as { host?: string }).host ?? service.steps[0]!.host, error, deployment.redact);
      options.log(`${name}: stopped: no backup, so no migration: ${(error as Error).message}`);
      return false;
    }
  };

  // The role's own sequence (expand and migrate, checks) replaces its bootstrap steps during an upgrade.
  const ownSequence = service.upgrade.before.length > 0;
  if (ownSequence) {
    if (!(await backUp())) return false;
    for (const step of service.upgrade.before) if (!(await runOnce(step))) return false;
  }
  const rolled = new Set<string>();
  for (const step of service.steps) {
    if (step.step.kind === 'start') {
      if (!(await roll(step.step.containers))) return false;
      step.step.containers.forEach((c) => rolled.add(c));
      continue;
    }
    const stepPlan = plan.steps.find((s) => s.id === stepId(step))!;
    if (!stepPlan.run) continue;
    if (!(step.step.kind === 'bootstrap' && ownSequence)) {
      if (step.step.kind === 'bootstrap' && !(await backUp())) return false;
      if (!(await runOnce(step))) return false;
    }
    await recordStamp(deployment, step, configRoot);
  }
  if (!(await roll(service.containers.map((c) => c.name).filter((n) => !rolled.has(n))))) return false;
  // Once every host runs the new containers: contract, data migrations, restarts that lift version pins.
  for (const step of service.upgrade.after) {
    const hosts = step.step.kind === 'restart' ? [...new Set(service.containers.filter((c) => (step.step as { containers: string[] }).containers.includes(c.name)).map((c) => c.host))] : [step.host];
    for (const host of hosts) if (!(await runOnce({ ...step, host }))) return false;
  }
  return true;
}

async function upgradeContainer(deployment: Deployment, container: DesiredContainer, action: ContainerAction, options: UpgradeOptions): Promise<void> {
  if (action.action === 'start') {
    await (await deployment.pool.get(container.host)).engine.start(container.name);
    await waitHealthy(deployment, container, options.healthTimeoutSeconds);
    return;
  }
  await replaceContainer(
    deployment,
    {
      host: container.host,
      service: container.service,
      container: container.name,
      spec: container.spec,
      files: container.configFiles,
      configDir: container.configDir,
      configHash: container.configHash,
      definitionHash: container.definitionHash,
      healthcheck: container.definition.healthcheck,
    },
    { command: 'upgrade', healthTimeoutSeconds: options.healthTimeoutSeconds, log: options.log },
  );
}
