/**
 * Upgrade benchmark (not a test): how long a service does not answer while
 * kolla-ts upgrades it and rolls it back, beside the service's own start and
 * the kolla-ansible way. On the all-in-one cloud running here (never
 * destroyed; its config directory is the one /etc/kolla/.kolla-ts/owner.json
 * names):
 *   1. keystone's own start: `docker restart keystone` to the first 200 of
 *      GET /v3 (probed every 50 ms), three tries;
 *   2. keystone to a new tag with `upgrade --services keystone --serial 1`,
 *      back with `rollback keystone`, then to the new tag the kolla-ansible
 *      way from this process (stop, remove, create, start; no health gate),
 *      GET /v3 probed at 10 Hz (1 s timeout, 200 = up) throughout; then an
 *      untimed `upgrade` so that kolla-ts's labels describe keystone again;
 *   3. nova_compute to a new tag with `upgrade --services nova`, back with
 *      `rollback nova`, watched as "a running container named nova_compute"
 *      (engine inspect at 10 Hz): its health test says little about a gap.
 * The cloud must be what globals.yml and the roles describe (`plan` has
 * nothing to do), or the bench refuses. A new tag is zed-bench<n>: the zed
 * image with one LABEL more, pushed to the registry, selected by a line
 * appended to the config directory's globals.yml. That file is copied first
 * and put back at the end, and `upgrade` runs once more so that every
 * container is back on zed.
 *
 * With BENCH_UPGRADE_FLEET=1, also --serial 1 against all at once: memcached
 * on three docker-in-docker nodes upg1-upg3 (tests/helpers/fleet.ts),
 * upgraded with `--serial 1` and `--serial 100%`, TCP 11211 of each node
 * probed at 10 Hz; its own start is `docker restart memcached` on the first
 * node. The nodes are removed at the end. Not alongside the fleet e2e, whose
 * teardown removes every fleet node.
 *
 * Every sample goes to bench/results/<date>-upgrade.json; `npm run
 * bench:report` turns the results into bench/RESULTS.md. Needs root,
 * dockerd, the registry and the all-in-one (scripts/all-in-one.sh):
 *   npm run bench:upgrade
 *   BENCH_UPGRADE_FLEET=1 npm run bench:upgrade
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRoleSet } from '../src/deploy/session.ts';
import { DockerodeContainerEngine } from '../src/engine/containers.ts';
import { localDocker } from '../src/engine/docker.ts';
import { LABEL } from '../src/plan/desired.ts';
import { REGISTRY } from '../tests/helpers/environment.ts';
import { ensureFleet, exec, writeInventory, type FleetNode } from '../tests/helpers/fleet.ts';
import { describeMachine, removeFleetNodes, ROOT, runTimedCli, startRecord, timedCli, writeRecord } from './common.ts';
import { longestOutage, TABLE_HEADER, tableRows, type Outage, type OwnStart, type Scenario, type UpgradeRecord, type UpgradeSettings } from './upgrade-record.ts';

const BASE_TAG = 'zed';
const PROBE_INTERVAL_MS = 100;
const OWN_START_INTERVAL_MS = 50;
const PROBE_TIMEOUT_MS = 1000;
const OWN_START_TRIES = 3;
const TARGET_MARGIN_SECONDS = 0.5;
/** As kolla-ts's swap (src/upgrade/swap.ts), so that both stop alike. */
const STOP_TIMEOUT_SECONDS = 30;
/** How long a watched service may take to answer again after a command before the bench gives up. */
const RECOVERY_TIMEOUT_MS = 300_000;
const KEYSTONE_URL = 'http://127.0.0.1:5000/v3';
const OWNER_FILE = '/etc/kolla/.kolla-ts/owner.json';
const FLEET = process.env.BENCH_UPGRADE_FLEET === '1';
const FLEET_NODES = ['upg1', 'upg2', 'upg3'];
/** Its own namespace in the registry, so the fleet e2e's re-push of its images does not reach these nodes. */
const FLEET_NAMESPACE = 'benchupgrade';
const MEMCACHED_PORT = 11211;

/** One probe: sent at `at` (epoch ms), answered or not. */
interface Sample {
  at: number;
  up: boolean;
}

type Check = () => Promise<boolean>;

interface Watched {
  /** Key into the own-start figures, where the target applies. */
  service?: string;
  /** The one container watched on the all-in-one, whose start the scenario records. */
  container?: string;
  description: string;
  /** One check per node (a single one on the all-in-one). */
  checks: Record<string, Check>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `check` every intervalMs, each on its own (a slow one does not hold up the next), and keeps each result at the time it was sent. */
class Watch {
  private readonly samples: Sample[] = [];
  private readonly pending = new Set<Promise<void>>();
  private readonly timer: NodeJS.Timeout;

  constructor(check: Check, intervalMs: number) {
    const tick = (): void => {
      const at = Date.now();
      const probe: Promise<void> = check()
        .catch(() => false)
        .then((up) => void this.samples.push({ at, up }))
        .finally(() => this.pending.delete(probe));
      this.pending.add(probe);
    };
    tick();
    this.timer = setInterval(tick, intervalMs);
  }

  /** Waits for a success sent at or after `since`, stops, and returns the samples in the order sent, up to that success. */
  async stopOnceUp(since: number): Promise<Sample[]> {
    const deadline = Date.now() + RECOVERY_TIMEOUT_MS;
    try {
      while (!this.samples.some((s) => s.up && s.at >= since)) {
        if (Date.now() > deadline) throw new Error(`no answer within ${RECOVERY_TIMEOUT_MS / 1000} s`);
        await sleep(20);
      }
    } finally {
      this.cancel();
    }
    await Promise.all(this.pending);
    const sorted = [...this.samples].sort((a, b) => a.at - b.at);
    return sorted.slice(0, sorted.findIndex((s) => s.up && s.at >= since) + 1);
  }

  cancel(): void {
    clearInterval(this.timer);
  }
}

/** GET over a fresh connection (a kept-alive one could only reach the old process): up on a 200 within the timeout. */
function httpAnswers(url: string): Check {
  return () =>
    new Promise((resolve) => {
      const request = get(url, { agent: false, signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) }, (response) => {
        response.resume();
        resolve(response.statusCode === 200);
      });
      request.on('error', () => resolve(false));
    });
}

function tcpAnswers(host: string, port: number): Check {
  return () =>
    new Promise((resolve) => {
      const socket = connect({ host, port, timeout: PROBE_TIMEOUT_MS });
      const done = (up: boolean): void => {
        socket.destroy();
        resolve(up);
      };
      socket.once('connect', () => done(true));
      socket.once('timeout', () => done(false));
      socket.once('error', () => done(false));
    });
}

const docker = localDocker();

function runningContainer(name: string): Check {
  return async () => (await docker.getContainer(name).inspect()).State.Running;
}

const keystone: Watched = {
  service: 'keystone',
  container: 'keystone',
  description: `GET ${KEYSTONE_URL} answers 200 within ${PROBE_TIMEOUT_MS / 1000} s, every ${PROBE_INTERVAL_MS} ms`,
  checks: { keystone: httpAnswers(KEYSTONE_URL) },
};
const novaCompute: Watched = {
  container: 'nova_compute',
  description: `a running container named nova_compute (engine inspect), every ${PROBE_INTERVAL_MS} ms`,
  checks: { nova_compute: runningContainer('nova_compute') },
};

/**
 * Runs `action` while every check is probed; returns its result, the epoch
 * ms it started, and each check's samples until the check answered again
 * after the action.
 */
async function during<T>(watched: Watched, action: () => Promise<T>): Promise<{ result: T; start: number; samples: Record<string, Sample[]> }> {
  const watches = Object.entries(watched.checks).map(([name, check]) => [name, new Watch(check, PROBE_INTERVAL_MS)] as const);
  const start = Date.now();
  let result: T;
  try {
    result = await action();
  } catch (error) {
    for (const [, watch] of watches) watch.cancel();
    throw error;
  }
  const end = Date.now();
  const samples = Object.fromEntries(await Promise.all(watches.map(async ([name, watch]) => [name, await watch.stopOnceUp(end)] as const)));
  return { result, start, samples };
}

/** Stretches from a failed probe to the next success, seconds from `start`. */
function outagesOf(samples: readonly Sample[], start: number, node?: string): Outage[] {
  const outages: Outage[] = [];
  let downSince: number | undefined;
  for (const { at, up } of samples) {
    if (!up) downSince ??= at;
    else if (downSince !== undefined) {
      outages.push({ from: (downSince - start) / 1000, to: (at - start) / 1000, ...(node ? { node } : {}) });
      downSince = undefined;
    }
  }
  return outages;
}

function overlap(a: readonly Outage[], b: readonly Outage[]): Outage[] {
  return a.flatMap((x) =>
    b.flatMap((y) => {
      const from = Math.max(x.from, y.from);
      const to = Math.min(x.to, y.to);
      return from < to ? [{ from, to }] : [];
    }),
  );
}

function availability(samples: Record<string, Sample[]>, start: number): Pick<Scenario, 'outages' | 'probes' | 'failedProbes' | 'allDown'> {
  const several = Object.keys(samples).length > 1;
  const perCheck = Object.entries(samples).map(([name, list]) => outagesOf(list, start, several ? name : undefined));
  const all = Object.values(samples).flat();
  return {
    outages: perCheck.flat(),
    probes: all.length,
    failedProbes: all.filter((s) => !s.up).length,
    ...(several ? { allDown: perCheck.reduce((a, b) => overlap(a, b)) } : {}),
  };
}

const HEALTHY_LINE = /^(\S+): (\S+): healthy after ([\d.]+) s$/gm;

function show(scenario: Scenario): Scenario {
  const failed = scenario.status === 0 ? '' : `   FAILED (exit ${scenario.status})`;
  console.log(`${scenario.name.padEnd(58)} ${scenario.seconds.toFixed(2).padStart(7)} s   longest unavailable ${longestOutage(scenario.outages).toFixed(2).padStart(6)} s${failed}`);
  if (scenario.error) for (const line of scenario.error.trim().split('\n').slice(-8)) console.log(`  | ${line}`);
  return scenario;
}

const startedAt = async (container: string): Promise<number> => Date.parse((await docker.getContainer(container).inspect()).State.StartedAt);

/** A kolla-ts command run while `watched` is probed. */
async function cliScenario(name: string, args: string[], watched: Watched): Promise<Scenario> {
  const { result: run, start, samples } = await during(watched, () => runTimedCli(args));
  const started = watched.container ? await startedAt(watched.container) : undefined;
  return show({
    name,
    ...(watched.service ? { service: watched.service } : {}),
    watched: watched.description,
    status: run.status,
    ...(run.status === 0 ? {} : { error: run.stderr.slice(-2000) }),
    seconds: run.seconds,
    ...availability(samples, start),
    healthyAfter: [...run.stderr.matchAll(HEALTHY_LINE)].map((m) => ({ host: m[1]!, container: m[2]!, seconds: Number(m[3]) })),
    // A container that did not start during the command (a rollback that failed first) has no start to split at.
    ...(started !== undefined && started >= start ? { startedSeconds: (started - start) / 1000 } : {}),
  });
}

/** kolla-ansible's way to a new image: stop, remove, create, start, from this process through the local engine; no health gate. */
async function kollaAnsibleWay(image: string): Promise<Scenario> {
  const engine = new DockerodeContainerEngine(docker);
  const spec = await engine.specOf('keystone');
  if (!spec) throw new Error('no keystone container');
  const { result: returned, start, samples } = await during(keystone, async () => {
    await engine.stop('keystone', STOP_TIMEOUT_SECONDS);
    await engine.remove('keystone');
    await engine.create({ ...spec, image });
    await engine.start('keystone');
    return Date.now();
  });
  const answered = samples.keystone!.find((s) => s.up && s.at >= returned)!.at;
  return show({
    name: 'keystone: kolla-ansible way (stop, rm, create, start)',
    service: 'keystone',
    watched: keystone.description,
    status: 0,
    seconds: (returned - start) / 1000,
    ...availability(samples, start),
    healthyAfter: [],
    startedSeconds: ((await startedAt('keystone')) - start) / 1000,
    answeredSeconds: (answered - start) / 1000,
  });
}

/** `restart` (which returns the new process's State.StartedAt), then `check` every OWN_START_INTERVAL_MS to the first success; each try. */
async function ownStart(label: string, restart: () => Promise<number>, check: Check): Promise<OwnStart[]> {
  const tries: OwnStart[] = [];
  for (let i = 1; i <= OWN_START_TRIES; i++) {
    const requested = Date.now();
    const started = await restart();
    const samples = await new Watch(check, OWN_START_INTERVAL_MS).stopOnceUp(requested);
    const seconds = (samples.at(-1)!.at - requested) / 1000;
    tries.push({ seconds, startedSeconds: (started - requested) / 1000 });
    console.log(`${`${label}: own start, restart to first answer (${i}/${OWN_START_TRIES})`.padEnd(58)} ${seconds.toFixed(2).padStart(7)} s`);
  }
  return tries;
}

function dockerCli(args: string[], input?: string): void {
  const result = spawnSync('docker', args, { input, stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'] });
  if (result.status !== 0) throw new Error(`docker ${args.join(' ')} failed: ${result.stderr}`);
}

/** A new image that changes nothing: `from` with one LABEL more, tagged `to` and pushed. */
function pushVariant(from: string, to: string, label: string): void {
  dockerCli(['build', '-q', '-t', to, '-'], `FROM ${from}\nLABEL org.kolla-ts.bench-upgrade=${label}\n`);
  dockerCli(['push', to]);
}

/** Restarts memcached with the node's own engine; returns its State.StartedAt (the node shares this machine's clock). */
async function restartInNode(node: FleetNode): Promise<number> {
  const result = await exec(node, "docker restart memcached >/dev/null && docker inspect -f '{{.State.StartedAt}}' memcached");
  if (result.code !== 0) throw new Error(`${node.name}: docker restart memcached failed: ${result.stderr.trim()}`);
  return Date.parse(result.stdout.trim());
}

/** memcached on three nodes: --serial 1 against all at once. */
async function fleetPart(newTag: string, run: number): Promise<{ ownStart: OwnStart[]; scenarios: Scenario[] }> {
  const source = `${REGISTRY}/kolla/memcached:${BASE_TAG}`;
  const repository = `${REGISTRY}/${FLEET_NAMESPACE}/memcached`;
  dockerCli(['tag', source, `${repository}:${BASE_TAG}`]);
  dockerCli(['push', `${repository}:${BASE_TAG}`]);
  const serialTag = `${newTag}-serial`;
  const allTag = `${newTag}-all`;
  pushVariant(source, `${repository}:${serialTag}`, `${run}-serial`);
  pushVariant(source, `${repository}:${allTag}`, `${run}-all`);

  const fleet = await ensureFleet({ nodes: FLEET_NODES, log: (line) => console.log(`  | ${line}`) });
  try {
    // The nodes' owner files name this directory, so it stays the same from run to run.
    const configDir = join(process.env.KOLLA_TS_STATE_DIR ?? '/var/lib/kolla-ts-host', 'bench-upgrade-fleet');
    mkdirSync(configDir, { recursive: true, mode: 0o700 });
    const disabled = loadRoleSet(ROOT)
      .filter((r) => r.service !== 'memcached')
      .map((r) => `${r.enable}: false`);
    const selectTag = (tag: string): void =>
      writeFileSync(
        join(configDir, 'globals.yml'),
        [`docker_registry: ${fleet.registry}`, 'docker_registry_insecure: true', `docker_namespace: ${FLEET_NAMESPACE}`, `kolla_internal_vip_address: ${fleet.nodes[0]!.address}`, 'network_interface: eth0', `memcached_tag: ${tag}`, ...disabled, ''].join('\n'),
      );
    selectTag(BASE_TAG);
    await timedCli('genpwd', ['genpwd', '--configdir', configDir]);
    const inventory = writeInventory(fleet, join(configDir, 'inventory.yml'), { groups: { control: FLEET_NODES } });
    const args = ['-i', inventory, '--configdir', configDir];
    await timedCli('bootstrap-servers', ['bootstrap-servers', ...args]);
    await timedCli('deploy', ['deploy', ...args]);

    const first = fleet.nodes[0]!;
    const own = await ownStart(`memcached on ${first.name}`, () => restartInNode(first), tcpAnswers(first.address, MEMCACHED_PORT));
    const watched: Watched = {
      service: 'memcached',
      description: `TCP ${MEMCACHED_PORT} connects on each node's address within ${PROBE_TIMEOUT_MS / 1000} s, every ${PROBE_INTERVAL_MS} ms`,
      checks: Object.fromEntries(fleet.nodes.map((node) => [node.name, tcpAnswers(node.address, MEMCACHED_PORT)])),
    };
    const scenarios: Scenario[] = [];
    selectTag(serialTag);
    scenarios.push(await cliScenario(`memcached, ${FLEET_NODES.length} nodes: kolla-ts upgrade --serial 1`, ['upgrade', ...args, '--serial', '1'], watched));
    selectTag(allTag);
    scenarios.push(await cliScenario(`memcached, ${FLEET_NODES.length} nodes: kolla-ts upgrade --serial 100%`, ['upgrade', ...args, '--serial', '100%'], watched));
    return { ownStart: own, scenarios };
  } finally {
    await removeFleetNodes(fleet.nodes);
  }
}

const header = startRecord('upgrade');
console.log(`machine: ${describeMachine(header.machine)}`);
console.log(`commit ${header.git.commit}${header.git.dirty ? ' (tree dirty)' : ''}${FLEET ? '; with the fleet part' : ''}\n`);

if (!existsSync(OWNER_FILE)) throw new Error(`${OWNER_FILE} is missing: no all-in-one cloud here (scripts/all-in-one.sh)`);
const { configDir } = JSON.parse(readFileSync(OWNER_FILE, 'utf8')) as { configDir: string };
const common = ['--configdir', configDir];
const globalsFile = join(configDir, 'globals.yml');
const originalGlobals = readFileSync(globalsFile, 'utf8');
for (const key of ['keystone_tag', 'nova_compute_tag']) {
  if (new RegExp(`^${key}\\s*:`, 'm').test(originalGlobals)) throw new Error(`${globalsFile} sets ${key} already; the bench selects its tags by appending them`);
}
// Otherwise the first scenario would carry other changes than its tag's (a template changed since the deploy).
const planned = await timedCli('plan', ['plan', ...common]);
if (!planned.stdout.includes('Nothing to do')) throw new Error(`the cloud differs from what ${globalsFile} and the roles describe; bring it in line first (kolla-ts upgrade --configdir ${configDir}):\n${planned.stdout}`);
const backupDir = mkdtempSync(join(tmpdir(), 'kolla-ts-bench-upgrade-'));
const globalsBackup = join(backupDir, 'globals.yml');
copyFileSync(globalsFile, globalsBackup);

/** globals.yml as it was, plus these tags. */
function selectTags(tags: Record<string, string>): void {
  const lines = Object.entries(tags).map(([key, tag]) => `${key}: ${tag}\n`);
  writeFileSync(globalsFile, `${originalGlobals}${originalGlobals.endsWith('\n') ? '' : '\n'}${lines.join('')}`);
}

const run = Math.floor(Date.now() / 1000);
const newTag = `${BASE_TAG}-bench${run}`;
const imageRef = (image: string, tag: string): string => `${REGISTRY}/kolla/${image}:${tag}`;
for (const image of ['keystone', 'nova-compute']) pushVariant(imageRef(image, BASE_TAG), imageRef(image, newTag), String(run));
console.log(`config dir ${configDir}; new tag ${newTag} (keystone, nova-compute) pushed to ${REGISTRY}\n`);

const ownStarts: Record<string, OwnStart[]> = {};
const scenarios: Scenario[] = [];
try {
  const restartKeystone = async (): Promise<number> => {
    await docker.getContainer('keystone').restart();
    return startedAt('keystone');
  };
  ownStarts.keystone = await ownStart('keystone', restartKeystone, keystone.checks.keystone!);

  selectTags({ keystone_tag: newTag });
  scenarios.push(await cliScenario('keystone: kolla-ts upgrade --serial 1', ['upgrade', ...common, '--services', 'keystone', '--serial', '1'], keystone));
  scenarios.push(await cliScenario('keystone: kolla-ts rollback', ['rollback', 'keystone', ...common], keystone));
  scenarios.push(await kollaAnsibleWay(imageRef('keystone', newTag)));
  // kolla-ts plans from its labels, which the container made by hand copied from the old one.
  const readopted = await timedCli('upgrade after the kolla-ansible way', ['upgrade', ...common, '--services', 'keystone']);
  console.log(`${'keystone: kolla-ts upgrade, taking the container back'.padEnd(58)} ${readopted.seconds.toFixed(2).padStart(7)} s   (not watched)`);

  selectTags({ nova_compute_tag: newTag });
  scenarios.push(await cliScenario('nova_compute: kolla-ts upgrade --services nova', ['upgrade', ...common, '--services', 'nova'], novaCompute));
  scenarios.push(await cliScenario('nova_compute: kolla-ts rollback nova', ['rollback', 'nova', ...common], novaCompute));
} finally {
  copyFileSync(globalsBackup, globalsFile);
  const back = await timedCli('upgrade back to the original globals.yml', ['upgrade', ...common]);
  console.log(`${`every container back to globals.yml as it was (${BASE_TAG})`.padEnd(58)} ${back.seconds.toFixed(2).padStart(7)} s`);
  const elsewhere = (await new DockerodeContainerEngine(docker).listByLabel(`${LABEL.managed}=true`)).filter((c) => c.running && !c.image.endsWith(`:${BASE_TAG}`));
  if (elsewhere.length > 0) console.log(`NOTE: still not on ${BASE_TAG}: ${elsewhere.map((c) => `${c.name} (${c.image})`).join(', ')}`);
  if (readFileSync(globalsFile, 'utf8') !== originalGlobals) throw new Error(`${globalsFile} differs from the copy taken first, ${globalsBackup}`);
  rmSync(backupDir, { recursive: true });
}

if (FLEET) {
  console.log('\nfleet part');
  const fleet = await fleetPart(newTag, run);
  ownStarts.memcached = fleet.ownStart;
  scenarios.push(...fleet.scenarios);
}

const settings: UpgradeSettings = {
  configDir,
  registry: REGISTRY,
  baseTag: BASE_TAG,
  newTag,
  probeIntervalMs: PROBE_INTERVAL_MS,
  ownStartIntervalMs: OWN_START_INTERVAL_MS,
  probeTimeoutMs: PROBE_TIMEOUT_MS,
  targetMarginSeconds: TARGET_MARGIN_SECONDS,
  fleet: FLEET,
};
const record: UpgradeRecord = { ...header, settings, samples: { ownStart: ownStarts, scenarios } };
const rows = tableRows(record);
const widths = TABLE_HEADER.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
console.log('');
for (const row of [TABLE_HEADER, ...rows]) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
console.log(`\nraw figures: ${writeRecord(record)}; \`npm run bench:report\` writes bench/RESULTS.md from bench/results/`);
