/**
 * kolla-ts's own Ceph (enable_ceph, roles/ceph) on three real hosts: three
 * docker-in-docker nodes (tests/helpers/fleet.ts) in the `storage` group,
 * each running a monitor, a manager and one OSD, pools of three copies
 * (ceph_pool_size: 3), so every object is on every host. Shown: the three
 * monitors in quorum and HEALTH_OK after one deploy, an object written
 * through one host and read back through another, and the quorum outliving
 * one host's monitor until a deploy starts it again. Every other role is
 * off, so nothing but Ceph is pulled.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureFleet, exec, teardownFleet, writeInventory, type Fleet, type FleetNode } from '../helpers/fleet.ts';
import { loadRoleSet } from '../../src/deploy/session.ts';
import { PROJECT_ROOT, REGISTRY, requireEngine, runCli, waitFor } from '../helpers/environment.ts';

const run = promisify(execFile);
const NODES = ['stor1', 'stor2', 'stor3'];
const NAMESPACE = 'cephtest';
const IMAGES = ['ceph-mon', 'ceph-mgr', 'ceph-osd'];
const CONTAINERS = ['ceph_mgr', 'ceph_mon', 'ceph_osd'];
const POOLS = ['images', 'volumes', 'vms', 'backups'];
/** One config dir across runs: nodes kept between runs (KOLLA_TS_FLEET_KEEP) know its fsid and keys. */
const configDir = '/var/lib/kolla-ts-host/ceph-cluster-etc';
const started = Date.now();
/** Object and image names of this run: nodes kept from an earlier run (KOLLA_TS_FLEET_KEEP) hold that run's. */
const runId = started.toString(36);
const OBJECT = `kolla-ts-object-${runId}`;
const log = (line: string): void => console.log(`  | ${line}`);
/** Where the time goes, for a file meant to stay within a few minutes on two cores. */
const mark = (what: string): void => console.log(`  @ ${((Date.now() - started) / 1000).toFixed(1)} s: ${what}`);

let fleet: Fleet;
let inventory: string;
const args = (): string[] => ['-i', inventory, '--configdir', configDir];
const node = (name: string): FleetNode => fleet.nodes.find((n) => n.name === name)!;

async function kollaTs(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(argv, { onLine: log });
}

/**
 * A command in one node's ceph_mon container, as an operator runs it there
 * (`docker exec ceph_mon ...`): its ceph.conf lists every monitor, its admin
 * keyring is the cluster's. Bounded, so a lost quorum fails instead of hanging.
 */
async function onMon(name: string, command: string): Promise<string> {
  const result = await exec(node(name), `timeout 90 docker exec ceph_mon sh -c '${command}'`);
  if (result.code !== 0) throw new Error(`${name}: ${command}: exit ${result.code}: ${result.stderr.trim().slice(-1000)}`);
  return result.stdout;
}

interface CephStatus {
  health: { status: string; checks: Record<string, { summary?: { message?: string } }> };
  quorum_names: string[];
  monmap: { num_mons?: number; mons?: unknown[] };
  osdmap: { num_osds: number; num_up_osds: number; num_in_osds: number } | { osdmap: { num_osds: number; num_up_osds: number; num_in_osds: number } };
  mgrmap: { available: boolean };
}

async function status(name: string): Promise<CephStatus> {
  return JSON.parse(await onMon(name, 'ceph --connect-timeout 60 -s -f json')) as CephStatus;
}

/** ceph -s's OSD counts (nested one level deeper before Octopus). */
function osds(s: CephStatus): { num_osds: number; num_up_osds: number; num_in_osds: number } {
  return 'osdmap' in s.osdmap ? s.osdmap.osdmap : s.osdmap;
}

const numMons = (s: CephStatus): number => s.monmap.num_mons ?? s.monmap.mons?.length ?? 0;
const describeStatus = (s: CephStatus): string =>
  `${s.health.status} quorum [${s.quorum_names.join(', ')}] of ${numMons(s)}; osds ${JSON.stringify(osds(s))}; ${Object.entries(s.health.checks)
    .map(([k, v]) => `${k}: ${v.summary?.message ?? ''}`)
    .join('; ')}`;

/** Resolves once `name`'s view of the cluster has every monitor in quorum, every OSD up and in, and HEALTH_OK. */
async function healthy(name: string, seconds: number): Promise<CephStatus> {
  let last = '';
  return waitFor(
    'three monitors in quorum, three OSDs up and in, HEALTH_OK',
    async () => {
      const s = await status(name);
      const described = describeStatus(s);
      if (described !== last) log(`${name}: ${(last = described)}`);
      const o = osds(s);
      return s.quorum_names.length === 3 && numMons(s) === 3 && o.num_osds === 3 && o.num_up_osds === 3 && o.num_in_osds === 3 && s.health.status === 'HEALTH_OK' ? s : undefined;
    },
    seconds,
  );
}

/** Each ceph container's start time on a node: what a command that should not touch it must leave alone. */
async function startTimes(name: string): Promise<string> {
  return (await exec(node(name), `docker inspect -f '{{.Name}} {{.State.StartedAt}}' ${CONTAINERS.join(' ')}`)).stdout;
}

describe("kolla-ts's own Ceph on three storage hosts", () => {
  beforeAll(async () => {
    await requireEngine();
    // Fresh hosts: a node an earlier run kept would already hold a monitor store and an OSD.
    if (!process.env.KOLLA_TS_FLEET_KEEP) await teardownFleet();
    fleet = await ensureFleet({ nodes: NODES, log });
    mark('fleet up');
    // The Ceph images under a namespace of this test's own (incremental: nothing is rebuilt when the keys are in the registry).
    const built = await kollaTs(['build', '^ceph', '--registry', REGISTRY, '--push', '--threads', '2']);
    expect(built.code, built.stderr.slice(-2000)).toBe(0);
    for (const image of IMAGES) {
      await run('docker', ['tag', `${REGISTRY}/kolla/${image}:zed`, `${REGISTRY}/${NAMESPACE}/${image}:zed`]);
      await run('docker', ['push', `${REGISTRY}/${NAMESPACE}/${image}:zed`]);
    }
    mark('images built and pushed');
    mkdirSync(configDir, { recursive: true, mode: 0o700 });
    // Ceph only: every other role is turned off, new ones included.
    const disabled = loadRoleSet(PROJECT_ROOT)
      .filter((r) => r.service !== 'ceph')
      .map((r) => `${r.enable}: false`);
    writeFileSync(
      join(configDir, 'globals.yml'),
      [
        `docker_registry: ${fleet.registry}`,
        'docker_registry_insecure: true',
        `docker_namespace: ${NAMESPACE}`,
        `kolla_internal_vip_address: ${node('stor1').address}`,
        'network_interface: eth0',
        'enable_ceph: true',
        // Three copies of every object, one on each host (the default CRUSH rule puts copies on different hosts).
        'ceph_pool_size: 3',
        ...disabled,
        '',
      ].join('\n'),
    );
    expect((await kollaTs(['genpwd', '--configdir', configDir])).code).toBe(0);
    inventory = writeInventory(fleet, join(configDir, 'inventory.yml'), { groups: { storage: NODES } });
  }, 15 * 60_000);

  afterAll(async () => {
    mark('done');
    if (!process.env.KOLLA_TS_FLEET_KEEP) await teardownFleet();
  });

  it('deploys a monitor, a manager and an OSD on each host: three monitors in quorum, three OSDs up and in, HEALTH_OK, pools of three copies; a second deploy has nothing to do', { timeout: 10 * 60_000 }, async () => {
    const result = await kollaTs(['deploy', ...args(), '--json']);
    mark('deploy done');
    expect(result.code, result.stderr.slice(-4000)).toBe(0);
    const hosts = (JSON.parse(result.stdout) as { hosts: { host: string; outcome: string }[] }).hosts;
    expect(hosts.map((h) => [h.host, h.outcome])).toEqual(NODES.map((n) => [n, 'changed']));
    for (const name of NODES) {
      const running = (await exec(node(name), "docker ps --format '{{.Names}}'")).stdout.split('\n').filter(Boolean).sort();
      expect(running, name).toEqual(CONTAINERS);
    }

    const s = await healthy('stor1', 120);
    mark('HEALTH_OK');
    expect([...s.quorum_names].sort()).toEqual(NODES);
    expect(s.mgrmap.available).toBe(true);
    // Each monitor on its own host's address, both protocols.
    const monmap = JSON.parse(await onMon('stor2', 'ceph mon dump -f json')) as { mons: { name: string; public_addrs: { addrvec: { type: string; addr: string }[] } }[] };
    expect(monmap.mons.map((m) => [m.name, m.public_addrs.addrvec.map((a) => `${a.type}:${a.addr}`)]).sort()).toEqual(
      NODES.map((n) => [n, [`v2:${node(n).address}:3300`, `v1:${node(n).address}:6789`]]),
    );
    // One OSD under each host in the CRUSH map: three copies means one on every host.
    const tree = JSON.parse(await onMon('stor1', 'ceph osd tree -f json')) as { nodes: { id: number; name: string; type: string; children?: number[]; status?: string }[] };
    const hostsInCrush = tree.nodes.filter((n) => n.type === 'host');
    expect(hostsInCrush.map((h) => [h.name, h.children?.length]).sort()).toEqual(NODES.map((n) => [n, 1]));
    expect(tree.nodes.filter((n) => n.type === 'osd').map((n) => n.status)).toEqual(['up', 'up', 'up']);
    const pools = JSON.parse(await onMon('stor3', 'ceph osd pool ls detail -f json')) as { pool_name: string; size: number; min_size: number; application_metadata: Record<string, unknown> }[];
    for (const pool of POOLS) {
      expect(pools.find((p) => p.pool_name === pool), pool).toMatchObject({ size: 3, min_size: 2, application_metadata: { rbd: {} } });
    }

    const again = await kollaTs(['deploy', ...args()]);
    mark('second deploy done');
    expect(again.code, again.stderr.slice(-2000)).toBe(0);
    expect(again.stdout).toContain('Nothing to do');
  });

  it('reads an object back through another host that was written through one, three copies on three OSDs', { timeout: 3 * 60_000 }, async () => {
    const written = await onMon('stor1', `head -c 1048576 /dev/urandom > /tmp/${OBJECT} && rados -p volumes put ${OBJECT} /tmp/${OBJECT} && md5sum < /tmp/${OBJECT}`);
    const read = await onMon('stor2', `rados -p volumes get ${OBJECT} /tmp/${OBJECT} && md5sum < /tmp/${OBJECT}`);
    expect(read.trim()).toMatch(/^[0-9a-f]{32}/);
    expect(read.trim()).toBe(written.trim());
    // Its three copies are on three OSDs, one per host (the CRUSH tree above).
    const map = JSON.parse(await onMon('stor3', `ceph osd map volumes ${OBJECT} -f json`)) as { acting: number[]; up: number[] };
    expect(new Set(map.acting).size).toBe(3);
    // And an RBD image, as cinder would make one.
    await onMon('stor3', `rbd create --size 64 volumes/kolla-ts-image-${runId}`);
    expect((await onMon('stor1', 'rbd ls volumes')).split('\n')).toContain(`kolla-ts-image-${runId}`);
    mark('object and image written and read');
  });

  it("keeps a quorum without one host's monitor, and a deploy of that host brings it back: three in quorum, HEALTH_OK", { timeout: 8 * 60_000 }, async () => {
    const othersBefore = [await startTimes('stor1'), await startTimes('stor2')];
    const stopped = await exec(node('stor3'), 'docker stop ceph_mon');
    expect(stopped.code, stopped.stderr).toBe(0);
    mark('stor3 monitor stopped');
    let lastSeen = '';
    const degraded = await waitFor(
      'two monitors of three in quorum',
      async () => {
        const s = await status('stor1');
        const described = describeStatus(s);
        if (described !== lastSeen) log(`stor1: ${(lastSeen = described)}`);
        return s.quorum_names.length === 2 ? s : undefined;
      },
      120,
    );
    mark('quorum of two');
    expect([...degraded.quorum_names].sort()).toEqual(['stor1', 'stor2']);
    expect(numMons(degraded)).toBe(3);
    expect(degraded.health.status).toBe('HEALTH_WARN');
    expect(Object.keys(degraded.health.checks)).toContain('MON_DOWN');
    // The cluster still serves: the object written before is read, and a new one written, through stor1.
    const before = (await onMon('stor1', `rados -p volumes get ${OBJECT} /tmp/${OBJECT}-again && md5sum < /tmp/${OBJECT}-again`)).trim();
    expect(before).toMatch(/^[0-9a-f]{32}/);
    const writtenDegraded = (await onMon('stor1', `head -c 1048576 /dev/urandom > /tmp/${OBJECT}-2 && rados -p volumes put ${OBJECT}-2 /tmp/${OBJECT}-2 && md5sum < /tmp/${OBJECT}-2`)).trim();

    const plan = await kollaTs(['plan', ...args()]);
    expect(plan.stdout).toContain('stor3: ceph_mon: start');
    const redeployed = await kollaTs(['deploy', ...args(), '--limit', 'stor3']);
    mark('deploy --limit stor3 done');
    expect(redeployed.code, redeployed.stderr.slice(-3000)).toBe(0);
    expect((await exec(node('stor3'), "docker inspect -f '{{.State.Running}}' ceph_mon")).stdout.trim()).toBe('true');
    const s = await healthy('stor3', 240);
    mark('three in quorum again, HEALTH_OK');
    expect([...s.quorum_names].sort()).toEqual(NODES);
    // What was written while it was down is read through its monitor.
    expect((await onMon('stor3', `rados -p volumes get ${OBJECT}-2 /tmp/${OBJECT}-2 && md5sum < /tmp/${OBJECT}-2`)).trim()).toBe(writtenDegraded);
    // Nothing on the other hosts was restarted.
    expect([await startTimes('stor1'), await startTimes('stor2')]).toEqual(othersBefore);
  });
});
