/**
 * The multinode test harness itself (tests/helpers/fleet.ts): two
 * docker-in-docker nodes reached with the project's own SSH transport,
 * their engines pulling from the registry on the test network's gateway
 * and running privileged host-pid, host-network containers, host keys
 * verified, and a teardown that leaves nothing behind.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerodeImageEngine, followStream } from '../../src/engine/docker.ts';
import { loadInventory } from '../../src/inventory/inventory.ts';
import { SshHost } from '../../src/transport/ssh.ts';
import { REGISTRY, requireEngine } from '../helpers/environment.ts';
import { ensureFleet, ensureNodeImage, exec, FLEET_STATE_DIR, startSshd, stopSshd, teardownFleet, writeIniInventory, writeInventory, type Fleet, type FleetNode } from '../helpers/fleet.ts';

/**
 * The Debian root every image starts from (the harness makes sure it is
 * here), pushed under the name tests/integration/build.test.ts gives it:
 * this file may run before anything else has filled the registry.
 */
const IMAGE = 'library/debian:bookworm';
const dir = mkdtempSync(join(tmpdir(), 'kolla-ts-fleet-test-'));
let fleet: Fleet;

const spec = (node: FleetNode, knownHosts = fleet.knownHostsFile) => ({
  name: node.name,
  connection: 'ssh' as const,
  address: node.address,
  port: node.sshPort,
  user: 'root',
  keyFile: fleet.keyFile,
  knownHosts,
});

async function withHost<T>(node: FleetNode, fn: (host: SshHost) => Promise<T>): Promise<T> {
  const host = await SshHost.connect(spec(node));
  try {
    return await fn(host);
  } finally {
    await host.close();
  }
}

describe('multinode fleet harness', () => {
  beforeAll(async () => {
    await requireEngine();
    let started = Date.now();
    await ensureNodeImage();
    const image = Date.now() - started;
    const [repo, tag] = IMAGE.split(':') as [string, string];
    await new Docker().getImage('kolla-ts/debian-rootfs:bookworm').tag({ repo: `${REGISTRY}/${repo}`, tag });
    await new DockerodeImageEngine().push(`${REGISTRY}/${IMAGE}`, () => {});
    started = Date.now();
    fleet = await ensureFleet({ nodes: ['node1', 'node2'] });
    console.info(`fleet harness: node image ready in ${image} ms, 2 nodes in ${Date.now() - started} ms`);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('gives each node its address on the test network and its own host key', () => {
    // Addresses from .10 up, in the order nodes were first asked for (another test file may have asked first).
    expect(fleet.nodes.map((n) => n.name)).toEqual(['node1', 'node2']);
    for (const node of fleet.nodes) {
      expect(node.address).toMatch(/^198\.18\.0\.\d+$/);
      expect(Number(node.address.split('.')[3])).toBeGreaterThanOrEqual(10);
    }
    expect(new Set(fleet.nodes.map((n) => n.address)).size).toBe(2);
    expect(fleet.registry).toBe('198.18.0.1:4000');
    const keys = readFileSync(fleet.knownHostsFile, 'utf8').trim().split('\n');
    for (const node of fleet.nodes) expect(keys.some((line) => line.startsWith(`${node.address} ssh-ed25519 `))).toBe(true);
    expect(new Set(keys.map((line) => line.split(' ')[2])).size).toBe(keys.length);
  });

  it('is found again, not recreated, by a second ensureFleet', async () => {
    const again = await ensureFleet({ nodes: ['node2', 'node1'] });
    expect(again.nodes.map((n) => n.container).sort()).toEqual(fleet.nodes.map((n) => n.container).sort());
  });

  it('reaches each node engine through the SSH transport, pulls from the gateway registry and runs a privileged host-pid, host-net container', { timeout: 180_000 }, async () => {
    await Promise.all(
      fleet.nodes.map((node) =>
        withHost(node, async (host) => {
          await host.docker.ping();
          const info = await host.docker.info();
          expect(info.Name).toBe(node.name);
          expect(info.Driver).toBe('overlay2');

          const ref = `${fleet.registry}/${IMAGE}`;
          await followStream(host.docker, await host.docker.pull(ref), () => {});
          // pid 1 of the host pid namespace is the node's init; the host network has the node's address; mount needs CAP_SYS_ADMIN.
          const check = `grep -q tini /proc/1/cmdline && grep -qF ' ${node.address}' /proc/net/fib_trie && mount -t tmpfs none /mnt`;
          const container = await host.docker.createContainer({
            Image: ref,
            Cmd: ['sh', '-c', check],
            HostConfig: { Privileged: true, PidMode: 'host', NetworkMode: 'host' },
          });
          try {
            await container.start();
            const { StatusCode } = await container.wait();
            expect(StatusCode).toBe(0);
          } finally {
            await container.remove({ force: true });
          }
        }),
      ),
    );
  });

  it('refuses a node whose host key is not the one in known_hosts', async () => {
    const node = fleet.nodes[0]!;
    const other = join(dir, 'other_key');
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    const wrong = join(dir, 'known_hosts_wrong');
    writeFileSync(wrong, `${node.address} ${readFileSync(`${other}.pub`, 'utf8')}`);
    await expect(SshHost.connect(spec(node, wrong))).rejects.toThrow();
  });

  it('makes a node unreachable and reachable again, ending its open sessions', async () => {
    const node = fleet.nodes[1]!;
    const open = await SshHost.connect(spec(node));
    try {
      await stopSshd(node);
      await expect(SshHost.connect(spec(node))).rejects.toThrow(/ECONNREFUSED/);
      expect((await exec(node, 'ps -eo comm= | grep -c sshd || true')).stdout.trim()).toBe('0');
      await startSshd(node);
      await withHost(node, (again) => again.docker.ping());
    } finally {
      await open.close();
    }
  });

  it('writes inventories the project reads, in YAML and INI', () => {
    const layout = { groups: { control: ['node1'], compute: ['node1', 'node2'] }, user: 'kolla' as const, hostVars: { node2: { network_interface: 'eth0' } } };
    for (const file of [writeInventory(fleet, join(dir, 'multinode.yml'), layout), writeIniInventory(fleet, join(dir, 'multinode.ini'), layout)]) {
      const inventory = loadInventory(file);
      expect(inventory.groups.get('compute')).toEqual(['node1', 'node2']);
      const node2 = inventory.hosts.get('node2');
      expect(node2).toMatchObject({ connection: 'ssh', address: fleet.nodes[1]!.address, port: 22, user: 'kolla', keyFile: fleet.keyFile, knownHosts: fleet.knownHostsFile, become: true });
      expect(node2?.vars.network_interface).toBe('eth0');
    }
  });

  it('runs commands in a node as root', async () => {
    const result = await exec(fleet.nodes[0]!, 'hostname; id -u');
    expect(result).toEqual({ code: 0, stdout: 'node1\n0\n', stderr: '' });
  });

  // Last: other test files build their own fleet again with ensureFleet.
  it('tears down every node, volume and network by id and stops the gateway registry', async () => {
    const report = await teardownFleet();
    // Nodes another test file asked for go too.
    expect(report.containers).toEqual(expect.arrayContaining(fleet.nodes.map((n) => n.container)));
    expect(report.volumes).toEqual(expect.arrayContaining(['kolla-ts-fleet-node1-docker', 'kolla-ts-fleet-node2-docker']));
    expect(report.networks.length).toBe(1);
    expect(report.registryPid).toBeGreaterThan(0);
    const docker = new Docker();
    const label = { label: ['org.kolla-ts.test-fleet'] };
    expect(await docker.listContainers({ all: true, filters: label })).toEqual([]);
    expect((await docker.listVolumes({ filters: label })).Volumes ?? []).toEqual([]);
    expect(await docker.listNetworks({ filters: label })).toEqual([]);
    // Gone, or a zombie until whoever adopted it reaps it (an empty cmdline).
    const cmdline = join('/proc', String(report.registryPid), 'cmdline');
    expect(existsSync(cmdline) ? readFileSync(cmdline, 'utf8') : '').toBe('');
    expect(() => readFileSync(join(FLEET_STATE_DIR, 'registry.pid'))).toThrow();
  });
});
