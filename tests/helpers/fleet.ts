/**
 * Real hosts on this machine for multinode tests: docker-in-docker nodes
 * (tests/fixtures/node/), each with its own sshd, host key and Docker
 * engine, on an internal Docker network in 198.18.0.0/24 (a benchmark-test
 * range, see ENVIRONMENT.md). The nodes pull from a read-only second
 * registry on the network's gateway that serves the storage of the
 * 127.0.0.1:4000 one, so what the deploy host pushes there is what nodes pull.
 *
 * Everything is found again by label, so test files (each in its own
 * worker) share one set of nodes: `ensureFleet` creates what is missing
 * and reuses the rest; `teardownFleet` removes all of it by id and pid.
 * Calls must not overlap: there is no lock (vitest runs one file at a time
 * here, fileParallelism: false).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import Docker from 'dockerode';
import * as yaml from 'js-yaml';
import { DEFAULT_MIRROR, DEFAULT_SUITE, ensureBaseImage } from '../../src/build/base-rootfs.ts';
import { DockerodeImageEngine, followStream, type LogSink } from '../../src/engine/docker.ts';
import { demux, execInContainer, type ExecResult } from './container-exec.ts';
import { PROJECT_ROOT } from './environment.ts';

const HOST_STATE_DIR = process.env.KOLLA_TS_STATE_DIR ?? '/var/lib/kolla-ts-host';
/** Keys, known_hosts and the gateway registry's config, pid file and log. */
export const FLEET_STATE_DIR = join(HOST_STATE_DIR, 'fleet');
export const FLEET_SUBNET = '198.18.0.0/24';
export const FLEET_GATEWAY = '198.18.0.1';
const FIRST_NODE_HOST = 10;
const NETWORK_NAME = 'kolla-ts-fleet';
const BRIDGE_NAME = 'kfleet0';
/** Same port as the loopback registry, so an image keeps its path: 127.0.0.1:4000/kolla/x → 198.18.0.1:4000/kolla/x. */
const REGISTRY_PORT = 4000;
export const FLEET_REGISTRY = `${FLEET_GATEWAY}:${REGISTRY_PORT}`;
const IMAGE_REPO = 'kolla-ts/fleet-node';
const NODE_CONTEXT_FILES = ['tests/fixtures/node/Dockerfile', 'tests/fixtures/node/entrypoint.sh', 'tests/fixtures/node/sshd.conf', 'scripts/oci-runtime-cap-filter'];

/** Its own label key, so `kolla-ts destroy` (org.kolla-ts.managed) never sees these. */
const LABEL = 'org.kolla-ts.test-fleet';
const NODE_LABEL = `${LABEL}.node`;
/** Hash of what a node container was created from; a node whose inputs changed is recreated. */
const SPEC_LABEL = `${LABEL}.spec`;

export interface FleetNode {
  name: string;
  address: string;
  sshPort: number;
  container: string;
}

export interface Fleet {
  nodes: FleetNode[];
  /** Private key (ed25519) that root and kolla on every node accept. */
  keyFile: string;
  /** Every node's host key, read out of the node (not over the network). */
  knownHostsFile: string;
  /** host:port the nodes pull from, e.g. 198.18.0.1:4000. */
  registry: string;
  gateway: string;
  /** The Docker network the nodes are on: where a test starts what the nodes must reach (an existing Ceph cluster). */
  network: string;
}

export interface EnsureFleetOptions {
  /** Node names (hostnames): lowercase letters, digits, hyphens. */
  nodes: string[];
  log?: LogSink;
}

const docker = new Docker();

/**
 * Creates what is missing (node image, network, gateway registry, nodes),
 * reuses what is there and matches, and returns once every requested node's
 * sshd answers (which it does only after the node's engine does). Nodes not
 * named here are left as they are.
 */
export async function ensureFleet(options: EnsureFleetOptions): Promise<Fleet> {
  const log = options.log ?? (() => {});
  for (const name of options.nodes) if (!/^[a-z][a-z0-9-]{0,30}$/.test(name)) throw new Error(`invalid node name "${name}" (lowercase letters, digits, hyphens)`);
  mkdirSync(FLEET_STATE_DIR, { recursive: true, mode: 0o700 });
  const keyFile = ensureUserKey();
  const publicKey = readFileSync(`${keyFile}.pub`, 'utf8').trim();
  const image = await ensureNodeImage(log);
  const network = await ensureNetwork();
  await ensureRegistry(log);

  const existing = await fleetContainers();
  const taken = new Set(existing.map((c) => c.address));
  const nodes: FleetNode[] = [];
  const booting = new Set<string>();
  for (const name of options.nodes) {
    const found = existing.find((c) => c.name === name);
    const address = found?.address ?? nextAddress(taken);
    taken.add(address);
    const create = nodeOptions(name, address, image.ref, publicKey);
    const spec = createHash('sha256').update([image.id, network, JSON.stringify(create)].join('\n')).digest('hex').slice(0, 16);
    if (found && found.spec === spec) {
      if (!found.running) {
        await docker.getContainer(found.id).start();
        booting.add(name);
      }
      nodes.push({ name, address, sshPort: 22, container: found.id });
      continue;
    }
    if (found) {
      log(`recreating ${name}: its image, network or settings changed`);
      await docker.getContainer(found.id).remove({ force: true });
    }
    nodes.push({ name, address, sshPort: 22, container: await createNode(name, create, spec) });
    booting.add(name);
  }

  await Promise.all(
    nodes.map(async (node) => {
      if (booting.has(node.name)) await waitForBoot(node);
      // A test may have stopped sshd and failed before starting it again.
      else if (!(await waitForSsh(node.address, 1_000))) await startSshd(node);
    }),
  );
  const knownHostsFile = await writeKnownHosts();
  log(`fleet: ${nodes.map((n) => `${n.name}=${n.address}`).join(', ')}`);
  return { nodes, keyFile, knownHostsFile, registry: FLEET_REGISTRY, gateway: FLEET_GATEWAY, network: NETWORK_NAME };
}

/**
 * The node image, tagged by a hash of its build context and of the Debian
 * root it starts from, so it is rebuilt only when one of them changes.
 */
export async function ensureNodeImage(log: LogSink = () => {}): Promise<{ ref: string; id: string }> {
  const base = await ensureBaseImage(new DockerodeImageEngine(docker), { mirror: DEFAULT_MIRROR, suite: DEFAULT_SUITE }, log);
  const hash = createHash('sha256').update(base.id);
  for (const file of NODE_CONTEXT_FILES) hash.update(`\0${file}\0`).update(readFileSync(join(PROJECT_ROOT, file)));
  const ref = `${IMAGE_REPO}:${hash.digest('hex').slice(0, 16)}`;
  const present = await inspectImage(ref);
  if (present) return { ref, id: present };

  log(`building ${ref}`);
  const stream = await docker.buildImage(
    { context: PROJECT_ROOT, src: NODE_CONTEXT_FILES },
    {
      t: ref,
      dockerfile: 'tests/fixtures/node/Dockerfile',
      buildargs: { BASE: base.ref },
      labels: { [LABEL]: 'image' },
      // RUN steps reach Debian's archive only with host networking (ENVIRONMENT.md).
      networkmode: 'host',
      rm: true,
      forcerm: true,
    },
  );
  await followStream(docker, stream, log);
  const id = await inspectImage(ref);
  if (!id) throw new Error(`built ${ref} but the engine does not show it`);
  // Images of earlier fixture versions; one still used by a node stays (the engine refuses).
  for (const old of await docker.listImages({ filters: { label: [`${LABEL}=image`] } })) {
    if (old.Id !== id) await docker.getImage(old.Id).remove().catch(() => {});
  }
  return { ref, id };
}

/** Runs a shell command in a node (as root, through the deploy host's engine, not SSH). */
export function exec(node: FleetNode, command: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return execIn(node.container, command);
}

function execIn(container: string, command: string): Promise<ExecResult> {
  return execInContainer(container, ['sh', '-c', command]);
}

/**
 * Makes a node unreachable over SSH: the listener and every open session
 * end, so an existing connection drops too. The listener is paused while
 * its children are listed, so no session starts in between.
 */
export async function stopSshd(node: FleetNode): Promise<void> {
  const result = await exec(
    node,
    'pid=$(cat /run/sshd.pid 2>/dev/null) || exit 0; kill -STOP "$pid"; kill $(ps -o pid= --ppid "$pid") "$pid" 2>/dev/null; kill -CONT "$pid"',
  );
  if (result.code !== 0) throw new Error(`${node.name}: stopping sshd failed: ${result.stderr.trim()}`);
  for (let i = 0; i < 100; i++) {
    if (!(await portOpen(node.address, node.sshPort))) return;
    await sleep(100);
  }
  throw new Error(`${node.name}: sshd still listens on ${node.address}:${node.sshPort}`);
}

export async function startSshd(node: FleetNode): Promise<void> {
  const result = await exec(node, '{ [ -f /run/sshd.pid ] && kill -0 "$(cat /run/sshd.pid)" 2>/dev/null; } || /usr/sbin/sshd');
  if (result.code !== 0) throw new Error(`${node.name}: starting sshd failed: ${result.stderr.trim()}`);
  if (!(await waitForSsh(node.address, 60_000))) throw new Error(`${node.name}: sshd does not answer on ${node.address}:${node.sshPort}`);
}

export interface InventoryLayout {
  /** Group → node names, e.g. {control: ['node1'], compute: ['node1', 'node2']}. */
  groups: Record<string, string[]>;
  /** root (default), or kolla with `become` (passwordless sudo on every node). */
  user?: 'root' | 'kolla';
  /** Extra variables per node (network_interface, ...). */
  hostVars?: Record<string, Record<string, string | number | boolean>>;
}

/** Writes an inventory in the project's YAML format (src/inventory/inventory.ts); returns `file`. */
export function writeInventory(fleet: Fleet, file: string, layout: InventoryLayout): string {
  const user = layout.user ?? 'root';
  const hosts = Object.fromEntries(
    layoutNodes(fleet, layout).map((node) => {
      const vars = layout.hostVars?.[node.name];
      return [
        node.name,
        {
          connection: 'ssh',
          address: node.address,
          port: node.sshPort,
          user,
          key_file: fleet.keyFile,
          known_hosts: fleet.knownHostsFile,
          api_address: node.address,
          ...(user === 'kolla' ? { become: true } : {}),
          ...(vars ? { vars } : {}),
        },
      ];
    }),
  );
  writeFileSync(file, yaml.dump({ hosts, groups: layout.groups }));
  return file;
}

/** Writes the same as a kolla-ansible INI inventory (one host line per node in `[all]`, groups listing names); returns `file`. */
export function writeIniInventory(fleet: Fleet, file: string, layout: InventoryLayout): string {
  const user = layout.user ?? 'root';
  const lines = ['[all]'];
  for (const node of layoutNodes(fleet, layout)) {
    const vars: Record<string, string | number | boolean> = {
      ansible_host: node.address,
      ansible_port: node.sshPort,
      ansible_user: user,
      ansible_ssh_private_key_file: fleet.keyFile,
      known_hosts: fleet.knownHostsFile,
      api_address: node.address,
      ...(user === 'kolla' ? { ansible_become: true } : {}),
      ...layout.hostVars?.[node.name],
    };
    // Python literals, as Ansible's INI reader takes them: True, not true.
    const value = (v: string | number | boolean): string => (typeof v === 'boolean' ? (v ? 'True' : 'False') : String(v));
    lines.push([node.name, ...Object.entries(vars).map(([key, v]) => `${key}=${value(v)}`)].join(' '));
  }
  for (const [group, members] of Object.entries(layout.groups)) lines.push('', `[${group}]`, ...members);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

export interface TeardownReport {
  containers: string[];
  volumes: string[];
  networks: string[];
  registryPid?: number;
}

/** Removes every node, node volume and fleet network (by id), stops the gateway registry (by pid) and forgets the keys. */
export async function teardownFleet(): Promise<TeardownReport> {
  const report: TeardownReport = { containers: [], volumes: [], networks: [] };
  const containers = await docker.listContainers({ all: true, filters: { label: [`${LABEL}=node`] } });
  await Promise.all(containers.map((container) => docker.getContainer(container.Id).remove({ force: true })));
  report.containers = containers.map((container) => container.Id);
  const { Volumes } = await docker.listVolumes({ filters: { label: [`${LABEL}=volume`] } });
  for (const volume of Volumes ?? []) {
    await docker.getVolume(volume.Name).remove();
    report.volumes.push(volume.Name);
  }
  const registryPid = runningRegistryPid();
  if (registryPid) {
    await stopProcess(registryPid);
    report.registryPid = registryPid;
  }
  // After the registry: it listens on the bridge's address.
  for (const network of await docker.listNetworks({ filters: { label: [`${LABEL}=network`] } })) {
    await docker.getNetwork(network.Id).remove();
    report.networks.push(network.Id);
  }
  rmSync(FLEET_STATE_DIR, { recursive: true, force: true });
  return report;
}

function layoutNodes(fleet: Fleet, layout: InventoryLayout): FleetNode[] {
  const names = new Set(Object.values(layout.groups).flat());
  for (const name of names) if (!fleet.nodes.some((n) => n.name === name)) throw new Error(`layout names "${name}", which is not a node of this fleet`);
  return fleet.nodes.filter((n) => names.has(n.name));
}

function ensureUserKey(): string {
  const keyFile = join(FLEET_STATE_DIR, 'id_ed25519');
  if (!existsSync(keyFile)) {
    const result = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'kolla-ts-fleet', '-f', keyFile]);
    if (result.status !== 0) throw new Error(`ssh-keygen failed: ${result.stderr}`);
  }
  return keyFile;
}

async function inspectImage(ref: string): Promise<string | null> {
  try {
    return (await docker.getImage(ref).inspect()).Id;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return null;
    throw error;
  }
}

/** Internal: nodes reach the gateway (this machine) and each other, nothing beyond (no forwarding, no NAT). */
async function ensureNetwork(): Promise<string> {
  const [found] = await docker.listNetworks({ filters: { label: [`${LABEL}=network`] } });
  if (found) return found.Id;
  const created = await docker.createNetwork({
    Name: NETWORK_NAME,
    Driver: 'bridge',
    Internal: true,
    CheckDuplicate: true,
    IPAM: { Driver: 'default', Config: [{ Subnet: FLEET_SUBNET, Gateway: FLEET_GATEWAY }] },
    Options: { 'com.docker.network.bridge.name': BRIDGE_NAME },
    Labels: { [LABEL]: 'network' },
  });
  return created.id;
}

/**
 * A second docker-registry process on the gateway address over the storage
 * of the loopback one (scripts/engine-up.sh). Read-only, so the deploy host
 * keeps pushing to 127.0.0.1:4000 and the two never write the same files.
 */
async function ensureRegistry(log: LogSink): Promise<void> {
  const running = runningRegistryPid();
  if (running) {
    if (await registryAnswers()) return;
    await stopProcess(running);
  }
  const hostConfig = join(HOST_STATE_DIR, 'registry.yml');
  if (!existsSync(hostConfig)) throw new Error(`${hostConfig} not found: run scripts/engine-up.sh first`);
  const storage = (yaml.load(readFileSync(hostConfig, 'utf8')) as { storage?: { filesystem?: { rootdirectory?: string } } }).storage?.filesystem?.rootdirectory;
  if (!storage) throw new Error(`${hostConfig} names no storage.filesystem.rootdirectory`);
  const config = join(FLEET_STATE_DIR, 'registry.yml');
  writeFileSync(
    config,
    yaml.dump({
      version: 0.1,
      log: { level: 'warn' },
      storage: { filesystem: { rootdirectory: storage }, maintenance: { readonly: { enabled: true }, uploadpurging: { enabled: false } } },
      http: { addr: FLEET_REGISTRY },
    }),
  );
  log(`starting a read-only registry on ${FLEET_REGISTRY} over ${storage}`);
  const logFd = openSync(join(FLEET_STATE_DIR, 'registry.log'), 'a');
  // Detached: it outlives this test worker and serves the next test file; teardownFleet stops it by pid.
  const child = spawn('docker-registry', ['serve', config], { detached: true, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  if (!child.pid) throw new Error('could not start docker-registry');
  child.unref();
  writeFileSync(join(FLEET_STATE_DIR, 'registry.pid'), `${child.pid}\n`);
  for (let i = 0; i < 100; i++) {
    if (await registryAnswers()) return;
    if (!processAlive(child.pid)) break;
    await sleep(100);
  }
  const tail = readFileSync(join(FLEET_STATE_DIR, 'registry.log'), 'utf8').trim().split('\n').slice(-5).join('\n');
  throw new Error(`the gateway registry on ${FLEET_REGISTRY} did not come up:\n${tail}`);
}

async function registryAnswers(): Promise<boolean> {
  try {
    return (await fetch(`http://${FLEET_REGISTRY}/v2/`, { signal: AbortSignal.timeout(2_000) })).ok;
  } catch {
    return false;
  }
}

/** The pid in the pid file, if that process is still our registry (a pid may have been reused). */
function runningRegistryPid(): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(join(FLEET_STATE_DIR, 'registry.pid'), 'utf8').trim());
  } catch {
    return undefined;
  }
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('docker-registry') && cmdline.includes(join(FLEET_STATE_DIR, 'registry.yml')) ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function stopProcess(pid: number): Promise<void> {
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50 && processAlive(pid); i++) await sleep(100);
  if (processAlive(pid)) process.kill(pid, 'SIGKILL');
}

/** A zombie counts as gone: its parent (whoever adopted the detached registry) reaps it in its own time. */
function processAlive(pid: number): boolean {
  try {
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z');
  } catch {
    return false;
  }
}

interface FoundNode {
  id: string;
  name: string;
  address: string;
  spec: string;
  running: boolean;
}

async function fleetContainers(): Promise<FoundNode[]> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL}=node`] } });
  return list.map((c) => ({
    id: c.Id,
    name: c.Labels[NODE_LABEL] ?? '',
    address: c.NetworkSettings.Networks[NETWORK_NAME]?.IPAMConfig?.IPv4Address || (c.NetworkSettings.Networks[NETWORK_NAME]?.IPAddress ?? ''),
    spec: c.Labels[SPEC_LABEL] ?? '',
    running: c.State === 'running',
  }));
}

function nextAddress(taken: Set<string>): string {
  const prefix = FLEET_GATEWAY.replace(/\.\d+$/, '.');
  for (let host = FIRST_NODE_HOST; host < 255; host++) if (!taken.has(`${prefix}${host}`)) return `${prefix}${host}`;
  throw new Error(`no free address left in ${FLEET_SUBNET}`);
}

/** What a node container is created from; its hash (with the image id) says whether a node is current. */
function nodeOptions(name: string, address: string, image: string, publicKey: string): Docker.ContainerCreateOptions {
  // CgroupnsMode (API 1.41) is missing from @types/dockerode.
  const hostConfig: Docker.HostConfig & { CgroupnsMode: 'private' } = {
    Privileged: true,
    // The node's /proc/self/cgroup then names paths under its own /sys/fs/cgroup, as on a real host.
    CgroupnsMode: 'private',
    NetworkMode: NETWORK_NAME,
    // As on a real host, and so a restarted node finds no stale pid files or sockets.
    Tmpfs: { '/run': 'rw,nosuid,nodev,exec,mode=755' },
    Mounts: [
      // The inner engine's overlay2 needs a real filesystem under it, not the node's own overlay.
      { Type: 'volume', Source: volumeOf(name), Target: '/var/lib/docker' },
      { Type: 'bind', Source: '/lib/modules', Target: '/lib/modules', ReadOnly: true },
    ],
  };
  return {
    name: `${NETWORK_NAME}-${name}`,
    Hostname: name,
    Image: image,
    Labels: { [LABEL]: 'node', [NODE_LABEL]: name },
    Env: [`FLEET_REGISTRY=${FLEET_REGISTRY}`, `FLEET_AUTHORIZED_KEY=${publicKey}`],
    HostConfig: hostConfig,
    NetworkingConfig: { EndpointsConfig: { [NETWORK_NAME]: { IPAMConfig: { IPv4Address: address } } } },
  };
}

function volumeOf(name: string): string {
  return `${NETWORK_NAME}-${name}-docker`;
}

/** Its engine volume is kept when a node is recreated: images it pulled stay. */
async function createNode(name: string, options: Docker.ContainerCreateOptions, spec: string): Promise<string> {
  await docker.createVolume({ Name: volumeOf(name), Labels: { [LABEL]: 'volume', [NODE_LABEL]: name } });
  const container = await docker.createContainer({ ...options, Labels: { ...options.Labels, [SPEC_LABEL]: spec } });
  await container.start();
  return container.id;
}

/** A new or restarted node is up when its sshd greets; its entrypoint starts sshd only once the engine answers. */
async function waitForBoot(node: FleetNode): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (await waitForSsh(node.address, 1_000)) return;
    const { State } = await docker.getContainer(node.container).inspect();
    if (!State.Running) {
      const logs = await docker.getContainer(node.container).logs({ stdout: true, stderr: true, tail: 30 });
      throw new Error(`${node.name}: the node stopped while starting (exit ${State.ExitCode}):\n${demux(logs)}`);
    }
  }
  throw new Error(`${node.name}: sshd did not answer on ${node.address}:${node.sshPort} within 120 s`);
}

/** Whether an SSH server greets on address:22 within `timeout` ms (a listening port alone is not enough). */
async function waitForSsh(address: string, timeout: number): Promise<boolean> {
  const deadline = Date.now() + timeout;
  do {
    const banner = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: address, port: 22, timeout: 1_000 });
      socket.once('data', (chunk: Buffer) => {
        socket.destroy();
        resolve(chunk.toString().startsWith('SSH-'));
      });
      socket.once('timeout', () => (socket.destroy(), resolve(false)));
      socket.once('error', () => resolve(false));
    });
    if (banner) return true;
    await sleep(200);
  } while (Date.now() < deadline);
  return false;
}

function portOpen(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port, timeout: 1_000 }, () => (socket.destroy(), resolve(true)));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(false));
  });
}

/** known_hosts for every node of the fleet, host keys read from inside each node. */
async function writeKnownHosts(): Promise<string> {
  const lines: string[] = [];
  for (const node of await fleetContainers()) {
    if (!node.running) continue;
    const key = await execIn(node.id, 'cat /etc/ssh/ssh_host_ed25519_key.pub');
    if (key.code !== 0) throw new Error(`${node.name}: cannot read its host key: ${key.stderr.trim()}`);
    const [type, body] = key.stdout.trim().split(/\s+/);
    lines.push(`${node.address} ${type} ${body}`);
  }
  const file = join(FLEET_STATE_DIR, 'known_hosts');
  writeFileSync(`${file}.tmp`, `${lines.join('\n')}\n`);
  renameSync(`${file}.tmp`, file);
  return file;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
