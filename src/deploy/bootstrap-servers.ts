import type { Globals } from '../config/globals.ts';
import type { HostPool } from '../fleet/hosts.ts';
import { forEachHost, type Recap, type RunPolicy } from '../fleet/runner.ts';
import type { CommandResult, HostConnection } from '../transport/host.ts';

/*
 * Prepares Debian hosts for kolla-ts, idempotently: the Docker engine, its
 * daemon.json, a shared root mount, kolla-ts's directories. Each host says
 * what it changed; a second run changes nothing.
 */

const DAEMON_JSON = '/etc/docker/daemon.json';
/** Rotation for the engine's default log driver; containers kolla-ts creates set their own too. */
const LOG_OPTS = { 'max-size': '50m', 'max-file': '5' };

export interface BootstrapInput {
  globals: Globals;
  pool: HostPool;
  hosts: readonly string[];
  policy: RunPolicy;
  recap: Recap;
  log: (line: string) => void;
}

export interface HostBootstrap {
  host: string;
  changes: string[];
}

export async function bootstrapServers(input: BootstrapInput): Promise<HostBootstrap[]> {
  const settled = await forEachHost(input.hosts, input.policy, async (host) => {
    const connection = await input.pool.connection(host);
    const changes = await bootstrapHost(connection, input.globals, (line) => input.log(`${host}: ${line}`));
    input.recap.ok(host, changes.length);
    return changes;
  });
  const results: HostBootstrap[] = [];
  for (const result of settled) {
    if (result.status === 'done') results.push({ host: result.host, changes: result.value });
    else if (result.status === 'failed') input.recap.fail(result.host, result.error);
  }
  return results;
}

async function bootstrapHost(connection: HostConnection, globals: Globals, log: (line: string) => void): Promise<string[]> {
  const changes: string[] = [];
  const changed = (what: string): void => {
    changes.push(what);
    log(what);
  };
  // A non-root login (ansible_become) gets root through sudo in the connection itself.
  const run = (argv: string[]): Promise<CommandResult> => connection.exec(argv);
  const must = async (argv: string[], what: string): Promise<CommandResult> => {
    const result = await run(argv);
    if (result.code !== 0) throw new Error(`${what} failed (exit ${result.code}): ${result.stderr.trim().split('\n').slice(-3).join(' ')}`);
    return result;
  };

  if ((await run(['sh', '-c', 'command -v dockerd'])).code !== 0) {
    await must(['apt-get', 'update', '-qq'], 'apt-get update');
    await must(['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-qq', 'docker.io'], 'installing docker.io');
    changed('installed docker.io');
  }

  const current = (await connection.readFile(DAEMON_JSON))?.toString('utf8');
  let settings: Record<string, unknown> = {};
  try {
    settings = current ? (JSON.parse(current) as Record<string, unknown>) : {};
  } catch {
    throw new Error(`${DAEMON_JSON} is not valid JSON; fix or remove it first`);
  }
  const wanted = daemonSettings(settings, globals);
  const engineUp = (await run(['docker', 'version', '--format', '{{.Server.Version}}'])).code === 0;
  if (JSON.stringify(wanted) !== JSON.stringify(settings)) {
    await must(['mkdir', '-p', '/etc/docker'], 'mkdir /etc/docker');
    await connection.writeFileAtomic(DAEMON_JSON, `${JSON.stringify(wanted, null, 2)}\n`, 0o644);
    changed(`wrote ${DAEMON_JSON} (${describeChange(settings, wanted)})`);
    // The registry settings are reloaded on SIGHUP; log defaults apply from the engine's next start.
    if (engineUp) await must(['sh', '-c', 'kill -HUP "$(cat /var/run/docker.pid)"'], 'reloading dockerd');
  }
  if (!engineUp) {
    const hasSystemd = (await run(['sh', '-c', 'test -d /run/systemd/system'])).code === 0;
    await must(hasSystemd ? ['systemctl', 'enable', '--now', 'docker'] : ['sh', '-c', 'nohup dockerd >/var/log/dockerd.log 2>&1 </dev/null &'], 'starting dockerd');
    await must(['sh', '-c', 'for i in $(seq 1 60); do docker version >/dev/null 2>&1 && exit 0; sleep 1; done; exit 1'], 'waiting for dockerd');
    changed('started dockerd');
  }

  // libvirt and nova-compute mount /run with shared propagation.
  const propagation = (await run(['findmnt', '-no', 'PROPAGATION', '/'])).stdout.trim();
  if (!propagation.startsWith('shared')) {
    await must(['mount', '--make-rshared', '/'], 'making / a shared mount');
    changed('made / a shared mount');
  }

  const configRoot = String(globals.node_config_directory);
  if ((await run(['test', '-d', configRoot])).code !== 0) {
    await must(['install', '-d', '-m', '0700', configRoot], `creating ${configRoot}`);
    changed(`created ${configRoot}`);
  }
  return changes;
}

/** The daemon.json kolla-ts wants, keeping every setting it does not manage (runtimes, storage driver, ...). */
export function daemonSettings(current: Record<string, unknown>, globals: Globals): Record<string, unknown> {
  const wanted: Record<string, unknown> = { ...current, 'log-driver': current['log-driver'] ?? 'json-file' };
  if (wanted['log-driver'] === 'json-file') wanted['log-opts'] = { ...LOG_OPTS, ...(current['log-opts'] as object | undefined) };
  const registry = String(globals.docker_registry ?? '');
  if (registry && globals.docker_registry_insecure === true) {
    const insecure = Array.isArray(current['insecure-registries']) ? (current['insecure-registries'] as string[]) : [];
    if (!insecure.includes(registry)) wanted['insecure-registries'] = [...insecure, registry];
  }
  return wanted;
}

function describeChange(before: Record<string, unknown>, after: Record<string, unknown>): string {
  return Object.keys(after)
    .filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]))
    .join(', ');
}
