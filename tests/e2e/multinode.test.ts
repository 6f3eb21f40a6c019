/**
 * OpenStack across real hosts: a controller and two computes, each a
 * docker-in-docker node with its own sshd and engine on 198.18.0.0/24
 * (tests/helpers/fleet.ts), deployed over SSH from a kolla-ansible INI
 * inventory (a host range, `:children`, host_vars), then driven from this
 * machine with the real OpenStack client: a guest booted onto each compute,
 * the two reaching each other over init-cloud's VXLAN network.
 * Storage is an existing Ceph cluster that kolla-ts did not make
 * (tests/helpers/external-ceph.ts), given to glance, cinder and nova as an
 * operator gives it: ceph.conf and client keyrings under config/<service>/.
 * Images, volumes and the guests' own disks (nova_backend_ceph) live in it.
 * One cloud serves every test of the file.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { volumeCheckScript, VOLUME_CHECK_RESULT } from '../helpers/guest.ts';
import { removeExternalCeph, startExternalCeph, type ExternalCeph } from '../helpers/external-ceph.ts';
import { ensureFleet, exec, startSshd, stopSshd, teardownFleet, type Fleet, type FleetNode } from '../helpers/fleet.ts';
import { GiveUp, PROJECT_ROOT, REGISTRY, requireEngine, runCli, waitFor } from '../helpers/environment.ts';

const run = promisify(execFile);
const CONTROLLER = 'ctl';
const COMPUTES = ['cmp1', 'cmp2'];
const NODES = [CONTROLLER, ...COMPUTES];
const configDir = '/var/lib/kolla-ts-host/multinode-etc';
/** The existing cluster's monitor, on the nodes' network above the addresses the fleet gives nodes. */
const CEPH_ADDRESS = '198.18.0.240';
const runId = Date.now().toString(36);
const log = (line: string): void => console.log(`  | ${line}`);

let fleet: Fleet;
let ceph: ExternalCeph;
/** The guest booted onto each compute, for the tests after the one that boots them. */
const guests: { host: string; id: string; instanceName: string }[] = [];
let inventory: string;
let openstackEnv: Record<string, string> = {};
const args = (): string[] => ['-i', inventory, '--configdir', configDir];
const node = (name: string): FleetNode => fleet.nodes.find((n) => n.name === name)!;

async function kollaTs(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(argv, { onLine: log });
}

async function openstack(...argv: string[]): Promise<unknown> {
  const { stdout } = await run('openstack', [...argv, '-f', 'json'], { env: { ...process.env, ...openstackEnv }, maxBuffer: 16 * 1024 * 1024 });
  return JSON.parse(stdout);
}

/** Start time of every container on a node: what a command that should not touch it must leave alone. */
async function startTimes(name: string): Promise<string> {
  return (await exec(node(name), "docker ps -a --format '{{.Names}}' | sort | xargs -r docker inspect -f '{{.Name}} {{.State.StartedAt}}'")).stdout;
}

describe('OpenStack on a controller and two computes over SSH', () => {
  beforeAll(async () => {
    await requireEngine();
    // Every image, in the registry the nodes pull from (the gateway serves the same storage); incremental.
    const built = await kollaTs(['build', '--registry', REGISTRY, '--push', '--threads', '2']);
    expect(built.code, built.stderr.slice(-2000)).toBe(0);
    // The existing cluster's containers are on the fleet's network: they go first.
    if (!process.env.KOLLA_TS_FLEET_KEEP) await removeExternalCeph().then(teardownFleet);
    fleet = await ensureFleet({ nodes: NODES, log });
    // neutron's provider network (physnet1) is bridged to an interface with no address on every node
    // (one end of a veth pair, as scripts/provider-interface.sh makes on this machine).
    for (const name of NODES) {
      const made = await exec(node(name), 'ip link show kolla-ext0 >/dev/null 2>&1 || ip link add kolla-ext0 type veth peer name kolla-ext0p; ip link set kolla-ext0 up && ip link set kolla-ext0p up');
      expect(made.code, made.stderr).toBe(0);
    }

    ceph = await startExternalCeph({ network: fleet.network, address: CEPH_ADDRESS, log });
    // What the operator of an existing cluster puts in place (kolla-ansible's external Ceph): ceph.conf and
    // each service's client keyring, as the cluster printed them. nova uses cinder's user (ceph_nova_user's default).
    const clientsOf = { glance: ['glance'], cinder: ['cinder'], nova: ['cinder'] };
    for (const [service, users] of Object.entries(clientsOf)) {
      mkdirSync(join(configDir, 'config', service), { recursive: true, mode: 0o700 });
      writeFileSync(join(configDir, 'config', service, 'ceph.conf'), ceph.cephConf);
      for (const user of users) writeFileSync(join(configDir, 'config', service, `ceph.client.${user}.keyring`), ceph.keyrings[user]!, { mode: 0o600 });
    }

    mkdirSync(join(configDir, 'ansible', 'host_vars'), { recursive: true, mode: 0o700 });
    writeFileSync(
      join(configDir, 'globals.yml'),
      [
        'kolla_base_distro: debian',
        'openstack_release: zed',
        `docker_registry: ${fleet.registry}`,
        'docker_registry_insecure: true',
        'docker_namespace: kolla',
        // No load balancer: the controller's own address is every internal endpoint.
        `kolla_internal_vip_address: ${node(CONTROLLER).address}`,
        'network_interface: eth0',
        'neutron_external_interface: kolla-ext0',
        'nova_compute_virt_type: qemu',
        // Orchestration and the dashboard are tested on the all-in-one; here they would only add pulls.
        'enable_heat: false',
        'enable_horizon: false',
        // Block storage, images and instance disks on the existing cluster (enable_ceph stays off).
        'enable_cinder: true',
        'cinder_backend_ceph: true',
        'glance_backend_ceph: true',
        'nova_backend_ceph: true',
        '',
      ].join('\n'),
    );
    expect((await kollaTs(['genpwd', '--configdir', configDir])).code).toBe(0);
    // The operator's kolla-ansible inventory, as it is: a host range, :children, host_vars beside it.
    for (const name of NODES) writeFileSync(join(configDir, 'ansible', 'host_vars', name), `ansible_host: ${node(name).address}\napi_address: ${node(name).address}\n`);
    inventory = join(configDir, 'ansible', 'multinode');
    writeFileSync(
      inventory,
      [
        '[control]',
        CONTROLLER,
        '',
        '[network:children]',
        'control',
        '',
        '[storage:children]',
        'control',
        '',
        '[computes]',
        'cmp[1:2]',
        '',
        '[compute:children]',
        'computes',
        '',
        '[all:vars]',
        'ansible_user=root',
        `ansible_ssh_private_key_file=${fleet.keyFile}`,
        `known_hosts=${fleet.knownHostsFile}`,
        '',
      ].join('\n'),
    );
  }, 60 * 60_000);

  afterAll(async () => {
    if (!process.env.KOLLA_TS_FLEET_KEEP) await removeExternalCeph().then(teardownFleet);
  });

  it('deploys the control plane on the controller and nova-compute, libvirt and the Linux bridge agent on each compute, in parallel', { timeout: 40 * 60_000 }, async () => {
    const result = await kollaTs(['deploy', ...args(), '--json']);
    expect(result.code, result.stderr.slice(-4000)).toBe(0);
    const hosts = (JSON.parse(result.stdout) as { hosts: { host: string; outcome: string }[] }).hosts;
    expect(hosts.map((h) => [h.host, h.outcome]).sort()).toEqual(NODES.map((n) => [n, 'changed']).sort());
    for (const name of COMPUTES) {
      const running = (await exec(node(name), "docker ps --format '{{.Names}}'")).stdout.split('\n').filter(Boolean).sort();
      expect(running).toEqual(['neutron_linuxbridge_agent', 'nova_compute', 'nova_libvirt']);
    }
    const onController = (await exec(node(CONTROLLER), "docker ps --format '{{.Names}}'")).stdout;
    for (const name of ['mariadb', 'rabbitmq', 'keystone', 'nova_api', 'neutron_server', 'neutron_linuxbridge_agent', 'cinder_api', 'cinder_volume']) expect(onController).toContain(name);
    // The cluster is the operator's: kolla-ts runs no Ceph daemon of its own.
    expect(onController).not.toContain('ceph_');
    expect(onController).not.toContain('nova_compute');
    const openrc = await kollaTs(['post-deploy', ...args()]);
    expect(openrc.code).toBe(0);
    openstackEnv = Object.fromEntries([...readFileSync(join(configDir, 'admin-openrc.sh'), 'utf8').matchAll(/^export (\w+)='?([^'\n]*)'?$/gm)].map((m) => [m[1]!, m[2]!]));
    const again = await kollaTs(['deploy', ...args()]);
    expect(again.code, again.stderr.slice(-2000)).toBe(0);
    expect(again.stdout).toContain('Nothing to do');
  });

  it('boots a guest onto each compute, ACTIVE with a fixed IP, its qemu on that host, each reaching the other over VXLAN', { timeout: 30 * 60_000 }, async () => {
    await waitFor(
      'nova-compute up on both computes',
      async () => {
        const list = (await openstack('compute', 'service', 'list', '--service', 'nova-compute')) as { Host: string; State: string }[];
        return COMPUTES.every((name) => list.some((s) => s.Host === name && s.State === 'up')) ? list : undefined;
      },
      600,
    );
    await waitFor(
      'Linux bridge agents alive on every host',
      async () => {
        const agents = (await openstack('network', 'agent', 'list', '--agent-type', 'linux-bridge')) as { Host: string; Alive: boolean | string }[];
        return NODES.every((name) => agents.some((a) => a.Host === name && (a.Alive === true || a.Alive === ':-)'))) ? agents : undefined;
      },
      600,
    );
    // init-cloud's demo network is VXLAN: two guests on it, one per compute, reach each other only
    // through the tunnel between the two hosts.
    await run('bash', [join(PROJECT_ROOT, 'scripts', 'guest-image.sh'), join(configDir, 'guest-image')]);
    const init = await kollaTs(['init-cloud', '--configdir', configDir]);
    expect(init.code, init.stderr).toBe(0);
    const peers = Object.fromEntries(COMPUTES.map((host, i) => [host, `198.51.100.${201 + i}`]));
    const servers = await Promise.all(
      COMPUTES.map(async (host, i) => {
        const peer = peers[COMPUTES[1 - i]!]!;
        const userData = join(mkdtempSync(join(tmpdir(), 'kolla-ts-multinode-')), 'user-data.sh');
        // The peer may boot later: ask for two minutes. Then the first guest waits for the volume the
        // volume test attaches, writes 4 MiB of random bytes to it and reads them back.
        const pingPeer = `answered=no\nfor i in $(seq 60); do if ping -c 1 -W 2 ${peer} >/dev/null; then answered=yes; break; fi; done\nif [ $answered = yes ]; then echo "peer ${peer} answers"; else echo "peer ${peer} does not answer"; fi\n`;
        writeFileSync(userData, `#!/bin/sh\n${pingPeer}${i === 0 ? volumeCheckScript(900) : ''}`);
        const port = (await openstack('port', 'create', '--network', 'demo-net', '--fixed-ip', `subnet=demo-subnet,ip-address=${peers[host]}`, `mn-${host}-${runId}`)) as { id: string };
        const created = (await openstack('server', 'create', '--image', 'kolla-ts-guest', '--flavor', 'm1.tiny', '--port', port.id, '--user-data', userData, '--availability-zone', `nova:${host}`, `mn-${host}-${runId}`)) as { id: string };
        return waitFor(
          `server on ${host} ACTIVE`,
          async () => {
            const shown = (await openstack('server', 'show', created.id)) as Record<string, unknown>;
            if (shown.status === 'ERROR') throw new GiveUp(`server on ${host} went to ERROR: ${JSON.stringify(shown.fault)}`);
            return shown.status === 'ACTIVE' ? shown : undefined;
          },
          900,
        );
      }),
    );
    // glance stored the guest image in the existing cluster, and nova_backend_ceph made each guest's
    // disk a copy-on-write clone of it there (glance shows RBD locations to nova for this).
    const image = (await openstack('image', 'show', 'kolla-ts-guest')) as { id: string };
    expect((await ceph.exec('rbd -p images ls')).stdout.split('\n')).toContain(image.id);
    for (const server of servers) {
      const disk = await ceph.exec(`rbd info vms/${String(server.id)}_disk`);
      expect(disk.code, disk.stderr).toBe(0);
      expect(disk.stdout).toContain(`parent: images/${image.id}@snap`);
    }
    for (const [i, host] of COMPUTES.entries()) {
      const server = servers[i]!;
      guests.push({ host, id: String(server.id), instanceName: String(server['OS-EXT-SRV-ATTR:instance_name']) });
      expect(server['OS-EXT-SRV-ATTR:host']).toBe(host);
      expect(JSON.stringify(server.addresses)).toMatch(/198\.51\.100\.\d+/);
      // libvirt runs in the node's pid namespace: the guest is that host's process, and only that host's.
      // "[i]nstance": the pattern must not match the shell that runs pgrep.
      const pattern = `'guest=${String(server['OS-EXT-SRV-ATTR:instance_name']).replace(/^i/, '[i]')}'`;
      expect((await exec(node(host), `pgrep -f ${pattern}`)).code).toBe(0);
      expect((await exec(node(COMPUTES[1 - i]!), `pgrep -f ${pattern}`)).code).not.toBe(0);
    }
    for (const [i, host] of COMPUTES.entries()) {
      const peer = peers[COMPUTES[1 - i]!]!;
      const consoleLog = async (): Promise<string> => (await run('openstack', ['console', 'log', 'show', String(servers[i]!.id)], { env: { ...process.env, ...openstackEnv }, maxBuffer: 16 * 1024 * 1024 })).stdout;
      const done = await waitFor(`the guest on ${host} done pinging its peer`, async () => (/user-data: peer \S+ (answers|does not answer)/.test(await consoleLog()) ? consoleLog() : undefined), 600);
      log(`${host}: ${done.split('\n').filter((line) => line.includes('kolla-ts-guest: lease') || line.includes('user-data:')).join(' / ')}`);
      expect(done).toContain(`kolla-ts-guest: user-data: peer ${peer} answers`);
    }
  });

  it('attaches a cinder volume from the existing cluster to the guest on a compute: written and read back in the guest, the same bytes in RBD; a deleted guest leaves no disk behind', { timeout: 20 * 60_000 }, async () => {
    const env = { ...process.env, ...openstackEnv };
    await waitFor('cinder-volume up', async () => ((await openstack('volume', 'service', 'list')) as { Binary: string; State: string }[]).some((s) => s.Binary === 'cinder-volume' && s.State === 'up') || undefined, 300);
    const guest = guests[0]!;
    const volume = (await openstack('volume', 'create', '--size', '1', `mn-volume-${runId}`)) as { id: string };
    await waitFor('volume available', async () => ((await openstack('volume', 'show', volume.id)) as { status: string }).status === 'available' || undefined, 300);
    expect((await ceph.exec('rbd -p volumes ls')).stdout.split('\n')).toContain(`volume-${volume.id}`);
    await run('openstack', ['server', 'add', 'volume', guest.id, volume.id], { env });
    await waitFor('volume in-use', async () => ((await openstack('volume', 'show', volume.id)) as { status: string }).status === 'in-use' || undefined, 300);
    // The compute's QEMU opens it through librbd as cinder's client (the libvirt secret of the operator's keyring).
    const disks = await exec(node(guest.host), `docker exec nova_libvirt virsh domblklist ${guest.instanceName}`);
    expect(disks.stdout).toContain(`volumes/volume-${volume.id}`);
    const consoleLog = async (): Promise<string> => (await run('openstack', ['console', 'log', 'show', guest.id], { env, maxBuffer: 16 * 1024 * 1024 })).stdout;
    const written = await waitFor('the guest done with the volume', async () => VOLUME_CHECK_RESULT.exec(await consoleLog()) ?? undefined, 400);
    log(`${guest.host}: ${written[0]}`);
    const md5 = written[1];
    expect(md5, written[0]).toBeDefined();
    await run('openstack', ['server', 'remove', 'volume', guest.id, volume.id], { env });
    await waitFor('volume available again', async () => ((await openstack('volume', 'show', volume.id)) as { status: string }).status === 'available' || undefined, 300);
    const exported = await ceph.exec(`rbd export volumes/volume-${volume.id} - 2>/dev/null | head -c 4194304 | md5sum`);
    expect(exported.stdout.slice(0, 32)).toBe(md5);
    await run('openstack', ['volume', 'delete', volume.id], { env });
    await waitFor('volume gone from RBD', async () => (!(await ceph.exec('rbd -p volumes ls')).stdout.split('\n').includes(`volume-${volume.id}`) ? true : undefined), 300);
    // The guest's own disk goes with it.
    await run('openstack', ['server', 'delete', '--wait', guest.id], { env });
    expect((await ceph.exec('rbd -p vms ls')).stdout.split('\n')).not.toContain(`${guest.id}_disk`);
  });

  it('--limit of one compute touches no other host', { timeout: 10 * 60_000 }, async () => {
    for (const name of COMPUTES) await exec(node(name), 'docker stop nova_compute');
    const [controller, other] = await Promise.all([startTimes(CONTROLLER), startTimes('cmp2')]);
    const limited = await kollaTs(['deploy', ...args(), '--limit', 'cmp1']);
    expect(limited.code, limited.stderr.slice(-2000)).toBe(0);
    expect((await exec(node('cmp1'), "docker inspect -f '{{.State.Running}}' nova_compute")).stdout.trim()).toBe('true');
    expect(await startTimes(CONTROLLER)).toBe(controller);
    expect(await startTimes('cmp2')).toBe(other);
  });

  it('a compute whose sshd is down is reported unreachable, the rest completes, and a re-run converges', { timeout: 15 * 60_000 }, async () => {
    // nova_compute is stopped on both computes (the test before left cmp2's so); both need a deploy.
    await exec(node('cmp1'), 'docker stop nova_compute');
    await stopSshd(node('cmp2'));
    try {
      const partial = await kollaTs(['deploy', ...args(), '--json']);
      expect(partial.code).toBe(3);
      const hosts = (JSON.parse(partial.stdout) as { hosts: { host: string; outcome: string }[] }).hosts;
      expect(Object.fromEntries(hosts.map((h) => [h.host, h.outcome]))).toMatchObject({ cmp1: 'changed', cmp2: 'unreachable' });
      expect((await exec(node('cmp1'), "docker inspect -f '{{.State.Running}}' nova_compute")).stdout.trim()).toBe('true');
    } finally {
      await startSshd(node('cmp2'));
    }
    const rerun = await kollaTs(['deploy', ...args()]);
    expect(rerun.code, rerun.stderr.slice(-2000)).toBe(0);
    expect((await exec(node('cmp2'), "docker inspect -f '{{.State.Running}}' nova_compute")).stdout.trim()).toBe('true');
  });
});
