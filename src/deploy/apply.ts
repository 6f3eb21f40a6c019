import { dirname } from 'node:path';
import { STOP_TIMEOUT_SECONDS, type ContainerEngine, type ContainerSpec } from '../engine/containers.ts';
import { DeployStepError, KollaError } from '../errors.ts';
import { forEachHost } from '../fleet/runner.ts';
import { LABEL, type DesiredContainer, type DesiredService, type DesiredStep } from '../plan/desired.ts';
import { stepId, stepStamp, type ContainerAction, type Plan, type ServicePlan, type StepAction } from '../plan/diff.ts';
import { firstIncomplete, runStages, serviceStages, TOOLBOX_CONTAINER, toolboxServices, type ServiceOutcome, type ToolboxServices } from '../plan/waits.ts';
import type { HostConnection } from '../transport/host.ts';
import { appliedConfigPath, ownerPath, stepStampsPath, updateStateFile, writeConfigDir } from '../transport/state-files.ts';
import { sqlIdentifier, sqlString } from '../util/escape.ts';
import { execChecked, failure, guard } from './failures.ts';
import { waitHealthy } from './health.ts';
import type { Deployment } from './session.ts';
import { candidateName, HostJournal, imageFacts } from '../state/revisions.ts';

export interface ApplyReporter {
  start(name: string, detail?: string): void;
  finish(name: string, ok: boolean, detail?: string): void;
}

export interface ApplyOptions {
  /** deploy runs steps; reconfigure only places config and updates containers. */
  runSteps: boolean;
  /** The command, as the revisions it records name it. */
  command: string;
  reporter: ApplyReporter;
}

/**
 * Applies a plan. Services run at the same time, each step of a service as
 * soon as the required services it uses are done (see awaitedBy in
 * src/plan/waits.ts): nova's databases and migrations run while keystone
 * and placement start; its registration waits for keystone, its containers
 * for everything it requires. A service begins after those it comes
 * `after`, succeeded or not. A required service that did not complete stops
 * the service at the first part that waits for it ("not run"), and so the
 * services that require that one. Within a service, each host is worked on
 * by itself: a host that fails drops out (recorded in the recap) and the
 * others go on; a failed one-shot step stops that service everywhere.
 * Nothing is cancelled underneath another host's work.
 */
export async function applyPlan(deployment: Deployment, plan: Plan, options: ApplyOptions): Promise<void> {
  const configRoot = String(deployment.globals.node_config_directory);
  await claimHosts(deployment, deployment.desired.hosts);
  const byName = new Map(deployment.desired.services.map((s) => [s.role.service, s]));
  const toolbox = toolboxServices(deployment.roles);
  const outcomes = new Map<string, Promise<boolean>>();
  // A service this command does not deploy (--services, --limit) counts as done: it is left as it is.
  const outcome: ServiceOutcome = (name) => (byName.has(name) ? run(name) : Promise.resolve(true));
  const run = (name: string): Promise<boolean> => {
    let result = outcomes.get(name);
    if (!result) {
      result = (async () => {
        const service = byName.get(name)!;
        // `after` orders only: the service goes on whether those succeeded or not.
        await Promise.all(service.after.filter((r) => byName.has(r)).map(run));
        const servicePlan = plan.services.find((p) => p.service === name)!;
        return applyService(deployment, service, servicePlan, options, configRoot, outcome, toolbox);
      })();
      outcomes.set(name, result);
    }
    return result;
  };
  await Promise.all([...byName.keys()].map(run));
}

export function isNothing(plan: ServicePlan): boolean {
  return plan.files.length === 0 && plan.containers.every((c) => c.action === 'none') && plan.steps.every((s) => !s.run);
}

function summarise(plan: ServicePlan): string {
  const counts = new Map<string, number>();
  for (const c of plan.containers) if (c.action !== 'none') counts.set(c.action, (counts.get(c.action) ?? 0) + 1);
  const steps = plan.steps.filter((s) => s.run).length;
  const parts = [...counts].map(([action, n]) => `${n} ${action}`);
  if (steps) parts.push(`${steps} step(s)`);
  if (plan.files.length) parts.push(`${plan.files.length} file(s)`);
  return parts.join(', ');
}

/** A host counts as gone for the rest of the command once it failed or did not answer. */
function isOut(deployment: Deployment, host: string): boolean {
  const outcome = deployment.recap.outcome(host);
  return outcome === 'failed' || outcome === 'unreachable';
}

/**
 * Returns false when the service was stopped (its dependents must not run).
 * Each part waits for what it uses (see serviceStages); a service it waits
 * for that did not complete stops it there.
 */
async function applyService(
  deployment: Deployment,
  service: DesiredService,
  plan: ServicePlan,
  options: ApplyOptions,
  configRoot: string,
  outcome: ServiceOutcome,
  toolbox: ToolboxServices,
): Promise<boolean> {
  const name = service.role.service;
  const stop = (why: string): false => {
    options.reporter.finish(name, false, why);
    return false;
  };
  const notRun = (incomplete: string): false => stop(`not run: ${incomplete} did not complete`);
  if (isNothing(plan)) {
    const incomplete = await firstIncomplete(outcome, service.role.requires);
    if (incomplete) return notRun(incomplete);
    options.reporter.finish(name, true, 'nothing to do');
    return true;
  }
  const hosts = [...new Set([...service.dataContainers, ...service.containers].map((c) => c.host))];
  const failures: DeployStepError[] = [];
  const actionOf = (container: DesiredContainer): ContainerAction => plan.containers.find((c) => c.host === container.host && c.container === container.name)!;
  const stepPlanOf = (step: DesiredStep): StepAction => plan.steps.find((s) => s.id === stepId(step))!;
  const changesOn = (host: string): number =>
    plan.containers.filter((c) => c.host === host && c.action !== 'none').length + plan.files.filter((f) => f.host === host).length;

  /** Runs one phase on every host still in; a host that fails is out for the rest of the command. */
  const onEachHost = async (work: (host: string) => Promise<void>): Promise<void> => {
    const settled = await forEachHost(
      hosts.filter((h) => !isOut(deployment, h)),
      deployment.policy,
      work,
    );
    for (const result of settled) {
      if (result.status !== 'failed') continue;
      const error = result.error instanceof KollaError ? result.error : await failure(deployment, result.host, name, 'apply', String(result.error));
      if (error instanceof DeployStepError) failures.push(error);
      deployment.recap.fail(result.host, error, deployment.redact);
    }
  };
  const tooManyFailed = (): boolean => {
    const limit = deployment.policy.maxFailPercentage;
    const failed = hosts.filter((h) => isOut(deployment, h)).length;
    return (limit !== undefined && (failed * 100) / hosts.length > limit) || failed === hosts.length;
  };

  const started = new Set<string>();
  const startContainers = async (names: readonly string[]): Promise<void> => {
    await onEachHost(async (host) => {
      const targets = service.containers.filter((c) => c.host === host && names.includes(c.name));
      for (const container of targets) await updateContainer(deployment, container, actionOf(container), configRoot);
      const health = await Promise.allSettled(targets.map((container) => waitHealthy(deployment, container)));
      // Each change is a revision of its container on this host, healthy or not.
      await Promise.all(
        targets.map(async (container, i) => {
          if (!REVISED.has(actionOf(container).action)) return;
          const result = health[i]!;
          await recordRevision(deployment, container, options.command, result.status === 'fulfilled' ? null : (result.reason as Error));
        }),
      );
      const failed = health.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    });
    names.forEach((n) => started.add(n));
  };

  const stages = serviceStages(
    service.role,
    service.steps.filter((step) => step.step.kind === 'start' || (options.runSteps && stepPlanOf(step).run)),
    toolbox,
  );
  const result = await runStages(stages, outcome, async (stage) => {
    switch (stage.part) {
      case 'prepare':
        options.reporter.start(name, 'applying');
        // Everything a host needs is pulled before anything on it changes: a failed pull leaves it as it was.
        await onEachHost(async (host) => {
          const { engine, connection } = await deployment.pool.get(host);
          for (const data of service.dataContainers.filter((c) => c.host === host && actionOf(c).action === 'create')) await ensureImage(engine, data);
          for (const container of service.containers.filter((c) => c.host === host && ['create', 'recreate'].includes(actionOf(c).action))) {
            await ensureImage(engine, container, actionOf(container).pull === true);
          }
          await placeConfig(deployment, connection, service, plan, host);
          for (const data of service.dataContainers.filter((c) => c.host === host && actionOf(c).action === 'create')) {
            await guard(deployment, host, data.name, 'create data container', () => engine.create(data.spec));
          }
        });
        return tooManyFailed() ? stop(`stopped: ${describeFailures(failures, deployment)}`) : true;
      case 'step': {
        const step = stage.step;
        if (step.step.kind === 'start') {
          await startContainers(step.step.containers);
          return tooManyFailed() ? stop(`stopped: ${describeFailures(failures, deployment)}`) : true;
        }
        // One-shot steps run once for the whole cloud: where they cannot, the service stops everywhere.
        if (isOut(deployment, step.host)) return stop(`stopped: ${step.description} runs on ${step.host}, which failed`);
        options.reporter.start(name, step.description);
        try {
          await runStep(deployment, service, step);
          await recordStamp(deployment, step, configRoot);
          deployment.recap.ok(step.host, 1);
          return true;
        } catch (error) {
          if (error instanceof DeployStepError) failures.push(error);
          deployment.recap.fail(step.host, error, deployment.redact);
          return stop(`stopped: ${(error as Error).message}`);
        }
      }
      case 'rest':
        await startContainers(service.containers.map((c) => c.name).filter((n) => !started.has(n)));
        for (const host of hosts) if (!isOut(deployment, host)) deployment.recap.ok(host, changesOn(host));
        if (failures.length === 0) {
          options.reporter.finish(name, true, summarise(plan));
          return true;
        }
        if (tooManyFailed()) return stop(`stopped: ${describeFailures(failures, deployment)}`);
        options.reporter.finish(name, false, `${summarise(plan)}; failed on ${describeFailures(failures, deployment)}`);
        return true;
    }
  });
  if (!result.ok && result.incomplete) return notRun(result.incomplete);
  return result.ok;
}

function describeFailures(failures: readonly DeployStepError[], deployment: Deployment): string {
  const unreachable = deployment.recap.rows().filter((r) => r.outcome === 'unreachable').map((r) => `${r.host} (unreachable)`);
  return [...failures.map((f) => f.message), ...unreachable].join('; ') || 'every host failed';
}

async function placeConfig(deployment: Deployment, connection: HostConnection, service: DesiredService, plan: ServicePlan, host: string): Promise<void> {
  for (const container of service.containers.filter((c) => c.host === host)) {
    const actions = plan.files.filter((f) => f.host === host && f.container === container.name);
    if (actions.length === 0) continue;
    await guard(deployment, host, container.name, 'write config', async () => {
      await connection.ensureDir(container.configDir, 0o700);
      for (const action of actions) {
        if (action.action === 'remove') {
          await connection.remove(action.path);
        } else {
          const file = container.configFiles.find((f) => `${container.configDir}/${f.name}` === action.path)!;
          await connection.writeFileAtomic(action.path, file.content, file.mode);
        }
      }
    });
  }
}

export async function ensureImage(engine: ContainerEngine, container: DesiredContainer, refresh = false): Promise<void> {
  if (!refresh && (await engine.image(container.spec.image))) return;
  try {
    await engine.pull(container.spec.image);
  } catch (error) {
    throw new DeployStepError(container.host, container.name, 'pull image', `cannot pull ${container.spec.image}: ${(error as Error).message}`);
  }
}

async function updateContainer(deployment: Deployment, container: DesiredContainer, action: ContainerAction, configRoot: string): Promise<void> {
  const { engine, connection } = await deployment.pool.get(container.host);
  const step = `${action.action} (${action.reasons.join('; ') || 'up to date'})`;
  await guard(deployment, container.host, container.name, step, async () => {
    switch (action.action) {
      case 'create':
        await engine.create(container.spec);
        await engine.start(container.name);
        break;
      case 'recreate': {
        // The new container exists before the old one stops: the stretch with neither is a rename long, and not cut by an interrupt.
        const next = candidateName(container.name);
        await engine.remove(next);
        await engine.create({ ...container.spec, name: next });
        await deployment.critical(async () => {
          await engine.stop(container.name, STOP_TIMEOUT_SECONDS);
          await engine.remove(container.name);
          await engine.rename(next, container.name);
          await engine.start(container.name);
        });
        break;
      }
      case 'restart': {
        await engine.restart(container.name, STOP_TIMEOUT_SECONDS);
        // Labels are fixed at creation: remember the config this container now runs with.
        const restarted = await engine.inspect(container.name);
        if (restarted) await updateStateFile(connection, appliedConfigPath(configRoot), container.name, { id: restarted.id, configHash: container.configHash });
        break;
      }
      case 'start':
        await engine.start(container.name);
        break;
      case 'none':
        break;
    }
  });
}

export interface StepOptions {
  /**
   * One-shot containers read the config the service is about to get, staged
   * beside the live one, instead of the live one (an upgrade migrates before
   * its containers, and their config, are replaced).
   */
  stageConfig?: boolean;
}

export async function runStep(deployment: Deployment, service: DesiredService, desired: DesiredStep, options: StepOptions = {}): Promise<void> {
  const { engine, connection } = await deployment.pool.get(desired.host);
  const step = desired.step;
  switch (step.kind) {
    case 'database': {
      const sql = databaseSql(step.name, step.user, deployment.passwords[step.password]!);
      await execChecked(deployment, desired.host, TOOLBOX_CONTAINER, desired.description, () => engine.exec(TOOLBOX_CONTAINER, ['mariadb', '--batch'], { stdin: sql }));
      return;
    }
    case 'register':
      await execChecked(deployment, desired.host, TOOLBOX_CONTAINER, desired.description, () => engine.exec(TOOLBOX_CONTAINER, ['kolla_register'], { stdin: desired.stdin! }));
      return;
    case 'exec':
      await execChecked(deployment, desired.host, step.container, desired.description, () =>
        engine.exec(step.container, step.command, { ...(step.user ? { user: step.user } : {}), ...(desired.stdin !== undefined ? { stdin: desired.stdin } : {}) }),
      );
      return;
    case 'bootstrap':
    case 'oneshot': {
      const container = service.containers.find((c) => c.name === step.container && c.host === desired.host)!;
      await ensureImage(engine, container);
      const mode = step.kind === 'bootstrap' ? { KOLLA_BOOTSTRAP: '' } : step.environment;
      let volumes = container.spec.volumes;
      if (options.stageConfig) {
        const staged = `${String(deployment.globals.node_config_directory)}/.kolla-ts/staged/${container.name}`;
        await guard(deployment, desired.host, container.name, 'stage config', async () => {
          await connection.remove(staged);
          await writeConfigDir(connection, staged, container.configFiles, new Map());
        });
        volumes = volumes.map((v) => (v.startsWith(`${container.configDir}/:`) ? `${staged}/:${v.slice(container.configDir.length + 2)}` : v));
      }
      const oneShot: ContainerSpec = {
        ...container.spec,
        volumes,
        name: `${container.name}_bootstrap`,
        labels: { [LABEL.bootstrap]: container.name, [LABEL.service]: container.service },
        environment: { ...container.spec.environment, ...mode },
        restart: false,
      };
      delete oneShot.healthcheck;
      const okExitCodes = step.kind === 'oneshot' ? step.okExitCodes : [0];
      await execChecked(deployment, desired.host, oneShot.name, desired.description, () => engine.runOnce(oneShot), okExitCodes);
      return;
    }
    case 'restart': {
      for (const name of step.containers) {
        const container = service.containers.find((c) => c.name === name && c.host === desired.host);
        if (!container) continue;
        await guard(deployment, desired.host, name, desired.description, () => engine.restart(name, STOP_TIMEOUT_SECONDS));
        await waitHealthy(deployment, container);
      }
      return;
    }
    case 'start':
      return;
  }
}

/** Container changes that make a revision (a plain start runs what was there). */
const REVISED = new Set<ContainerAction['action']>(['create', 'recreate', 'restart']);

async function recordRevision(deployment: Deployment, container: DesiredContainer, command: string, error: Error | null): Promise<void> {
  const { engine, connection } = await deployment.pool.get(container.host);
  const state = await engine.inspect(container.name);
  if (!state) return;
  await new HostJournal(connection, String(deployment.globals.node_config_directory), deployment.configDir).add(
    {
      host: container.host,
      service: container.service,
      container: container.name,
      at: new Date().toISOString(),
      command,
      outcome: error ? 'failed' : 'healthy',
      ...(error ? { detail: deployment.redact(error.message) } : {}),
      containerId: state.id,
      ...(await imageFacts(engine, container.spec.image, state.imageId)),
      configHash: container.configHash,
      definitionHash: container.definitionHash,
      spec: container.spec,
    },
    container.configFiles,
  );
}

/**
 * Records a step as done on its host, stamped with the image the step ran
 * as it is there now: on a new host the plan saw no image yet (it was pulled
 * since), and that must not make the next deploy run the step again.
 */
export async function recordStamp(deployment: Deployment, step: DesiredStep, configRoot: string): Promise<void> {
  const { engine, connection } = await deployment.pool.get(step.host);
  const imageId = step.imageRef ? ((await engine.image(step.imageRef))?.id ?? null) : null;
  await updateStateFile(connection, stepStampsPath(configRoot), stepId(step), stepStamp(step, imageId));
}

function databaseSql(database: string, user: string, password: string): string {
  return [
    `CREATE DATABASE IF NOT EXISTS ${sqlIdentifier(database)};`,
    `CREATE USER IF NOT EXISTS ${sqlString(user)}@'%' IDENTIFIED BY ${sqlString(password)};`,
    `ALTER USER ${sqlString(user)}@'%' IDENTIFIED BY ${sqlString(password)};`,
    `GRANT ALL PRIVILEGES ON ${sqlIdentifier(database)}.* TO ${sqlString(user)}@'%';`,
    'FLUSH PRIVILEGES;',
    '',
  ].join('\n');
}

/** Records on each unclaimed host which config directory manages it (see checkOwner); a host that cannot be claimed is out. */
export async function claimHosts(deployment: Deployment, hostNames: readonly string[]): Promise<void> {
  const path = ownerPath(String(deployment.globals.node_config_directory));
  const settled = await forEachHost(
    hostNames.filter((name) => deployment.unclaimed.has(name)),
    deployment.policy,
    async (name) => {
      const { connection } = await deployment.pool.get(name);
      await connection.ensureDir(dirname(path), 0o700);
      await connection.writeFileAtomic(path, JSON.stringify({ configDir: deployment.configDir }, null, 2), 0o600);
      deployment.unclaimed.delete(name);
    },
  );
  for (const result of settled) if (result.status === 'failed') deployment.recap.fail(result.host, result.error, deployment.redact);
}
