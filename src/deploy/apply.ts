import { dirname } from 'node:path';
import type { ContainerEngine, ContainerSpec } from '../engine/containers.ts';
import { DeployStepError } from '../errors.ts';
import { LABEL, type DesiredContainer, type DesiredService, type DesiredStep } from '../plan/desired.ts';
import { stepId, type ContainerAction, type Plan, type ServicePlan } from '../plan/diff.ts';
import { appliedConfigPath, ownerPath, stepStampsPath, updateStateFile } from '../transport/state-files.ts';
import { sqlIdentifier, sqlString } from '../util/escape.ts';
import type { Deployment } from './session.ts';

export interface ApplyReporter {
  start(name: string, detail?: string): void;
  finish(name: string, ok: boolean, detail?: string): void;
}

export interface ApplyOptions {
  /** deploy runs steps; reconfigure only places config and updates containers. */
  runSteps: boolean;
  reporter: ApplyReporter;
}

const STOP_TIMEOUT_SECONDS = 30;
const TOOLBOX = 'kolla_toolbox';

/** Applies a plan service by service, in stage order. Stops at the first failure, naming host, container and step. */
export async function applyPlan(deployment: Deployment, plan: Plan, options: ApplyOptions): Promise<void> {
  const configRoot = String(deployment.globals.node_config_directory);
  await claimHosts(deployment, deployment.desired.hosts);
  for (const service of deployment.desired.services) {
    const servicePlan = plan.services.find((p) => p.service === service.role.service)!;
    if (isNothing(servicePlan)) {
      options.reporter.finish(service.role.service, true, 'nothing to do');
      continue;
    }
    options.reporter.start(service.role.service, 'applying');
    try {
      await applyService(deployment, service, servicePlan, options, configRoot);
    } catch (error) {
      options.reporter.finish(service.role.service, false, (error as Error).message);
      throw error;
    }
    options.reporter.finish(service.role.service, true, summarise(servicePlan));
  }
}

function isNothing(plan: ServicePlan): boolean {
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

async function applyService(deployment: Deployment, service: DesiredService, plan: ServicePlan, options: ApplyOptions, configRoot: string): Promise<void> {
  await placeConfig(deployment, service, plan);
  const engineOf = (host: string): ContainerEngine => deployment.hosts.get(host)!.engine;

  for (const data of service.dataContainers) {
    const action = plan.containers.find((c) => c.host === data.host && c.container === data.name)!;
    if (action.action === 'create') {
      await ensureImage(engineOf(data.host), data, 'pull image');
      await guard(deployment, data.host, data.name, 'create data container', () => engineOf(data.host).create(data.spec));
    }
  }

  // Pull every image first: a failed pull leaves the old containers untouched.
  for (const container of service.containers) {
    const action = plan.containers.find((c) => c.host === container.host && c.container === container.name)!;
    if (action.action === 'create' || action.action === 'recreate') await ensureImage(engineOf(container.host), container, 'pull image');
  }

  const started = new Set<string>();
  const startContainers = async (names: readonly string[]): Promise<void> => {
    const targets = service.containers.filter((c) => names.includes(c.name));
    await Promise.all(
      targets.map(async (container) => {
        const action = plan.containers.find((c) => c.host === container.host && c.container === container.name)!;
        await updateContainer(deployment, container, action, configRoot);
      }),
    );
    await Promise.all(targets.map((container) => waitHealthy(deployment, container)));
    names.forEach((n) => started.add(n));
  };

  for (const step of service.steps) {
    if (step.step.kind === 'start') {
      await startContainers(step.step.containers);
      continue;
    }
    const stepPlan = plan.steps.find((s) => s.id === stepId(step))!;
    if (!stepPlan.run || !options.runSteps) continue;
    options.reporter.start(service.role.service, step.description);
    await runStep(deployment, service, step);
    await recordStamp(deployment, step, stepPlan.stamp, configRoot);
  }
  await startContainers(service.containers.map((c) => c.name).filter((n) => !started.has(n)));
}

async function placeConfig(deployment: Deployment, service: DesiredService, plan: ServicePlan): Promise<void> {
  for (const container of service.containers) {
    const actions = plan.files.filter((f) => f.host === container.host && f.container === container.name);
    if (actions.length === 0) continue;
    const { connection } = deployment.hosts.get(container.host)!;
    await guard(deployment, container.host, container.name, 'write config', async () => {
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

async function ensureImage(engine: ContainerEngine, container: DesiredContainer, step: string): Promise<void> {
  if (await engine.imageId(container.spec.image)) return;
  try {
    await engine.pull(container.spec.image);
  } catch (error) {
    throw new DeployStepError(container.host, container.name, step, `cannot pull ${container.spec.image}: ${(error as Error).message}`);
  }
}

async function updateContainer(deployment: Deployment, container: DesiredContainer, action: ContainerAction, configRoot: string): Promise<void> {
  const engine = deployment.hosts.get(container.host)!.engine;
  const step = `${action.action} (${action.reasons.join('; ') || 'up to date'})`;
  await guard(deployment, container.host, container.name, step, async () => {
    switch (action.action) {
      case 'create':
        await engine.create(container.spec);
        await engine.start(container.name);
        break;
      case 'recreate':
        await engine.stop(container.name, STOP_TIMEOUT_SECONDS);
        await engine.remove(container.name);
        await engine.create(container.spec);
        await engine.start(container.name);
        break;
      case 'restart': {
        await engine.restart(container.name, STOP_TIMEOUT_SECONDS);
        // Labels are fixed at creation: remember the config this container now runs with.
        const restarted = await engine.inspect(container.name);
        if (restarted) {
          const { connection } = deployment.hosts.get(container.host)!;
          await updateStateFile(connection, appliedConfigPath(configRoot), container.name, { id: restarted.id, configHash: container.configHash });
        }
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

export async function waitHealthy(deployment: Deployment, container: DesiredContainer): Promise<void> {
  const engine = deployment.hosts.get(container.host)!.engine;
  const deadline = Date.now() + Number(deployment.globals.health_timeout) * 1000;
  let restarts: number | undefined;
  for (;;) {
    const state = await engine.inspect(container.name);
    if (!state) throw await failure(deployment, container.host, container.name, 'wait for health', 'container disappeared');
    restarts ??= state.restartCount;
    // A service that exits is restarted by its policy: one restart is enough to know it does not come up.
    if (!state.running) {
      throw await failure(deployment, container.host, container.name, 'wait for health', `container stopped (exit code ${state.exitCode})`);
    }
    if (state.status === 'restarting' || state.restartCount > restarts) {
      throw await failure(deployment, container.host, container.name, 'wait for health', 'container keeps exiting and being restarted');
    }
    if (state.health === undefined || state.health === 'healthy') return;
    if (Date.now() > deadline) throw await failure(deployment, container.host, container.name, 'wait for health', `still ${state.health} after ${deployment.globals.health_timeout}s`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function runStep(deployment: Deployment, service: DesiredService, desired: DesiredStep): Promise<void> {
  const engine = deployment.hosts.get(desired.host)!.engine;
  const step = desired.step;
  switch (step.kind) {
    case 'database': {
      const sql = databaseSql(step.name, step.user, deployment.passwords[step.password]!);
      await execChecked(deployment, desired.host, TOOLBOX, desired.description, () => engine.exec(TOOLBOX, ['mariadb', '--batch'], { stdin: sql }));
      return;
    }
    case 'register':
      await execChecked(deployment, desired.host, TOOLBOX, desired.description, () => engine.exec(TOOLBOX, ['kolla_register'], { stdin: desired.stdin! }));
      return;
    case 'exec':
      await execChecked(deployment, desired.host, step.container, desired.description, () =>
        engine.exec(step.container, step.command, { ...(step.user ? { user: step.user } : {}), ...(desired.stdin !== undefined ? { stdin: desired.stdin } : {}) }),
      );
      return;
    case 'bootstrap': {
      const container = service.containers.find((c) => c.name === step.container && c.host === desired.host)!;
      await ensureImage(engine, container, 'pull image');
      const oneShot: ContainerSpec = {
        ...container.spec,
        name: `${container.name}_bootstrap`,
        labels: { [LABEL.bootstrap]: container.name, [LABEL.service]: container.service },
        environment: { ...container.spec.environment, KOLLA_BOOTSTRAP: '' },
        restart: false,
      };
      delete oneShot.healthcheck;
      await execChecked(deployment, desired.host, oneShot.name, desired.description, () => engine.runOnce(oneShot));
      return;
    }
    case 'start':
      return;
  }
}

async function execChecked(
  deployment: Deployment,
  host: string,
  container: string,
  step: string,
  run: () => Promise<{ exitCode: number; output: string }>,
): Promise<void> {
  const result = await guard(deployment, host, container, step, run);
  if (result.exitCode !== 0) {
    throw new DeployStepError(host, container, step, `exit code ${result.exitCode}`, tail(deployment.redact(result.output)));
  }
}

/** Runs one host operation; any failure becomes a DeployStepError naming host, container and step, with the log tail. */
async function guard<T>(deployment: Deployment, host: string, container: string, step: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof DeployStepError) throw error;
    throw await failure(deployment, host, container, step, (error as Error).message);
  }
}

async function failure(deployment: Deployment, host: string, container: string, step: string, detail: string): Promise<DeployStepError> {
  let logs = '';
  try {
    logs = await deployment.hosts.get(host)!.engine.logsTail(container, 30);
  } catch {
    logs = '';
  }
  return new DeployStepError(host, container, step, deployment.redact(detail), tail(deployment.redact(logs)));
}

function tail(text: string, lines = 30): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

async function recordStamp(deployment: Deployment, step: DesiredStep, stamp: string, configRoot: string): Promise<void> {
  await updateStateFile(deployment.hosts.get(step.host)!.connection, stepStampsPath(configRoot), stepId(step), stamp);
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

/** Records on each host which config directory manages it (see checkOwner). */
async function claimHosts(deployment: Deployment, hostNames: readonly string[]): Promise<void> {
  const configRoot = String(deployment.globals.node_config_directory);
  await Promise.all(
    hostNames.map(async (name) => {
      const connection = deployment.hosts.get(name)!.connection;
      if (await connection.readFile(ownerPath(configRoot))) return;
      await connection.ensureDir(dirname(ownerPath(configRoot)), 0o700);
      await connection.writeFileAtomic(ownerPath(configRoot), JSON.stringify({ configDir: deployment.configDir }, null, 2), 0o600);
    }),
  );
}
