/**
 * The pure parts of upgrade and rollback (batches, order, which revision a
 * rollback returns to), and the container swap against an in-memory engine
 * and host: what is kept, what comes back when the new one is not healthy.
 * The same runs on real hosts in tests/e2e/fleet.test.ts.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ContainerSpec } from '../../src/engine/containers.ts';
import type { Deployment } from '../../src/deploy/session.ts';
import { DeployStepError } from '../../src/errors.ts';
import { Recap } from '../../src/fleet/runner.ts';
import type { DesiredService } from '../../src/plan/desired.ts';
import { HostJournal, rollbackTarget, type Revision } from '../../src/state/revisions.ts';
import { batches, inDependencyOrder, parseSerial } from '../../src/upgrade/rolling.ts';
import { replaceContainer, type Replacement } from '../../src/upgrade/swap.ts';
import { MemoryEngine, MemoryHost } from '../helpers/memory-host.ts';

describe('--serial', () => {
  it('reads a number of hosts or a share, and refuses anything else', () => {
    expect(parseSerial('1')).toEqual({ count: 1 });
    expect(parseSerial('30%')).toEqual({ percent: 30 });
    for (const bad of ['0', '-1', '0%', '101%', 'x', '1.5', '']) expect(() => parseSerial(bad), bad).toThrow(/--serial/);
  });

  it('cuts hosts into batches in order; a share rounds up', () => {
    const hosts = ['a', 'b', 'c', 'd', 'e'];
    expect(batches(hosts, { count: 2 })).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    expect(batches(hosts, { percent: 30 })).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    expect(batches(hosts, { percent: 1 })).toEqual([['a'], ['b'], ['c'], ['d'], ['e']]);
    expect(batches(hosts, { percent: 100 })).toEqual([hosts]);
  });
});

describe('inDependencyOrder', () => {
  const service = (name: string, requires: string[] = [], uses: string[] = [], after: string[] = []): DesiredService =>
    ({ role: { service: name, requires, uses, after: after.map((s) => ({ service: s, when: [] })), file: `roles/${name}/role.yml` }, containers: [], dataContainers: [], steps: [] }) as unknown as DesiredService;

  it('puts a service after what it requires or uses, else keeps the order given', () => {
    const order = inDependencyOrder([service('nova', ['keystone', 'mariadb'], ['glance']), service('glance', ['keystone']), service('keystone', ['mariadb']), service('mariadb'), service('memcached')]);
    expect(order.map((s) => s.role.service)).toEqual(['mariadb', 'keystone', 'glance', 'nova', 'memcached']);
  });

  it('puts a service after the ones it comes after when they are there too', () => {
    const order = inDependencyOrder([service('cinder', ['mariadb'], [], ['ceph']), service('mariadb'), service('ceph')]);
    expect(order.map((s) => s.role.service)).toEqual(['mariadb', 'ceph', 'cinder']);
    expect(inDependencyOrder([service('cinder', [], [], ['ceph'])]).map((s) => s.role.service)).toEqual(['cinder']);
  });

  it('names a cycle', () => {
    expect(() => inDependencyOrder([service('a', ['b']), service('b', ['a'])])).toThrow(/cycle: a -> b -> a/);
  });
});

describe('rollbackTarget', () => {
  const revision = (seq: number, containerId: string, outcome: Revision['outcome'] = 'healthy'): Revision =>
    ({ seq, containerId, outcome, container: 'memcached' }) as Revision;

  it('goes to the last healthy revision before the running one, skipping what never became healthy', () => {
    const revisions = [revision(1, 'A'), revision(2, 'B'), revision(3, 'C', 'rolled back')];
    expect(rollbackTarget(revisions, 'B')).toMatchObject({ target: { seq: 1 }, current: { seq: 2 } });
  });

  it('after a rollback, the previous revision is the one rolled back from (the kept container)', () => {
    const revisions = [revision(1, 'A'), revision(2, 'B'), revision(3, 'A')];
    expect(rollbackTarget(revisions, 'A')).toMatchObject({ target: { seq: 2 }, current: { seq: 3 } });
  });

  it('takes a named revision only when it became healthy, and says why not', () => {
    const revisions = [revision(1, 'A'), revision(2, 'B', 'failed'), revision(3, 'C')];
    expect(rollbackTarget(revisions, 'C', 1)).toMatchObject({ target: { seq: 1 } });
    expect(rollbackTarget(revisions, 'C', 2)).toEqual({ error: expect.stringMatching(/revision 2 never became healthy/) });
    expect(rollbackTarget(revisions, 'C', 9)).toEqual({ error: expect.stringMatching(/no revision 9 \(there are 1, 2, 3\)/) });
    expect(rollbackTarget([revision(1, 'A')], 'A')).toEqual({ error: 'no healthy revision before 1' });
  });
});

/** One host's engine in memory: an image whose name says "broken" never becomes healthy. */
function setup(): { engine: MemoryEngine; host: MemoryHost; deployment: Deployment; configDir: string } {
  const engine = new MemoryEngine();
  const host = new MemoryHost('node1');
  const configDir = mkdtempSync(join(tmpdir(), 'kolla-ts-upgrade-unit-'));
  const deployment = {
    globals: { node_config_directory: '/etc/kolla', health_timeout: 1 },
    configDir,
    pool: { get: async () => ({ engine, connection: host }) },
    recap: new Recap(['node1']),
    redact: (text: string) => text,
    critical: <T>(work: () => Promise<T>) => work(),
    settle: async () => {},
  } as unknown as Deployment;
  return { engine, host, deployment, configDir };
}

const spec = (image: string): ContainerSpec => ({
  name: 'memcached',
  image,
  labels: {},
  environment: {},
  volumes: ['kolla_logs:/var/log/kolla/'],
  volumesFrom: [],
  privileged: false,
  networkMode: 'host',
  capAdd: [],
  healthcheck: { test: ['healthcheck_listen', 'memcached', '11211'], interval: 30, timeout: 30, retries: 3, startPeriod: 5 },
  restart: true,
});

const replacement = (image: string): Replacement => ({
  host: 'node1',
  service: 'memcached',
  container: 'memcached',
  spec: spec(image),
  files: [{ name: 'config.json', content: `{"image": "${image}"}`, mode: 0o600 }],
  configDir: '/etc/kolla/memcached',
  configHash: `config-${image}`,
  definitionHash: `definition-${image}`,
  healthcheck: ['healthcheck_listen', 'memcached', '11211'],
});

const options = { command: 'upgrade', healthTimeoutSeconds: 1, log: () => {} };

describe('replaceContainer', () => {
  it('keeps the old container, stopped, as the rollback point, and records both revisions on the host and the deploy host', async () => {
    const { engine, host, deployment, configDir } = setup();
    await engine.create(spec('memcached:zed'));
    await engine.start('memcached');
    host.files.set('/etc/kolla/memcached/config.json', '{"image": "memcached:zed"}');
    const oldId = engine.containers.get('memcached')!.id;

    const revision = await replaceContainer(deployment, replacement('memcached:new'), options);

    expect(revision).toMatchObject({ outcome: 'healthy', image: 'memcached:new', command: 'upgrade' });
    expect(engine.containers.get('memcached')).toMatchObject({ running: true, spec: { image: 'memcached:new' } });
    expect(engine.containers.get('memcached_previous')).toMatchObject({ id: oldId, running: false });
    expect(host.files.get('/etc/kolla/memcached/config.json')).toBe('{"image": "memcached:new"}');
    // The new container was made while the old one ran: the old one stops only after.
    expect(engine.calls.indexOf('create memcached_next memcached:new')).toBeLessThan(engine.calls.indexOf('stop memcached'));
    const journal = new HostJournal(host, '/etc/kolla', configDir);
    const revisions = await journal.list('memcached');
    expect(revisions.map((r) => [r.seq, r.command, r.outcome, r.containerId === oldId])).toEqual([
      [1, 'adopted', 'healthy', true],
      [2, 'upgrade', 'healthy', false],
    ]);
    expect((await journal.files(revisions[0]!))[0]!.content).toBe('{"image": "memcached:zed"}');
    expect(JSON.parse(readFileSync(join(configDir, 'revisions', 'node1', 'memcached', '2.json'), 'utf8'))).toMatchObject({ outcome: 'healthy' });
  });

  it('puts the old container and config back when the new one is not healthy in time, and names host, container and why', async () => {
    const { engine, host, deployment } = setup();
    await engine.create(spec('memcached:zed'));
    await engine.start('memcached');
    host.files.set('/etc/kolla/memcached/config.json', '{"image": "memcached:zed"}');
    const oldId = engine.containers.get('memcached')!.id;

    const failed = replaceContainer(deployment, replacement('memcached:broken'), options);

    await expect(failed).rejects.toThrow(DeployStepError);
    await expect(failed).rejects.toThrow(/node1: memcached: wait for health failed: still starting after 1s; the previous container \(id\d+\) and its config are back and healthy/);
    expect([...engine.containers.keys()]).toEqual(['memcached']);
    expect(engine.containers.get('memcached')).toMatchObject({ id: oldId, running: true, spec: { image: 'memcached:zed' } });
    expect(host.files.get('/etc/kolla/memcached/config.json')).toBe('{"image": "memcached:zed"}');
    const revisions = await new HostJournal(host, '/etc/kolla', deployment.configDir).list('memcached');
    expect(revisions.at(-1)).toMatchObject({ image: 'memcached:broken', outcome: 'rolled back', detail: expect.stringContaining('still starting') });
  });

  it('brings back the kept container for a rollback, and keeps the one it replaces in its place', async () => {
    const { engine, deployment } = setup();
    await engine.create(spec('memcached:zed'));
    await engine.start('memcached');
    await replaceContainer(deployment, replacement('memcached:new'), options);
    const keptId = engine.containers.get('memcached_previous')!.id;
    const newId = engine.containers.get('memcached')!.id;

    const back = await replaceContainer(deployment, { ...replacement('memcached:zed'), useKept: true, restores: 1 }, { ...options, command: 'rollback' });

    expect(back).toMatchObject({ command: 'rollback', restores: 1, outcome: 'healthy', containerId: keptId });
    expect(engine.containers.get('memcached')).toMatchObject({ id: keptId, running: true });
    expect(engine.containers.get('memcached_previous')).toMatchObject({ id: newId, running: false });
    expect(engine.calls.filter((c) => c.startsWith('create'))).toHaveLength(2);
  });
});
