/**
 * kolla-ts as a fleet tool, on real hosts: docker-in-docker nodes with their
 * own sshd and engine (tests/helpers/fleet.ts) on 198.18.0.0/24, pulling from
 * a registry on that network's gateway. A small role set (memcached) keeps
 * it quick; what is shown is the fleet layer: bootstrap-servers, prechecks,
 * parallel deploy over one SSH connection per host, --limit, an unreachable
 * host, a changed host key, a kolla-ansible INI inventory, and a re-pushed tag.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureFleet, exec, startSshd, stopSshd, teardownFleet, writeInventory, type Fleet, type FleetNode } from '../helpers/fleet.ts';
import { loadRoleSet } from '../../src/deploy/session.ts';
import { PROJECT_ROOT, REGISTRY, requireEngine, runCli } from '../helpers/environment.ts';

const run = promisify(execFile);
const NODES = ['node1', 'node2', 'node3'];
const NAMESPACE = 'fleettest';
const log = (line: string): void => console.log(`  | ${line}`);

let fleet: Fleet;
let configDir: string;
let inventory: string;
const args = (): string[] => ['-i', inventory, '--configdir', configDir];
const node = (name: string): FleetNode => fleet.nodes.find((n) => n.name === name)!;

async function kollaTs(argv: string[], options: Parameters<typeof runCli>[1] = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(argv, { onLine: log, ...options });
}

/** memcached's start time on each node ('' where it is not running), asked of each node's own engine. */
async function startTimes(): Promise<Record<string, string>> {
  const entries = await Promise.all(
    NODES.map(async (name) => {
      const result = await exec(node(name), "docker inspect -f '{{.State.Running}} {{.State.StartedAt}}' memcached 2>/dev/null");
      const [running, startedAt] = result.stdout.trim().split(' ');
      return [name, running === 'true' ? startedAt! : ''] as const;
    }),
  );
  return Object.fromEntries(entries);
}

describe('a fleet of real hosts over SSH', () => {
  beforeAll(async () => {
    await requireEngine();
    // Fresh hosts, as a user's new machines: nodes an earlier run kept would already run memcached.
    if (!process.env.KOLLA_TS_FLEET_KEEP) await teardownFleet();
    fleet = await ensureFleet({ nodes: NODES, log });
    // The images come from the project's registry under a namespace of this test's own, so re-pushing one touches nothing else.
    const built = await kollaTs(['build', '^memcached$', '--registry', REGISTRY, '--push', '--threads', '2']);
    expect(built.code, built.stderr.slice(-2000)).toBe(0);
    for (const image of ['memcached']) {
      await run('docker', ['tag', `${REGISTRY}/kolla/${image}:zed`, `${REGISTRY}/${NAMESPACE}/${image}:zed`]);
      await run('docker', ['push', `${REGISTRY}/${NAMESPACE}/${image}:zed`]);
    }
    // One config dir across runs: nodes kept between runs (KOLLA_TS_FLEET_KEEP) know it as theirs.
    configDir = '/var/lib/kolla-ts-host/fleet-etc';
    mkdirSync(configDir, { recursive: true, mode: 0o700 });
    // memcached only: every other role is turned off, new ones included.
    const disabled = loadRoleSet(PROJECT_ROOT)
      .filter((r) => r.service !== 'memcached')
      .map((r) => `${r.enable}: false`);
    writeFileSync(
      join(configDir, 'globals.yml'),
      [`docker_registry: ${fleet.registry}`, 'docker_registry_insecure: true', `docker_namespace: ${NAMESPACE}`, `kolla_internal_vip_address: ${node('node1').address}`, 'network_interface: eth0', ...disabled, ''].join('\n'),
    );
    expect((await kollaTs(['genpwd', '--configdir', configDir])).code).toBe(0);
    inventory = writeInventory(fleet, join(configDir, 'inventory.yml'), { groups: { control: NODES } });
  }, 15 * 60_000);

  afterAll(async () => {
    if (!process.env.KOLLA_TS_FLEET_KEEP) await teardownFleet();
  });

  it('bootstrap-servers prepares every host, and a second run changes nothing', { timeout: 5 * 60_000 }, async () => {
    const first = await kollaTs(['bootstrap-servers', ...args(), '--json']);
    expect(first.code, first.stderr).toBe(0);
    const second = await kollaTs(['bootstrap-servers', ...args(), '--json']);
    expect(second.code, second.stderr).toBe(0);
    const report = JSON.parse(second.stdout) as { changes: { host: string; changes: string[] }[]; hosts: { host: string; outcome: string }[] };
    expect(report.changes.map((c) => c.host).sort()).toEqual(NODES);
    expect(report.changes.every((c) => c.changes.length === 0)).toBe(true);
    expect(report.hosts.every((h) => h.outcome === 'ok')).toBe(true);
    const daemon = JSON.parse((await exec(node('node2'), 'cat /etc/docker/daemon.json')).stdout) as Record<string, unknown>;
    expect(daemon['log-opts']).toMatchObject({ 'max-size': expect.any(String) });
    expect(daemon['insecure-registries']).toContain(fleet.registry);
    expect((await exec(node('node2'), 'findmnt -no PROPAGATION /')).stdout.trim()).toMatch(/^shared/);
  });

  it('prechecks name the host, the check and the port when a port is taken', { timeout: 5 * 60_000 }, async () => {
    await exec(node('node2'), 'nohup python3 -m http.server 11211 >/dev/null 2>&1 & echo $! > /run/squatter.pid');
    try {
      await expect.poll(async () => (await exec(node('node2'), 'cat /proc/net/tcp /proc/net/tcp6')).stdout, { timeout: 10_000 }).toContain(':2BCB');
      const result = await kollaTs(['prechecks', ...args()]);
      expect(result.code).not.toBe(0);
      expect(result.stdout).toMatch(/^node2\s+ok\s+\S+\s+FAIL/m);
      expect(result.stdout).toContain('node2: ports: port 11211 (memcached) already in use by another process');
      expect(result.stdout).toMatch(/^node1\s+ok\s+\S+\s+ok/m);
    } finally {
      await exec(node('node2'), 'kill "$(cat /run/squatter.pid)"');
    }
    const clean = await kollaTs(['prechecks', ...args(), '--json']);
    expect(clean.code, clean.stdout).toBe(0);
    const checks = (JSON.parse(clean.stdout) as { checks: { host: string; check: string; status: string }[] }).checks;
    expect(checks.filter((c) => c.status === 'failed')).toEqual([]);
  });

  it('deploys to every host in parallel, then finds nothing to do', { timeout: 10 * 60_000 }, async () => {
    const result = await kollaTs(['deploy', ...args(), '--json']);
    expect(result.code, result.stderr.slice(-3000)).toBe(0);
    const hosts = (JSON.parse(result.stdout) as { hosts: { host: string; outcome: string }[] }).hosts;
    expect(hosts.map((h) => [h.host, h.outcome])).toEqual(NODES.map((n) => [n, 'changed']));
    expect(Object.values(await startTimes()).every(Boolean)).toBe(true);
    // Each node's memcached listens on that node's own address.
    for (const name of NODES) expect((await exec(node(name), 'cat /proc/net/tcp')).stdout).toContain(':2BCB');
    const again = await kollaTs(['deploy', ...args()]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('Nothing to do');
  });

  it('--limit touches no other host', { timeout: 5 * 60_000 }, async () => {
    const before = await startTimes();
    const stopped = await kollaTs(['stop', ...args(), '--limit', 'node3']);
    expect(stopped.code, stopped.stderr).toBe(0);
    const afterStop = await startTimes();
    expect(afterStop).toEqual({ ...before, node3: '' });
    const plan = await kollaTs(['plan', ...args(), '--limit', 'control:!node1:!node2']);
    expect(plan.stdout).toContain('node3: memcached: start');
    expect(plan.stdout).not.toMatch(/node[12]:/);
    const redeployed = await kollaTs(['deploy', ...args(), '--limit', 'node3']);
    expect(redeployed.code, redeployed.stderr).toBe(0);
    const after = await startTimes();
    expect(after.node1).toBe(before.node1);
    expect(after.node2).toBe(before.node2);
    expect(after.node3).not.toBe('');
  });

  it('a host that does not answer is reported unreachable, the rest completes, and a re-run converges', { timeout: 10 * 60_000 }, async () => {
    await Promise.all(NODES.map((name) => exec(node(name), 'docker stop memcached')));
    await stopSshd(node('node2'));
    try {
      const result = await kollaTs(['deploy', ...args(), '--json']);
      expect(result.code).toBe(3);
      const hosts = (JSON.parse(result.stdout) as { hosts: { host: string; outcome: string; errors: string[] }[] }).hosts;
      expect(hosts.find((h) => h.host === 'node2')).toMatchObject({ outcome: 'unreachable', errors: [expect.stringContaining('cannot connect to host node2')] });
      expect(hosts.filter((h) => h.host !== 'node2').map((h) => h.outcome)).toEqual(['changed', 'changed']);
      const times = await startTimes();
      expect(times.node1).not.toBe('');
      expect(times.node3).not.toBe('');
      expect(times.node2).toBe('');
    } finally {
      await startSshd(node('node2'));
    }
    const rerun = await kollaTs(['deploy', ...args()]);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(Object.values(await startTimes()).every(Boolean)).toBe(true);
  });

  it('refuses a host whose key changed, naming it', { timeout: 5 * 60_000 }, async () => {
    const knownHosts = join(configDir, 'known_hosts_changed');
    // node3's entry now holds node1's key: what a reinstalled (or impersonated) host looks like.
    const lines = readFileSync(fleet.knownHostsFile, 'utf8').trim().split('\n');
    const keyOf = (address: string): string => lines.find((l) => l.split(/\s+/)[0]!.split(',').some((h) => h === address || h === `[${address}]:22`))!.split(/\s+/).slice(1).join(' ');
    writeFileSync(knownHosts, lines.map((l) => (l.startsWith(node('node3').address) || l.startsWith(`[${node('node3').address}]`) ? `${node('node3').address} ${keyOf(node('node1').address)}` : l)).join('\n') + '\n');
    const changed = yaml.load(readFileSync(inventory, 'utf8')) as { hosts: Record<string, Record<string, unknown>> };
    for (const host of Object.values(changed.hosts)) host.known_hosts = knownHosts;
    const file = join(configDir, 'inventory-changed-key.yml');
    writeFileSync(file, yaml.dump(changed));
    const result = await kollaTs(['status', '-i', file, '--configdir', configDir]);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(`host node3 (${node('node3').address}:22) offered a host key that ${knownHosts} does not list for it; refusing to connect`);
    expect(result.stderr).toMatch(/^node1\s+ok/m);
  });

  it('takes a kolla-ansible INI inventory with a host range, :children and host_vars, and a non-root login with become', { timeout: 5 * 60_000 }, async () => {
    const dir = join(configDir, 'ansible');
    mkdirSync(join(dir, 'host_vars'), { recursive: true });
    for (const name of NODES) writeFileSync(join(dir, 'host_vars', `${name}.yml`), `ansible_host: ${node(name).address}\napi_address: ${node(name).address}\n`);
    writeFileSync(
      join(dir, 'multinode'),
      [
        '[control]',
        'node[1:3]',
        '',
        '[compute:children]',
        'control',
        '',
        '[all:vars]',
        // kolla: a login in the docker group with passwordless sudo, as kolla-ansible's users have.
        'ansible_user=kolla',
        'ansible_become=true',
        `ansible_ssh_private_key_file=${fleet.keyFile}`,
        `known_hosts=${fleet.knownHostsFile}`,
        'network_interface=eth0',
        '',
      ].join('\n'),
    );
    const ini = ['-i', join(dir, 'multinode'), '--configdir', configDir];
    const unchanged = await kollaTs(['deploy', ...ini]);
    expect(unchanged.code, unchanged.stderr).toBe(0);
    expect(unchanged.stdout).toContain('Nothing to do');
    // A config change is written through sudo into root's 0700 directory, and restarts memcached everywhere.
    for (const name of NODES) {
      const rendered = (await exec(node(name), 'cat /etc/kolla/memcached/config.json')).stdout;
      mkdirSync(join(configDir, 'config', 'memcached', name), { recursive: true });
      writeFileSync(join(configDir, 'config', 'memcached', name, 'config.json'), rendered.replace('-m 256', '-m 128'));
    }
    const changed = await kollaTs(['deploy', ...ini]);
    expect(changed.code, changed.stderr).toBe(0);
    for (const name of NODES) {
      expect((await exec(node(name), 'stat -c %U:%a /etc/kolla/memcached/config.json')).stdout.trim()).toBe('root:600');
      expect((await exec(node(name), 'cat /etc/kolla/memcached/config.json')).stdout).toContain('-m 128');
      expect((await exec(node(name), 'ls -A /tmp')).stdout).not.toContain('.kolla-ts-');
    }
  });

  it('pulls and replaces a re-pushed tag on every host', { timeout: 10 * 60_000 }, async () => {
    const ref = `${REGISTRY}/${NAMESPACE}/memcached:zed`;
    const context = mkdtempSync(join(tmpdir(), 'kolla-ts-repush-'));
    writeFileSync(join(context, 'Dockerfile'), `FROM ${ref}\nLABEL org.kolla-ts.test-repush=${Date.now()}\n`);
    await run('docker', ['build', '-q', '-t', ref, context]);
    await run('docker', ['push', ref]);
    const plan = await kollaTs(['plan', ...args()]);
    for (const name of NODES) expect(plan.stdout).toContain(`${name}: memcached: recreate (the registry has a new ${fleet.registry}/${NAMESPACE}/memcached:zed (re-pushed))`);
    const before = await startTimes();
    const result = await kollaTs(['deploy', ...args()]);
    expect(result.code, result.stderr).toBe(0);
    const after = await startTimes();
    for (const name of NODES) expect(after[name]).not.toBe(before[name]);
    const labels = await exec(node('node2'), "docker inspect -f '{{index .Config.Labels \"org.kolla-ts.test-repush\"}}' memcached");
    expect(labels.stdout.trim()).toMatch(/^\d+$/);
    const pulled = await kollaTs(['pull', ...args(), '--json']);
    expect(pulled.code).toBe(0);
    expect((JSON.parse(pulled.stdout) as { hosts: { outcome: string }[] }).hosts.every((h) => h.outcome === 'ok')).toBe(true);
  });

  describe('upgrade, rollback and history', () => {
    const ref = (tag: string): string => `${REGISTRY}/${NAMESPACE}/memcached:${tag}`;
    let baseGlobals: string;

    /** A tag of memcached made from zed by a Dockerfile tail: a label (a harmless new version), or a changed binary. */
    async function pushTag(tag: string, tail: string): Promise<void> {
      const context = mkdtempSync(join(tmpdir(), 'kolla-ts-upgrade-'));
      writeFileSync(join(context, 'Dockerfile'), `FROM ${ref('zed')}\n${tail}\n`);
      await run('docker', ['build', '-q', '-t', ref(tag), context]);
      await run('docker', ['push', ref(tag)]);
    }

    /** The operator's way to choose a version: memcached_tag in globals.yml. */
    function selectTag(tag: string): void {
      writeFileSync(join(configDir, 'globals.yml'), `${baseGlobals}memcached_tag: ${tag}\n`);
    }

    async function inspect(name: string, container = 'memcached'): Promise<{ id: string; image: string; imageId: string; running: boolean; health: string } | null> {
      const result = await exec(node(name), `docker inspect -f '{{.Id}} {{.Config.Image}} {{.Image}} {{.State.Running}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' ${container}`);
      if (result.code !== 0) return null;
      const [id, image, imageId, running, health] = result.stdout.trim().split(' ');
      return { id: id!, image: image!, imageId: imageId!, running: running === 'true', health: health ?? '' };
    }

    async function all(container = 'memcached'): Promise<Record<string, Awaited<ReturnType<typeof inspect>>>> {
      return Object.fromEntries(await Promise.all(NODES.map(async (name) => [name, await inspect(name, container)] as const)));
    }

    interface HistoryRow {
      host: string;
      container: string;
      seq: number;
      command: string;
      outcome: string;
      image: string;
      imageId: string;
      running: boolean;
      restores?: number;
    }

    async function history(): Promise<HistoryRow[]> {
      const result = await kollaTs(['history', 'memcached', ...args(), '--json']);
      expect(result.code, result.stderr).toBe(0);
      return (JSON.parse(result.stdout) as { revisions: HistoryRow[] }).revisions;
    }

    beforeAll(async () => {
      baseGlobals = readFileSync(join(configDir, 'globals.yml'), 'utf8');
      // Every host on zed, deployed: what an operator has before an upgrade.
      selectTag('zed');
      const deployed = await kollaTs(['deploy', ...args()]);
      expect(deployed.code, deployed.stderr.slice(-2000)).toBe(0);
      await pushTag('zed-up1', 'LABEL org.kolla-ts.test-upgrade=up1');
      // Runs, but memcached never listens: its health check never passes.
      await pushTag('zed-broken', 'USER root\nRUN mv /usr/bin/memcached /usr/bin/memcached.real && printf \'#!/bin/sh\\nexec sleep 100000\\n\' > /usr/bin/memcached && chmod 0755 /usr/bin/memcached\nUSER memcached');
      // Healthy, five seconds after it starts: slow enough to interrupt an upgrade in the middle.
      await pushTag('zed-slow', 'USER root\nRUN mv /usr/bin/memcached /usr/bin/memcached.real && printf \'#!/bin/sh\\nsleep 5\\nexec /usr/bin/memcached.real "$@"\\n\' > /usr/bin/memcached && chmod 0755 /usr/bin/memcached\nUSER memcached');
    }, 10 * 60_000);

    afterAll(() => {
      if (baseGlobals) writeFileSync(join(configDir, 'globals.yml'), baseGlobals);
    });

    it('upgrades host by host to a new tag, each healthy before the next, with history showing both revisions', { timeout: 10 * 60_000 }, async () => {
      const before = await all();
      selectTag('zed-up1');
      const result = await kollaTs(['upgrade', ...args(), '--serial', '1']);
      expect(result.code, result.stderr.slice(-3000)).toBe(0);
      // One host at a time, in inventory order, each gated before the next batch starts.
      const order = NODES.flatMap((name, i) => [`memcached: batch ${i + 1}/3: ${name}`, `${name}: memcached: healthy after`]);
      const positions = order.map((line) => result.stderr.indexOf(line));
      expect(positions.every((p) => p >= 0), result.stderr).toBe(true);
      expect([...positions].sort((a, b) => a - b)).toEqual(positions);
      const after = await all();
      const kept = await all('memcached_previous');
      for (const name of NODES) {
        expect(after[name]).toMatchObject({ image: ref('zed-up1').replace(REGISTRY, fleet.registry), running: true });
        // The old container is kept, stopped, as this host's rollback point.
        expect(kept[name]).toMatchObject({ id: before[name]!.id, running: false });
      }
      const rows = await history();
      for (const name of NODES) {
        const mine = rows.filter((r) => r.host === name);
        const running = mine.filter((r) => r.running);
        expect(running).toHaveLength(1);
        expect(running[0]).toMatchObject({ command: 'upgrade', outcome: 'healthy', imageId: after[name]!.imageId });
        expect(mine.some((r) => r.outcome === 'healthy' && r.imageId === before[name]!.imageId && !r.running)).toBe(true);
      }
      // Kept on the host (0600, beside the config) and on the deploy host.
      const records = await exec(node('node2'), "stat -c '%a %n' /etc/kolla/.kolla-ts/revisions/memcached/*.json");
      expect(records.stdout.trim().split('\n').every((line) => line.startsWith('600 '))).toBe(true);
      const seq = rows.find((r) => r.host === 'node2' && r.running)!.seq;
      expect(readFileSync(join(configDir, 'revisions', 'node2', 'memcached', `${seq}.json`), 'utf8')).toContain('"command": "upgrade"');
    });

    it('puts the old container back on the first host when the new tag is not healthy, stops the rollout, and leaves the other hosts untouched', { timeout: 10 * 60_000 }, async () => {
      const before = await all();
      selectTag('zed-broken');
      const result = await kollaTs(['upgrade', ...args(), '--serial', '1', '--health-timeout', '10']);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('node1: memcached: wait for health failed');
      expect(result.stderr).toContain('and its config are back and healthy');
      expect(result.stderr).toContain("--- last lines of memcached's log on node1 ---");
      expect(result.stderr).toContain('rollout stopped: node1 failed; node2, node3 left as it was');
      const after = await all();
      // The same container as before on every host: node1's came back, the others were never touched.
      for (const name of NODES) expect(after[name]).toMatchObject({ id: before[name]!.id, running: true });
      expect((await exec(node('node1'), 'docker inspect -f "{{.State.Health.Status}}" memcached')).stdout.trim()).not.toBe('unhealthy');
      // Every host had the new image before anything changed anywhere.
      for (const name of NODES) expect((await exec(node(name), `docker image inspect ${ref('zed-broken').replace(REGISTRY, fleet.registry)}`)).code).toBe(0);
      const rows = await history();
      expect(rows.some((r) => r.host === 'node1' && r.outcome === 'rolled back' && r.image.endsWith(':zed-broken'))).toBe(true);
      expect(rows.some((r) => r.host !== 'node1' && r.image.endsWith(':zed-broken'))).toBe(false);
    });

    it('rollback returns every host to the previous revision, by image id', { timeout: 10 * 60_000 }, async () => {
      const rows = await history();
      // The revision before the running one: the last that ran zed (the re-push test made zed name a newer image).
      const zedImage = rows.filter((r) => r.host === 'node1' && r.outcome === 'healthy' && r.image.endsWith(':zed')).at(-1)!.imageId;
      selectTag('zed');
      const result = await kollaTs(['rollback', 'memcached', ...args()]);
      expect(result.code, result.stderr.slice(-3000)).toBe(0);
      const after = await all();
      for (const name of NODES) expect(after[name]).toMatchObject({ imageId: zedImage, running: true });
      const latest = await history();
      for (const name of NODES) {
        expect(latest.find((r) => r.host === name && r.running)).toMatchObject({ command: 'rollback', outcome: 'healthy', imageId: zedImage });
      }
      const plan = await kollaTs(['plan', ...args()]);
      expect(plan.stdout).toContain('Nothing to do');
    });

    it('refuses a second run while an upgrade holds the hosts; an upgrade killed mid-way leaves each host running the old or the new container, and a re-run converges', { timeout: 10 * 60_000 }, async () => {
      selectTag('zed-slow');
      let child: import('node:child_process').ChildProcess | undefined;
      let second: Promise<{ code: number; stderr: string }> | undefined;
      const first = kollaTs(['upgrade', ...args(), '--serial', '1'], {
        onStart: (c) => (child = c),
        onLine: (line) => {
          log(line);
          // node1's new container is starting (five seconds to health): the middle of the rollout.
          if (!second && line.includes('node1: memcached: replaced')) second = kollaTs(['upgrade', ...args(), '--serial', '1']);
        },
      });
      await expect.poll(() => second, { timeout: 120_000 }).toBeDefined();
      const refused = await second!;
      expect(refused.code).toBe(7);
      expect(refused.stderr).toMatch(/is being changed by another kolla-ts run: upgrade \(pid \d+/);
      child!.kill('SIGKILL');
      await first;
      const states = await all();
      for (const name of NODES) expect(states[name]?.running, name).toBe(true);
      const rerun = await kollaTs(['upgrade', ...args(), '--serial', '1']);
      expect(rerun.code, rerun.stderr.slice(-3000)).toBe(0);
      const after = await all();
      for (const name of NODES) expect(after[name]).toMatchObject({ image: ref('zed-slow').replace(REGISTRY, fleet.registry), running: true });
      const plan = await kollaTs(['plan', ...args()]);
      expect(plan.stdout).toContain('Nothing to do');
    });
  });
});
