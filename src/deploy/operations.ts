import { writeFileSync, chmodSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { STOP_TIMEOUT_SECONDS, type ContainerState } from '../engine/containers.ts';
import { DeployStepError, UnhealthyError } from '../errors.ts';
import { forEachHost, type HostSettled } from '../fleet/runner.ts';
import { shellQuote } from '../util/escape.ts';
import { enabledRoles, LABEL } from '../plan/desired.ts';
import type { Role } from '../plan/roles.ts';
import { diffState, isEmptyPlan, type ObservedHost, type Plan } from '../plan/diff.ts';
import { observeHost } from '../plan/observe.ts';
import { withoutDownHosts } from '../plan/scope.ts';
import { candidateName, keptName } from '../state/revisions.ts';
import { ownerPath, readStateFile, stepStampsPath, writeStateFile } from '../transport/state-files.ts';
import { applyPlan, type ApplyOptions } from './apply.ts';
import { passesHealthTest, waitHealthy } from './health.ts';
import type { Deployment } from './session.ts';

export async function computePlan(deployment: Deployment, options: { runSteps: boolean }): Promise<Plan> {
  return (await observeAndDiff(deployment, options)).plan;
}

/**
 * Observes every host of the desired state in parallel. A host that does not
 * answer is recorded in the recap and dropped from the desired state, with
 * the services that cannot run without it.
 */
export async function observeAndDiff(deployment: Deployment, options: { runSteps: boolean }): Promise<{ plan: Plan; observed: Map<string, ObservedHost> }> {
  const configRoot = String(deployment.globals.node_config_directory);
  const observed = new Map<string, ObservedHost>();
  const down = new Set<string>();
  const settled = await forEachHost(deployment.desired.hosts, deployment.policy, async (name) =>
    observeHost(deployment.desired, name, await deployment.pool.get(name), configRoot),
  );
  for (const result of settled) {
    if (result.status === 'done') observed.set(result.host, result.value);
    else {
      down.add(result.host);
      if (result.status === 'failed') deployment.recap.fail(result.host, result.error, deployment.redact);
    }
  }
  if (down.size > 0) {
    const { desired, blocked } = withoutDownHosts(deployment.desired, down);
    deployment.desired = desired;
    for (const [service, why] of blocked) deployment.blocked.set(service, why);
  }
  return { plan: diffState(deployment.desired, observed, options), observed };
}

/**
 * deploy (runSteps) and reconfigure (no steps): plan, then apply. Containers
 * the plan leaves alone but that were still starting (after a host reboot,
 * say) are waited for too: the command ends when the cloud is up.
 */
export async function converge(deployment: Deployment, options: ApplyOptions): Promise<Plan> {
  const { plan, observed } = await observeAndDiff(deployment, { runSteps: options.runSteps });
  if (!isEmptyPlan(plan)) await applyPlan(deployment, plan, options);
  const untouched = new Set(plan.services.flatMap((s) => s.containers.filter((c) => c.action === 'none').map((c) => `${c.host}/${c.container}`)));
  const starting = deployment.desired.services
    .flatMap((s) => s.containers)
    .filter((c) => untouched.has(`${c.host}/${c.name}`) && observed.get(c.host)?.containers.get(c.name)?.health === 'starting');
  await Promise.all(
    starting.map(async (container) => {
      try {
        await waitHealthy(deployment, container);
      } catch (error) {
        deployment.recap.fail(container.host, error, deployment.redact);
      }
    }),
  );
  return plan;
}

export interface ContainerStatus {
  host: string;
  service: string;
  container: string;
  kind: 'service' | 'data';
  image: string | null;
  state: string;
  health: string | null;
  changedAt: string | null;
}

/** One row per container the desired state names; hosts are asked in parallel, each with one listing. */
export async function collectStatus(deployment: Deployment): Promise<ContainerStatus[]> {
  const settled = await forEachHost(deployment.desired.hosts, deployment.policy, async (host) => {
    const { engine } = await deployment.pool.get(host);
    return new Map((await engine.listByLabel(`${LABEL.managed}=true`)).map((c) => [c.name, c]));
  });
  const byHost = new Map<string, Map<string, ContainerState>>();
  for (const result of settled) {
    if (result.status === 'done') byHost.set(result.host, result.value);
    else if (result.status === 'failed') deployment.recap.fail(result.host, result.error, deployment.redact);
  }
  const rows: ContainerStatus[] = [];
  for (const service of deployment.desired.services) {
    for (const container of [...service.dataContainers, ...service.containers]) {
      const containers = byHost.get(container.host);
      if (!containers) continue;
      const state = containers.get(container.name);
      rows.push({
        host: container.host,
        service: service.role.service,
        container: container.name,
        kind: container.kind,
        image: state?.image ?? null,
        state: state ? state.status : 'missing',
        health: state?.health ?? null,
        changedAt: state ? (state.startedAt.startsWith('0001') ? state.createdAt : state.startedAt) : null,
      });
    }
  }
  return rows;
}

/** Fails naming every service container that should run and is missing, stopped or unhealthy. */
export async function checkHealth(deployment: Deployment): Promise<ContainerStatus[]> {
  const rows = await collectStatus(deployment);
  // A container Docker has not probed yet ("starting") counts when its own test passes now, as deploy's wait does.
  await Promise.all(
    rows
      .filter((r) => r.state === 'running' && r.health === 'starting')
      .map(async (row) => {
        const container = deployment.desired.services.flatMap((s) => s.containers).find((c) => c.host === row.host && c.name === row.container);
        if (container && (await passesHealthTest((await deployment.pool.get(row.host)).engine, container))) row.health = 'healthy';
      }),
  );
  const bad = rows.filter((r) => r.kind === 'service' && (r.state !== 'running' || (r.health !== null && r.health !== 'healthy')));
  for (const row of bad) deployment.recap.fail(row.host, new UnhealthyError(`${row.container} is ${row.state}${row.health ? `, ${row.health}` : ''}`));
  if (bad.length > 0) {
    throw new UnhealthyError(
      `${bad.length} container(s) not healthy: ${bad.map((r) => `${r.host}/${r.container} (${r.state}${r.health ? `, ${r.health}` : ''})`).join(', ')}`,
    );
  }
  return rows;
}

/** Stops service containers, last stage first, each host by itself. Data containers and volumes are untouched. */
export async function stopServices(deployment: Deployment, log: (line: string) => void): Promise<void> {
  const settled = await forEachHost(deployment.desired.hosts, deployment.policy, async (host) => {
    const { engine } = await deployment.pool.get(host);
    let stopped = 0;
    for (const service of [...deployment.desired.services].reverse()) {
      for (const container of [...service.containers].reverse().filter((c) => c.host === host)) {
        if (!(await engine.inspect(container.name))?.running) continue;
        log(`${host}: stopping ${container.name}`);
        await engine.stop(container.name, STOP_TIMEOUT_SECONDS);
        stopped++;
      }
    }
    return stopped;
  });
  recordSettled(deployment, settled);
}

function recordSettled(deployment: Deployment, settled: readonly HostSettled<number>[]): void {
  for (const result of settled) {
    if (result.status === 'done') deployment.recap.ok(result.host, result.value);
    else if (result.status === 'failed') deployment.recap.fail(result.host, result.error, deployment.redact);
  }
}

/**
 * Pulls every image each host's containers use, hosts in parallel. The
 * engine asks the registry for the tag's digest, so a re-pushed tag arrives
 * and an unchanged one costs one request.
 */
export async function pullImages(deployment: Deployment, log: (line: string) => void): Promise<void> {
  const settled = await forEachHost(deployment.desired.hosts, deployment.policy, async (host) => {
    const { engine } = await deployment.pool.get(host);
    const refs = [...new Set(deployment.desired.services.flatMap((s) => [...s.containers, ...s.dataContainers]).filter((c) => c.host === host).map((c) => c.spec.image))];
    let changed = 0;
    for (const ref of refs) {
      const before = (await engine.image(ref))?.id;
      try {
        await engine.pull(ref);
      } catch (error) {
        throw new DeployStepError(host, ref, 'pull image', (error as Error).message);
      }
      if ((await engine.image(ref))?.id !== before) {
        changed++;
        log(`${host}: pulled ${ref}`);
      }
    }
    return changed;
  });
  recordSettled(deployment, settled);
}

export interface DestroyOptions {
  includeData: boolean;
  includeImages: boolean;
}

/**
 * Removes service containers and their config. Data containers, named
 * volumes and images go only when asked for explicitly, and only those of
 * the selected services: a volume another service still uses (kolla_logs)
 * stays, and so do the other services' step stamps.
 */
export async function destroy(deployment: Deployment, options: DestroyOptions, log: (line: string) => void): Promise<void> {
  const configRoot = String(deployment.globals.node_config_directory);
  const selected = new Set(deployment.desired.services.map((s) => s.role.service));
  const keptVolumes = volumesOf(enabledRoles(deployment.roles, deployment.globals).filter((role) => !selected.has(role.service)));
  const everything = deployment.desired.services.length === enabledRoles(deployment.roles, deployment.globals).length;
  const settled = await forEachHost(deployment.desired.hosts, deployment.policy, async (host) => {
    const { engine, connection } = await deployment.pool.get(host);
    let removed = 0;
    const images = new Set<string>();
    for (const service of [...deployment.desired.services].reverse()) {
      for (const container of [...service.containers, ...(options.includeData ? service.dataContainers : [])].filter((c) => c.host === host)) {
        log(`${host}: removing ${container.name}`);
        // Stopped first, as `stop` does: a forced removal kills only dumb-init, and libvirtd, which left the
        // container's cgroups so that guests outlive it, would run on with no container.
        if (container.kind === 'service') await engine.stop(container.name, STOP_TIMEOUT_SECONDS);
        await engine.remove(container.name);
        // The rollback point an upgrade kept, and a replacement an interrupted run left.
        if (container.kind === 'service') for (const other of [keptName(container.name), candidateName(container.name)]) await engine.remove(other);
        if (container.kind === 'service') await connection.remove(container.configDir);
        images.add(container.spec.image);
        removed++;
      }
    }
    // Leftover one-shot containers of an interrupted bootstrap of these services.
    for (const leftover of await engine.listByLabel(LABEL.bootstrap)) {
      if (selected.has(leftover.labels[LABEL.service] ?? '')) await engine.remove(leftover.name);
    }
    if (options.includeData) {
      for (const volume of namedVolumes(deployment, host)) {
        if (keptVolumes.has(volume)) {
          log(`${host}: keeping volume ${volume} (other services use it)`);
          continue;
        }
        log(`${host}: removing volume ${volume}`);
        await engine.removeVolume(volume);
        removed++;
      }
      // Their steps (databases, registrations) must run again on the next deploy; the others' must not.
      const stamps = await readStateFile<string>(connection, stepStampsPath(configRoot));
      const remaining = Object.fromEntries(Object.entries(stamps).filter(([id]) => !selected.has(id.split('/')[0]!)));
      await writeStateFile(connection, stepStampsPath(configRoot), remaining);
      // With every service and its data gone the host is free for another config directory.
      if (everything) await connection.remove(ownerPath(configRoot));
    }
    if (options.includeImages) {
      for (const image of images) {
        log(`${host}: removing image ${image}`);
        await engine.removeImage(image);
      }
    }
    return removed;
  });
  recordSettled(deployment, settled);
}

/** Named volumes (not host paths) that containers of these roles mount. */
function volumesOf(roles: readonly Role[]): Set<string> {
  const volumes = new Set<string>();
  for (const role of roles) {
    for (const def of [...role.containers, ...role.dataContainers]) for (const volume of def.volumes) addNamedVolume(volumes, volume);
  }
  return volumes;
}

function namedVolumes(deployment: Deployment, host: string): Set<string> {
  const volumes = new Set<string>();
  for (const service of deployment.desired.services) {
    for (const container of [...service.containers, ...service.dataContainers]) {
      if (container.host !== host) continue;
      for (const volume of container.definition.volumes) addNamedVolume(volumes, volume);
    }
  }
  return volumes;
}

function addNamedVolume(volumes: Set<string>, mount: string): void {
  const source = mount.split(':')[0]!;
  if (source && !source.startsWith('/')) volumes.add(source);
}

/** Writes admin-openrc.sh (0600) for the real OpenStack client. */
export function writeAdminOpenrc(deployment: Deployment, configDir: string): string {
  const file = join(configDir, 'admin-openrc.sh');
  const lines = [
    '# Generated by kolla-ts post-deploy. Keep it private: it holds the admin password.',
    'export OS_PROJECT_DOMAIN_NAME=Default',
    'export OS_USER_DOMAIN_NAME=Default',
    'export OS_PROJECT_NAME=admin',
    'export OS_USERNAME=admin',
    `export OS_PASSWORD=${shellQuote(deployment.passwords.keystone_admin_password ?? '')}`,
    `export OS_AUTH_URL=${shellQuote(`http://${deployment.globals.kolla_internal_vip_address}:5000/v3`)}`,
    'export OS_INTERFACE=internal',
    'export OS_ENDPOINT_TYPE=internalURL',
    'export OS_IDENTITY_API_VERSION=3',
    `export OS_REGION_NAME=${shellQuote(String(deployment.globals.openstack_region_name))}`,
    'export OS_AUTH_PLUGIN=password',
    '',
  ];
  const temp = `${file}.tmp-${process.pid}`;
  writeFileSync(temp, lines.join('\n'), { mode: 0o600 });
  chmodSync(temp, 0o600);
  renameSync(temp, file);
  return file;
}

