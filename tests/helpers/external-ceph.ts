/**
 * An existing Ceph cluster, as an operator would have one before deploying
 * OpenStack on it (kolla-ansible's "external Ceph"): the operator gives
 * kolla-ts only a client's ceph.conf and keyrings under config/<service>/.
 *
 * It is deliberately not made by kolla-ts: no role, template, config.json or
 * kolla_start is involved, so a test of the external-Ceph path cannot pass
 * because kolla-ts's own Ceph and its clients share a mistake. Only the Ceph
 * binaries come from this project's images (ceph-mon, ceph-mgr, ceph-osd);
 * tests/fixtures/external-ceph/ceph-node.sh bootstraps the cluster the way
 * vstart.sh and cephadm do (ceph-authtool, monmaptool, ceph-mon --mkfs,
 * ceph osd new, ceph-osd --mkfs).
 *
 * Three containers on the caller's Docker network, at fixed addresses: the
 * monitor at `address`, the manager at `address` + 1, the OSD at `address` + 2.
 * The OSD's BlueStore is an 8 GiB sparse file on its volume (no disk, no
 * privileges). Pools images, volumes, vms and backups hold one copy each;
 * client.glance and client.cinder have the caps kolla-ansible's external
 * Ceph guide gives them. Everything is found again by its label and removed
 * by id; there is one such cluster per engine at a time.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Docker from 'dockerode';
import { DockerodeImageEngine } from '../../src/engine/docker.ts';
import { demux, execInContainer, type ExecResult } from './container-exec.ts';
import { PROJECT_ROOT, REGISTRY } from './environment.ts';

export interface ExternalCeph {
  /** The monitor's address (msgr2 on 3300, v1 on 6789). */
  address: string;
  /** Every daemon's address: the monitor's, then the next two. */
  addresses: { mon: string; mgr: string; osd: string };
  fsid: string;
  /** A client's ceph.conf: `ceph config generate-minimal-conf` (fsid, mon_host), as an operator copies it. */
  cephConf: string;
  /** By client user name (glance, cinder): the keyring file as `ceph auth get client.NAME` prints it, caps included. */
  keyrings: Record<string, string>;
  /** Runs a shell command as client.admin in the monitor's container, e.g. `rbd -p vms ls`. */
  exec(command: string): Promise<ExecResult>;
}

export interface StartExternalCephOptions {
  /** A Docker network (name or id) holding `address` .. `address` + 2. */
  network: string;
  /** The monitor's address; the manager and the OSD take the next two. */
  address: string;
  log?: (line: string) => void;
  /** Until the cluster is HEALTH_OK with usable pools (default 300). */
  timeoutSeconds?: number;
}

/** Its own label key: neither `kolla-ts destroy` (org.kolla-ts.managed) nor the fleet's teardown sees these. */
const LABEL = 'org.kolla-ts.test-external-ceph';
const NAME_PREFIX = 'kolla-ts-external-ceph';
const SCRIPT = readFileSync(join(PROJECT_ROOT, 'tests/fixtures/external-ceph/ceph-node.sh'), 'utf8');
const DAEMONS = ['mon', 'mgr', 'osd'] as const;
type Daemon = (typeof DAEMONS)[number];
const POOLS = ['images', 'volumes', 'vms', 'backups'];
/** kolla-ansible's external Ceph guide (after Ceph's "Block Devices and OpenStack"); cinder's user also serves nova and cinder-backup. */
const CLIENTS: Record<string, { mon: string; osd: string; mgr: string }> = {
  glance: { mon: 'profile rbd', osd: 'profile rbd pool=images', mgr: 'profile rbd pool=images' },
  cinder: {
    mon: 'profile rbd',
    osd: 'profile rbd pool=volumes, profile rbd pool=vms, profile rbd pool=backups, profile rbd-read-only pool=images',
    mgr: 'profile rbd pool=volumes, profile rbd pool=vms, profile rbd pool=backups',
  },
};

const docker = new Docker();

/**
 * Removes any cluster of an earlier run, then makes a new one and returns
 * once `ceph health` says HEALTH_OK and an RBD image can be created and
 * removed in the volumes pool.
 */
export async function startExternalCeph(options: StartExternalCephOptions): Promise<ExternalCeph> {
  const log = options.log ?? (() => {});
  const called = Date.now();
  const deadline = Date.now() + (options.timeoutSeconds ?? 300) * 1000;
  const addresses = daemonAddresses(options.address);
  await removeExternalCeph();

  const engine = new DockerodeImageEngine(docker);
  for (const daemon of DAEMONS) {
    if (!(await engine.inspectImage(imageOf(daemon)))) {
      log(`pulling ${imageOf(daemon)}`);
      await engine.pull(imageOf(daemon), log);
    }
  }

  const fsid = randomUUID();
  const etc = await createVolume('etc');
  const containers = {} as Record<Daemon, string>;
  for (const daemon of DAEMONS) {
    const data = daemon === 'mgr' ? [] : [{ Type: 'volume' as const, Source: await createVolume(daemon), Target: `/var/lib/ceph/${daemon}` }];
    const environment = daemon === 'mon' ? [`FSID=${fsid}`, `MON_ADDRESS=${addresses.mon}`] : [`PUBLIC_ADDRESS=${addresses[daemon]}`];
    const container = await docker.createContainer({
      name: `${NAME_PREFIX}-${daemon}`,
      Hostname: `${NAME_PREFIX}-${daemon}`,
      Image: imageOf(daemon),
      // The script, not the image's kolla_start; root, to write the shared /etc/ceph.
      User: 'root',
      Entrypoint: ['sh', '-c', SCRIPT, 'ceph-node.sh'],
      Cmd: [daemon],
      Env: environment,
      Labels: { [LABEL]: daemon },
      HostConfig: {
        NetworkMode: options.network,
        Mounts: [{ Type: 'volume', Source: etc, Target: '/etc/ceph' }, ...data],
      },
      NetworkingConfig: { EndpointsConfig: { [options.network]: { IPAMConfig: { IPv4Address: addresses[daemon] } } } },
    });
    await container.start();
    containers[daemon] = container.id;
  }
  const started = Date.now();
  log(`external Ceph ${fsid}: mon ${addresses.mon}, mgr ${addresses.mgr}, osd ${addresses.osd}`);

  const admin = (command: string[]) => execInContainer(containers.mon, command);
  const mustAdmin = async (command: string[]): Promise<string> => {
    const result = await admin(command);
    if (result.code !== 0) throw new Error(`external Ceph: \`${command.join(' ')}\` failed (exit ${result.code}): ${result.stderr.trim()}`);
    return result.stdout;
  };
  const status = async () => (await admin(['ceph', '--connect-timeout', '5', '-s'])).stdout.trimEnd();
  /** Polls `probe` until it holds; fails early with a container's log when one has stopped, else at the deadline with `ceph -s`. */
  const waitUntil = async (what: string, probe: () => Promise<boolean>): Promise<void> => {
    for (;;) {
      // A probe that throws (say, exec into a container that just stopped) is a no; failIfStopped says why.
      if (await probe().catch(() => false)) return;
      await failIfStopped(containers);
      if (Date.now() > deadline) throw new Error(`external Ceph: timed out waiting for ${what}; last \`ceph -s\`:\n${await status()}`);
      await sleep(1000);
    }
  };

  await waitUntil('the monitor', async () => (await admin(['ceph', '--connect-timeout', '5', 'mon', 'stat'])).code === 0);
  log(`external Ceph: monitor up after ${seconds(started)} s`);
  await waitUntil('the OSD to be up', async () => (JSON.parse((await admin(['ceph', 'osd', 'stat', '--format', 'json'])).stdout) as { num_up_osds: number }).num_up_osds === 1);
  log(`external Ceph: OSD up after ${seconds(started)} s`);
  await mustAdmin(['sh', '-c', SCRIPT, 'ceph-node.sh', 'pools', ...POOLS]);
  log(`external Ceph: pools ${POOLS.join(', ')} after ${seconds(started)} s`);
  const keyrings: Record<string, string> = {};
  for (const [user, caps] of Object.entries(CLIENTS)) {
    await mustAdmin(['ceph', 'auth', 'get-or-create', `client.${user}`, 'mon', caps.mon, 'osd', caps.osd, 'mgr', caps.mgr]);
    keyrings[user] = await mustAdmin(['ceph', 'auth', 'get', `client.${user}`]);
  }
  await waitUntil('HEALTH_OK', async () => (await admin(['ceph', 'health'])).stdout.trim() === 'HEALTH_OK');
  // The pools take writes (what HEALTH_OK alone does not say of a fresh cluster).
  await waitUntil(
    'an RBD image in the volumes pool',
    async () => (await admin(['sh', '-c', 'timeout 20 rbd -p volumes create --size 1 external-ceph-probe && rbd -p volumes rm external-ceph-probe'])).code === 0,
  );
  log(`external Ceph ${fsid}: HEALTH_OK, pools usable after ${seconds(called)} s (${seconds(started)} s from its containers' start)`);

  return {
    address: addresses.mon,
    addresses,
    fsid,
    cephConf: await mustAdmin(['ceph', 'config', 'generate-minimal-conf']),
    keyrings,
    exec: (command) => execInContainer(containers.mon, ['sh', '-c', command]),
  };
}

/** Removes the cluster's containers and volumes (by label, then by id); no-op when there is none. */
export async function removeExternalCeph(): Promise<void> {
  const containers = await docker.listContainers({ all: true, filters: { label: [LABEL] } });
  await Promise.all(containers.map((container) => docker.getContainer(container.Id).remove({ force: true })));
  const { Volumes } = await docker.listVolumes({ filters: { label: [LABEL] } });
  for (const volume of Volumes ?? []) await docker.getVolume(volume.Name).remove();
}

/** The monitor at `address`, the manager and the OSD at the next two addresses. */
function daemonAddresses(address: string): ExternalCeph['addresses'] {
  const octets = address.split('.').map(Number);
  const last = octets[3];
  if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255) || last === undefined || last > 252) {
    throw new Error(`external Ceph: "${address}" is not an IPv4 address with two more after it in its /24 (the manager's and the OSD's)`);
  }
  const next = (step: number) => [...octets.slice(0, 3), last + step].join('.');
  return { mon: address, mgr: next(1), osd: next(2) };
}

function imageOf(daemon: Daemon): string {
  return `${REGISTRY}/kolla/ceph-${daemon}:zed`;
}

/** A named volume with the cluster's label, so removeExternalCeph finds it. */
async function createVolume(purpose: string): Promise<string> {
  const name = `${NAME_PREFIX}-${purpose}`;
  await docker.createVolume({ Name: name, Labels: { [LABEL]: purpose } });
  return name;
}

async function failIfStopped(containers: Record<Daemon, string>): Promise<void> {
  for (const daemon of DAEMONS) {
    const container = docker.getContainer(containers[daemon]);
    const { State } = await container.inspect();
    if (State.Running) continue;
    const logs = await container.logs({ stdout: true, stderr: true, tail: 30 });
    throw new Error(`external Ceph: the ${daemon} container stopped (exit ${State.ExitCode}):\n${demux(logs)}`);
  }
}

function seconds(since: number): string {
  return ((Date.now() - since) / 1000).toFixed(1);
}
