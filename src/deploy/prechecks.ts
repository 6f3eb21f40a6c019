import type { ContainerEngine, ContainerState } from '../engine/containers.ts';
import { forEachHost } from '../fleet/runner.ts';
import { LABEL } from '../plan/desired.ts';
import type { HostConnection } from '../transport/host.ts';
import type { Deployment } from './session.ts';

/*
 * Checks each host can take what the desired state puts on it, changing
 * nothing there (the privileged test container is removed again).
 */

export type CheckStatus = 'ok' | 'failed' | 'skipped';

export interface CheckResult {
  host: string;
  check: string;
  status: CheckStatus;
  detail: string;
}

/** The oldest engine known to work (Debian 12's docker.io; API 1.41). */
const MIN_ENGINE_API = [1, 41] as const;
const MIN_FREE_DISK_GIB = 10;
const MAX_CLOCK_SKEW_SECONDS = 5;

export const CHECKS = ['engine', 'privileged', 'ports', 'disk', 'clock', 'hostname', 'interfaces', 'images'] as const;

interface HostContext {
  host: string;
  connection: HostConnection;
  engine: ContainerEngine;
  deployment: Deployment;
  running: Map<string, ContainerState>;
}

type Check = (context: HostContext) => Promise<Omit<CheckResult, 'host' | 'check'>>;

const ok = (detail: string): Omit<CheckResult, 'host' | 'check'> => ({ status: 'ok', detail });
const failed = (detail: string): Omit<CheckResult, 'host' | 'check'> => ({ status: 'failed', detail });
const skipped = (detail: string): Omit<CheckResult, 'host' | 'check'> => ({ status: 'skipped', detail });

const containersOn = (context: HostContext) => context.deployment.desired.services.flatMap((s) => [...s.containers, ...s.dataContainers]).filter((c) => c.host === context.host);

const checks: Record<(typeof CHECKS)[number], Check> = {
  async engine({ connection }) {
    const version = (await connection.docker.version()) as { Version: string; ApiVersion: string };
    const [major, minor] = version.ApiVersion.split('.').map(Number) as [number, number];
    const recent = major > MIN_ENGINE_API[0] || (major === MIN_ENGINE_API[0] && minor >= MIN_ENGINE_API[1]);
    return recent ? ok(`Docker ${version.Version} (API ${version.ApiVersion})`) : failed(`Docker ${version.Version} (API ${version.ApiVersion}) is older than API ${MIN_ENGINE_API.join('.')}`);
  },

  async privileged(context) {
    const needs = containersOn(context).filter((c) => c.definition.privileged);
    if (needs.length === 0) return skipped('no privileged container here');
    const image = (await Promise.all(containersOn(context).map(async (c) => ((await context.engine.image(c.spec.image)) ? c.spec.image : null)))).find(Boolean);
    if (!image) return skipped('no kolla image on this host yet to test with; run kolla-ts pull');
    const name = `kolla_ts_precheck_privileged_${process.pid}`;
    const result = await context.engine.runOnce({
      name,
      image,
      labels: { [LABEL.bootstrap]: 'precheck' },
      environment: {},
      volumes: [],
      volumesFrom: [],
      privileged: true,
      networkMode: 'none',
      capAdd: [],
      command: ['true'],
      restart: false,
    });
    return result.exitCode === 0
      ? ok(`a privileged container starts (${needs.map((c) => c.name).join(', ')} need it)`)
      : failed(`a privileged container cannot start here (exit ${result.exitCode}): ${result.output.trim().split('\n').pop() ?? ''}`);
  },

  async ports(context) {
    const listening = await listeningPorts(context.connection);
    const taken: string[] = [];
    for (const container of containersOn(context)) {
      // Our own container listening on its port is not a conflict.
      if (context.running.get(container.name)?.running) continue;
      for (const port of container.ports) if (listening.has(port)) taken.push(`${port} (${container.name})`);
    }
    const wanted = containersOn(context).flatMap((c) => c.ports);
    if (wanted.length === 0) return skipped('no service here listens on a port');
    return taken.length === 0 ? ok(`${wanted.length} port(s) free or ours`) : failed(`port ${taken.join(', ')} already in use by another process`);
  },

  async disk({ connection }) {
    const result = await connection.exec(['df', '-Pk', '/var/lib/docker']);
    if (result.code !== 0) return failed(`df /var/lib/docker: ${result.stderr.trim()}`);
    const available = Number(result.stdout.trim().split('\n').pop()?.split(/\s+/)[3]);
    const gib = available / 1024 / 1024;
    return gib >= MIN_FREE_DISK_GIB ? ok(`${gib.toFixed(0)} GiB free under /var/lib/docker`) : failed(`${gib.toFixed(1)} GiB free under /var/lib/docker, below ${MIN_FREE_DISK_GIB} GiB`);
  },

  async clock({ connection }) {
    const before = Date.now();
    const result = await connection.exec(['date', '+%s']);
    const after = Date.now();
    const skew = Number(result.stdout.trim()) - (before + after) / 2000;
    if (result.code !== 0 || !Number.isFinite(skew)) return failed(`cannot read the host's clock: ${result.stderr.trim()}`);
    return Math.abs(skew) <= MAX_CLOCK_SKEW_SECONDS ? ok(`within ${Math.max(1, Math.ceil(Math.abs(skew)))} s of this host`) : failed(`${skew.toFixed(0)} s off this host's clock (more than ${MAX_CLOCK_SKEW_SECONDS} s)`);
  },

  async hostname({ connection }) {
    const result = await connection.exec(['sh', '-c', 'getent hosts "$(hostname)"']);
    return result.code === 0 && result.stdout.trim() ? ok(`resolves to ${result.stdout.trim().split(/\s+/)[0]}`) : failed('the host cannot resolve its own name (add it to /etc/hosts)');
  },

  async interfaces(context) {
    const vars = context.deployment.inventory.hosts.get(context.host)?.vars ?? {};
    const globals = context.deployment.globals;
    const apiInterface = String(vars.api_interface ?? vars.network_interface ?? globals.api_interface);
    const problems: string[] = [];
    if (!(await context.connection.interfaceAddress(apiInterface))) problems.push(`api_interface ${apiInterface} has no IPv4 address`);
    const external = vars.neutron_external_interface ?? globals.neutron_external_interface;
    const bridgesHere = containersOn(context).some((c) => c.name === 'neutron_linuxbridge_agent');
    if (external !== undefined && bridgesHere && (await context.connection.exec(['ip', '-o', 'link', 'show', 'dev', String(external)])).code !== 0) {
      problems.push(`neutron_external_interface ${external} does not exist`);
    }
    return problems.length === 0 ? ok(`${apiInterface}${bridgesHere && external !== undefined ? `, ${external}` : ''}`) : failed(problems.join('; '));
  },

  async images(context) {
    const refs = [...new Set(containersOn(context).map((c) => c.spec.image))];
    const missing: string[] = [];
    await Promise.all(
      refs.map(async (ref) => {
        if (!(await context.engine.registryDigest(ref)) && !(await context.engine.image(ref))) missing.push(ref);
      }),
    );
    return missing.length === 0 ? ok(`${refs.length} image(s) in the registry or on the host`) : failed(`not in the registry (or it is unreachable) nor on the host: ${missing.sort().join(', ')}`);
  },
};

/** Every check on every host; a host that does not answer fails its engine check and skips the rest. */
export async function runPrechecks(deployment: Deployment): Promise<CheckResult[]> {
  const settled = await forEachHost(deployment.desired.hosts, deployment.policy, async (host) => {
    const { connection, engine } = await deployment.pool.get(host);
    const running = new Map((await engine.listByLabel(`${LABEL.managed}=true`)).map((c) => [c.name, c]));
    const context: HostContext = { host, connection, engine, deployment, running };
    const results: CheckResult[] = [];
    for (const check of CHECKS) {
      try {
        results.push({ host, check, ...(await checks[check](context)) });
      } catch (error) {
        results.push({ host, check, status: 'failed', detail: deployment.redact((error as Error).message) });
      }
    }
    return results;
  });
  return settled.flatMap((result) => {
    if (result.status === 'done') {
      const failures = result.value.filter((r) => r.status === 'failed');
      if (failures.length > 0) deployment.recap.fail(result.host, new Error(failures.map((r) => `${r.check}: ${r.detail}`).join('; ')));
      else deployment.recap.ok(result.host);
      return result.value;
    }
    if (result.status === 'failed') deployment.recap.fail(result.host, result.error, deployment.redact);
    const why = result.status === 'failed' ? deployment.redact((result.error as Error).message) : 'not run (too many hosts failed)';
    return CHECKS.map((check, i) => ({ host: result.host, check, status: (i === 0 ? 'failed' : 'skipped') as CheckStatus, detail: i === 0 ? why : 'host not reached' }));
  });
}

/** TCP ports something listens on, from the kernel's tables (no ss or netstat needed on the host). */
async function listeningPorts(connection: HostConnection): Promise<Set<number>> {
  const { stdout } = await connection.exec(['sh', '-c', 'cat /proc/net/tcp /proc/net/tcp6 2>/dev/null']);
  const ports = new Set<number>();
  for (const line of stdout.split('\n')) {
    const fields = line.trim().split(/\s+/);
    // st 0A is LISTEN; local_address is ADDR:PORT in hex.
    if (fields[3] === '0A' && fields[1]?.includes(':')) ports.add(parseInt(fields[1].split(':')[1]!, 16));
  }
  return ports;
}
