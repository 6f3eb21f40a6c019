/**
 * Fan-out benchmark (not a test): how `plan` and a `deploy` with nothing to
 * do scale with the number of hosts, and how many SSH connections each host
 * sees. The hosts are docker-in-docker nodes fan01, fan02, ... on this
 * machine (tests/helpers/fleet.ts) running memcached only, as the fleet e2e
 * does. For each fleet size (default 1, 5, 10, 20), the sizes in order:
 *   1. bootstrap-servers (not timed), then a deploy that starts memcached
 *      on the nodes new at this size, once, timed apart from the rest;
 *   2. the nodes' CPU seconds over IDLE_SECONDS with nothing running on
 *      them but their own (engines, sshd, memcached and its health checks);
 *   3. --rounds times (default 5), interleaved: `plan` and `deploy` with
 *      nothing to do (wall and CPU seconds of the CLI at the CLI's default
 *      --forks, and the CPU seconds the node containers spent meanwhile),
 *      then the Docker API calls one observation of a host makes (ping, list,
 *      inspect per container, image inspect, registry digest), made from this
 *      process with the same forks, first over our transport (one SSH
 *      connection per host) and then over dockerode's own ssh transport (one
 *      per call).
 * SSH connections are counted where they arrive, not by our code: each
 * node's sshd logs to a file (-E) and every "Accepted publickey" line is
 * one login; the counts before and after a run are its logins per host.
 * The nodes' CPU comes from their cgroups (cgroup v1, Docker's cgroupfs
 * driver: /sys/fs/cgroup/cpuacct/docker/<container id>/cpuacct.usage, which
 * counts the node's processes and its inner engine's containers), read
 * just before and after each CLI run: every simulated host runs on the same
 * cores as the CLI, and that is the share a real fleet spends on its own
 * machines.
 * Every sample goes to bench/results/<date>-fanout.json; `npm run
 * bench:report` turns the results into bench/RESULTS.md.
 *
 * Needs root, dockerd, the registry (scripts/engine-up.sh) and
 * 127.0.0.1:4000/kolla/memcached:zed (`kolla-ts build ^memcached$ --push`).
 * The nodes are removed at the end unless --keep-nodes; the fleet network
 * and the gateway registry, shared with the fleet e2e, stay. Do not run it
 * alongside the fleet e2e: the harness has no lock, and the e2e's teardown
 * removes every fleet node, these included.
 *   npm run bench:fanout [-- --nodes 1,5,10,20 --rounds N --keep-nodes]
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import { loadRoleSet } from '../src/deploy/session.ts';
import { DockerodeContainerEngine } from '../src/engine/containers.ts';
import { pingEngine } from '../src/engine/docker.ts';
import { DEFAULT_FORKS, forEachHost } from '../src/fleet/runner.ts';
import { loadInventory, type HostSpec } from '../src/inventory/inventory.ts';
import { LABEL } from '../src/plan/desired.ts';
import { SshHost } from '../src/transport/ssh.ts';
import { REGISTRY } from '../tests/helpers/environment.ts';
import { ensureFleet, exec, writeInventory, type FleetNode } from '../tests/helpers/fleet.ts';
import { describeMachine, removeFleetNodes, ROOT, startRecord, timedCli, writeRecord, type RunRecord } from './common.ts';

/** Logins each node's sshd accepted during one run, by node name. */
export type Logins = Record<string, number>;

export interface CliRun {
  seconds: number;
  /** User + system CPU seconds of the CLI process (GNU time): the deploy host's share. */
  cpuSeconds: number;
  /** CPU seconds all the fleet's node containers spent during the run: the hosts' share. Not in records before it was measured. */
  nodesCpuSeconds?: number;
  logins: Logins;
}

export interface CallsRun {
  seconds: number;
  logins: Logins;
  /** Docker API requests made per host. */
  calls: Record<string, number>;
}

/** The nodes' CPU seconds over a stretch with nothing of ours running: what they spend anyway (health checks, engine housekeeping). */
export interface IdleNodes {
  seconds: number;
  nodesCpuSeconds: number;
}

export interface FanoutSize {
  hosts: number;
  /** The deploy that starts memcached where it is missing; `changedHosts` says on how many hosts. */
  cold: CliRun & { changedHosts: number };
  /** Not in records before the nodes' CPU was measured. */
  idle?: IdleNodes;
  plan: CliRun[];
  noopDeploy: CliRun[];
  ownTransport: CallsRun[];
  dockerodeSsh: CallsRun[];
}

export interface FanoutSettings {
  sizes: number[];
  rounds: number;
  forks: number;
  services: string[];
  image: string;
  nodesKept: boolean;
}

export type FanoutRecord = RunRecord<FanoutSettings, { sizes: FanoutSize[] }>;

type SshSpec = Extract<HostSpec, { connection: 'ssh' }>;

const { values: flags } = parseArgs({
  options: { nodes: { type: 'string', default: '1,5,10,20' }, rounds: { type: 'string', default: '5' }, 'keep-nodes': { type: 'boolean', default: false } },
});
const rounds = Number(flags.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds ${flags.rounds}: expected a positive integer`);
const sizes = flags.nodes.split(',').map(Number);
// Ascending, so each size adds nodes to the last one's; at most 99 nodes (two-digit names, and the /24 holds the fleet e2e's too).
if (!sizes.every((n, i) => Number.isInteger(n) && n >= 1 && n <= 99 && (i === 0 || n > sizes[i - 1]!))) {
  throw new Error(`--nodes ${flags.nodes}: expected ascending node counts from 1 to 99, e.g. 1,5,10,20`);
}

// The CLI's default, so the figures are those of a plain `kolla-ts plan`.
const FORKS = DEFAULT_FORKS;
/** How long the nodes' idle CPU is measured, at each size. */
const IDLE_SECONDS = 10;
const SERVICE = 'memcached';
/** Its own namespace in the registry, so the fleet e2e's re-push of fleettest/memcached does not reach these nodes. */
const NAMESPACE = 'fanout';
const SSHD_LOG = '/var/log/sshd-fanout.log';
// Nodes keep .kolla-ts/owner.json naming the config directory, so it stays the same from run to run.
const configDir = join(process.env.KOLLA_TS_STATE_DIR ?? '/var/lib/kolla-ts-host', 'bench-fanout');

/** The CLI timed: wall and CPU seconds and what it printed. */
async function cli(label: string, args: string[]): Promise<{ seconds: number; cpuSeconds: number; stdout: string }> {
  const { seconds, cpuSeconds, stdout } = await timedCli(label, args);
  return { seconds, cpuSeconds, stdout };
}

/**
 * Restarts the node's sshd with -E SSHD_LOG unless it runs so already (the
 * node's entrypoint starts it without: its log went nowhere). The old
 * listener unlinks its pid file as it exits; the new one writes it once it
 * listens.
 */
async function logSshd(node: FleetNode): Promise<void> {
  const script = [
    'pid=$(cat /run/sshd.pid)',
    `tr '\\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- '-E ${SSHD_LOG}' && exit 0`,
    'kill "$pid"',
    'for i in $(seq 100); do [ -e /run/sshd.pid ] || break; sleep 0.05; done',
    `/usr/sbin/sshd -E ${SSHD_LOG}`,
    'for i in $(seq 200); do [ -s /run/sshd.pid ] && exit 0; sleep 0.05; done',
    'exit 1',
  ].join('\n');
  const result = await exec(node, script);
  if (result.code !== 0) throw new Error(`${node.name}: restarting sshd with a log file failed: ${result.stderr.trim()}`);
}

/** Lines "Accepted publickey" in each node's sshd log, read through the local engine (not over SSH). */
async function loginCounts(nodes: readonly FleetNode[]): Promise<Logins> {
  const counts = await Promise.all(
    nodes.map(async (node) => {
      const { stdout } = await exec(node, `grep -c 'Accepted publickey' ${SSHD_LOG} || true`);
      const count = Number(stdout.trim());
      if (!Number.isInteger(count)) throw new Error(`${node.name}: cannot count the logins in ${SSHD_LOG}`);
      return [node.name, count] as const;
    }),
  );
  return Object.fromEntries(counts);
}

/** Where cgroup v1's cpuacct controller, with Docker's cgroupfs driver, keeps a container's CPU nanoseconds (its children's included). */
const cpuUsageFile = (node: FleetNode): string => `/sys/fs/cgroup/cpuacct/docker/${node.container}/cpuacct.usage`;

/** CPU seconds the nodes' containers have used since they started, summed. */
function nodesCpu(nodes: readonly FleetNode[]): number {
  return nodes.reduce((sum, node) => sum + Number(readFileSync(cpuUsageFile(node), 'utf8').trim()), 0) / 1e9;
}

/** A run with the CPU seconds the nodes spent during it (read just around it, so the login counting's execs are not in it). */
async function withNodesCpu<T>(nodes: readonly FleetNode[], run: () => Promise<T>): Promise<T & { nodesCpuSeconds: number }> {
  const before = nodesCpu(nodes);
  const result = await run();
  return { ...result, nodesCpuSeconds: nodesCpu(nodes) - before };
}

async function counted<T>(nodes: readonly FleetNode[], run: () => Promise<T>): Promise<T & { logins: Logins }> {
  const before = await loginCounts(nodes);
  const result = await run();
  const after = await loginCounts(nodes);
  return { ...result, logins: Object.fromEntries(nodes.map((n) => [n.name, after[n.name]! - before[n.name]!])) };
}

const spread = (values: number[]): string => (Math.min(...values) === Math.max(...values) ? `${values[0]}` : `${Math.min(...values)}-${Math.max(...values)}`);

function show(label: string, run: { seconds: number; logins: Logins; cpuSeconds?: number; nodesCpuSeconds?: number }): void {
  const cpu = run.cpuSeconds === undefined ? '' : `   CPU ${run.cpuSeconds.toFixed(2).padStart(6)} s`;
  const onNodes = run.nodesCpuSeconds === undefined ? '' : `   nodes' CPU ${run.nodesCpuSeconds.toFixed(2).padStart(6)} s`;
  console.log(`${label.padEnd(58)} ${run.seconds.toFixed(2).padStart(8)} s${cpu}${onNodes}   SSH logins per host ${spread(Object.values(run.logins))}`);
}

/** The engine calls observeHost (src/plan/observe.ts) makes of one host, after the connection's ping; returns how many requests. */
async function observationCalls(docker: Docker, spec: SshSpec, image: string): Promise<number> {
  await pingEngine(docker, spec.name, `${spec.address}:${spec.port}`);
  const engine = new DockerodeContainerEngine(docker);
  const containers = await engine.listByLabel(`${LABEL.managed}=true`);
  await Promise.all([engine.image(image), engine.registryDigest(image)]);
  // ping, list, one inspect per container, image inspect, distribution
  return 4 + containers.length;
}

/** Every host's observation calls, FORKS hosts at a time as the CLI works, each over a connection `open` makes. */
async function observeAll(specs: readonly SshSpec[], image: string, open: (spec: SshSpec) => Promise<{ docker: Docker; close(): Promise<void> }>): Promise<{ seconds: number; calls: Record<string, number> }> {
  const started = process.hrtime.bigint();
  const settled = await forEachHost(
    specs.map((s) => s.name),
    { forks: FORKS },
    async (name) => {
      const spec = specs.find((s) => s.name === name)!;
      const connection = await open(spec);
      try {
        return await observationCalls(connection.docker, spec, image);
      } finally {
        await connection.close();
      }
    },
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const failed = settled.find((r) => r.status !== 'done');
  if (failed) throw new Error(`${failed.host}: ${failed.status === 'failed' ? (failed.error as Error).message : 'skipped'}`);
  return { seconds, calls: Object.fromEntries(settled.map((r) => [r.host, r.status === 'done' ? r.value : 0])) };
}

const fingerprint = (key: Buffer): string => createHash('sha256').update(key).digest('base64');

/**
 * docker-modem hands sshOptions to ssh2 as they are and sets no hostVerifier,
 * so by default it accepts any host key. This one checks known_hosts, as our
 * transport does, so that both do the same work.
 */
function knownHostKey(knownHostsFile: string, address: string): (key: Buffer) => boolean {
  const trusted = new Set(
    readFileSync(knownHostsFile, 'utf8')
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter(([host, , key]) => host === address && key)
      .map(([, , key]) => fingerprint(Buffer.from(key!, 'base64'))),
  );
  return (key) => trusted.has(fingerprint(key));
}

const header = startRecord('fanout');
console.log(`machine: ${describeMachine(header.machine)}`);
console.log(`commit ${header.git.commit}${header.git.dirty ? ' (tree dirty)' : ''}; ${sizes.join(', ')} nodes; ${rounds} rounds\n`);

const source = `${REGISTRY}/kolla/${SERVICE}:zed`;
if (spawnSync('docker', ['image', 'inspect', source], { stdio: 'ignore' }).status !== 0) {
  throw new Error(`${source} is not here: kolla-ts build '^${SERVICE}$' --registry ${REGISTRY} --push`);
}
for (const argv of [['tag', source, `${REGISTRY}/${NAMESPACE}/${SERVICE}:zed`], ['push', `${REGISTRY}/${NAMESPACE}/${SERVICE}:zed`]]) {
  const result = spawnSync('docker', argv);
  if (result.status !== 0) throw new Error(`docker ${argv.join(' ')} failed: ${result.stderr}`);
}

const names = Array.from({ length: sizes.at(-1)! }, (_, i) => `fan${String(i + 1).padStart(2, '0')}`);
const fleet = await ensureFleet({ nodes: names, log: (line) => console.log(`  | ${line}`) });
const image = `${fleet.registry}/${NAMESPACE}/${SERVICE}:zed`;
const results: FanoutSize[] = [];
try {
  const unmeasured = fleet.nodes.filter((node) => !existsSync(cpuUsageFile(node)));
  if (unmeasured.length > 0) {
    throw new Error(`no ${cpuUsageFile(unmeasured[0]!)}: the nodes' CPU is read from cgroup v1's cpuacct with Docker's cgroupfs driver (docker info: Cgroup Version 1, Cgroup Driver cgroupfs)`);
  }
  await Promise.all(fleet.nodes.map(logSshd));
  mkdirSync(configDir, { recursive: true, mode: 0o700 });
  const disabled = loadRoleSet(ROOT)
    .filter((r) => r.service !== SERVICE)
    .map((r) => `${r.enable}: false`);
  writeFileSync(
    join(configDir, 'globals.yml'),
    [`docker_registry: ${fleet.registry}`, 'docker_registry_insecure: true', `docker_namespace: ${NAMESPACE}`, `kolla_internal_vip_address: ${fleet.nodes[0]!.address}`, 'network_interface: eth0', ...disabled, ''].join('\n'),
  );
  await cli('genpwd', ['genpwd', '--configdir', configDir]);
  const privateKey = readFileSync(fleet.keyFile);

  for (const size of sizes) {
    const nodes = fleet.nodes.slice(0, size);
    const inventory = writeInventory(fleet, join(configDir, `inventory-${size}.yml`), { groups: { control: nodes.map((n) => n.name) } });
    const specs: SshSpec[] = [...loadInventory(inventory).hosts.values()].flatMap((h) => (h.connection === 'ssh' ? [h] : []));
    const args = ['-i', inventory, '--configdir', configDir, '--forks', String(FORKS)];
    const tag = `${size} host${size > 1 ? 's' : ''}`;
    console.log(`\n${tag}: ${nodes.map((n) => `${n.name}=${n.address}`).join(', ')}`);
    await cli('bootstrap-servers', ['bootstrap-servers', ...args]);
    const cold = await counted(nodes, () => cli('cold deploy', ['deploy', ...args, '--json']));
    const changedHosts = (JSON.parse(cold.stdout) as { hosts: { outcome: string }[] }).hosts.filter((h) => h.outcome === 'changed').length;
    show(`${tag}: deploy, memcached new on ${changedHosts}`, cold);
    const idle = await withNodesCpu(nodes, async () => {
      await new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000));
      return { seconds: IDLE_SECONDS };
    });
    console.log(`${`${tag}: nodes idle`.padEnd(58)} ${idle.seconds.toFixed(2).padStart(8)} s   nodes' CPU ${idle.nodesCpuSeconds.toFixed(2).padStart(6)} s`);
    const sample: FanoutSize = { hosts: size, cold: { seconds: cold.seconds, cpuSeconds: cold.cpuSeconds, logins: cold.logins, changedHosts }, idle, plan: [], noopDeploy: [], ownTransport: [], dockerodeSsh: [] };

    for (let round = 1; round <= rounds; round++) {
      const of = `(${round}/${rounds})`;
      for (const [command, list] of [['plan', sample.plan], ['deploy', sample.noopDeploy]] as const) {
        const { stdout, ...run } = await counted(nodes, () => withNodesCpu(nodes, () => cli(command, [command, ...args])));
        // A figure for "nothing to do" is only one if there was nothing to do.
        if (!stdout.includes('Nothing to do')) throw new Error(`${command} on ${tag} found something to do:\n${stdout}`);
        show(`${tag}: ${command}, nothing to do ${of}`, run);
        list.push(run);
      }
      const own = await counted(nodes, () =>
        observeAll(specs, image, async (spec) => {
          const host = await SshHost.connect(spec);
          return { docker: host.docker, close: () => host.close() };
        }),
      );
      show(`${tag}: observation's API calls, our transport ${of}`, own);
      sample.ownTransport.push(own);
      const dockerode = await counted(nodes, () =>
        observeAll(specs, image, async (spec) => ({
          docker: new Docker({ protocol: 'ssh', host: spec.address, port: spec.port, username: spec.user, sshOptions: { privateKey, hostVerifier: knownHostKey(fleet.knownHostsFile, spec.address) } }),
          // Nothing stays open: docker-modem ends each call's SSH connection with its response.
          close: async () => {},
        })),
      );
      show(`${tag}: observation's API calls, dockerode ssh ${of}`, dockerode);
      sample.dockerodeSsh.push(dockerode);
    }
    results.push(sample);
  }
} finally {
  if (!flags['keep-nodes']) await removeFleetNodes(fleet.nodes);
}

const settings: FanoutSettings = { sizes, rounds, forks: FORKS, services: [SERVICE], image, nodesKept: flags['keep-nodes'] };
const record: FanoutRecord = { ...header, settings, samples: { sizes: results } };
console.log(`\nraw figures: ${writeRecord(record)}; \`npm run bench:report\` writes bench/RESULTS.md from bench/results/`);
