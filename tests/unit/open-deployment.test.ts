/**
 * openDeployment's first visit to each host (facts, engine, owner check,
 * lock) over in-memory SSH hosts: one visit per host, in one stretch, and
 * what stops the run or only puts a host down.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type Docker from 'dockerode';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { openDeployment } from '../../src/deploy/session.ts';
import { InputError } from '../../src/errors.ts';
import type { HostSpec } from '../../src/inventory/inventory.ts';
import type { CommandResult, HostConnection } from '../../src/transport/host.ts';

// Every SSH host of these tests is a FakeHost: the mock hands out the one connect() the test sets.
const ssh = vi.hoisted(() => ({ connect: undefined as unknown as (spec: HostSpec) => Promise<HostConnection> }));
vi.mock('../../src/transport/ssh.ts', () => ({ SshHost: { connect: (spec: HostSpec) => ssh.connect(spec) } }));

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'deploy');
const CONFIG_ROOT = '/etc/kolla';
const OWNER = `${CONFIG_ROOT}/.kolla-ts/owner.json`;
const LOCK = `${CONFIG_ROOT}/.kolla-ts/lock.json`;

/** A host in memory that writes each call it gets to a shared trace ("a read owner.json"); every call takes a moment, as a round trip would. */
class FakeHost implements HostConnection {
  readonly engineAddress = 'fake';
  readonly lost = false;
  readonly files = new Map<string, string>();
  readonly docker: Docker;
  engineAnswers = true;

  constructor(
    readonly name: string,
    private readonly trace: string[],
    private readonly address: string,
  ) {
    this.docker = {
      ping: async () => {
        await this.call('ping');
        if (!this.engineAnswers) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
        return 'OK';
      },
    } as unknown as Docker;
  }

  private async call(what: string): Promise<void> {
    this.trace.push(`${this.name} ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }

  async readFile(path: string) {
    await this.call(`read ${basename(path)}`);
    return this.files.has(path) ? Buffer.from(this.files.get(path)!) : null;
  }
  async writeFileAtomic(path: string, content: string | Buffer) {
    await this.call(`write ${basename(path)}`);
    this.files.set(path, content.toString());
  }
  async createExclusive(path: string, content: string) {
    await this.call(`create ${basename(path)}`);
    if (this.files.has(path)) return false;
    this.files.set(path, content);
    return true;
  }
  async ensureDir(path: string) {
    await this.call(`mkdir ${basename(path)}`);
  }
  async listDir() {
    return [];
  }
  async remove(path: string) {
    await this.call(`remove ${basename(path)}`);
    this.files.delete(path);
  }
  async exec(): Promise<CommandResult> {
    return { code: 0, stdout: '', stderr: '' };
  }
  async interfaceAddress(name: string) {
    await this.call(`address of ${name}`);
    return this.address;
  }
  async close() {
    this.trace.push(`${this.name} close`);
  }
}

/** A config directory for the fixture roles and three SSH hosts a, b, c (no api_address: their facts are asked). */
function fleet(): { configDir: string; inventoryFile: string; hosts: Map<string, FakeHost>; trace: string[] } {
  const configDir = mkdtempSync(join(tmpdir(), 'kolla-ts-open-'));
  writeFileSync(join(configDir, 'globals.yml'), 'kolla_internal_vip_address: 198.51.100.10\ndocker_registry: registry.example:4000\n');
  writeFileSync(join(configDir, 'passwords.yml'), 'database_password: db-secret-1\nweb_database_password: web-secret-2\nweb_keystone_password: ks-secret-3\nrabbitmq_password: rabbit-secret-4\n');
  const inventoryFile = join(configDir, 'inventory.yml');
  const host = (n: number): string => `{connection: ssh, address: 198.51.100.${n}, user: root}`;
  writeFileSync(inventoryFile, `hosts:\n  a: ${host(1)}\n  b: ${host(2)}\n  c: ${host(3)}\ngroups:\n  control: [a, b, c]\n`);
  const trace: string[] = [];
  const hosts = new Map(['a', 'b', 'c'].map((name, i) => [name, new FakeHost(name, trace, `198.51.100.${i + 1}`)]));
  ssh.connect = async (spec) => {
    trace.push(`${spec.name} connect`);
    return hosts.get(spec.name)!;
  };
  return { configDir, inventoryFile, hosts, trace };
}

const open = (configDir: string, inventoryFile: string, forks = 1) =>
  openDeployment({ projectRoot: FIXTURES, inventoryFile, configDir }, { forks, lockFor: 'deploy' });

/** The hosts in the order the trace is about them, a run of calls to one host counted once. */
const stretches = (trace: readonly string[]): string[] => trace.map((line) => line.split(' ')[0]!).filter((host, i, all) => host !== all[i - 1]);

describe('openDeployment: the first visit to each host', () => {
  beforeEach(() => {
    ssh.connect = async () => {
      throw new Error('no fake fleet set up');
    };
  });

  it('asks facts, checks the engine and the owner, and locks, all in one visit per host', async () => {
    const { configDir, inventoryFile, hosts, trace } = fleet();
    hosts.get('c')!.files.set(OWNER, JSON.stringify({ configDir }));
    const deployment = await open(configDir, inventoryFile);
    // One host at a time (--forks 1): each host's calls come in one stretch, the fleet walked once.
    expect(stretches(trace)).toEqual(['a', 'b', 'c']);
    for (const [name, host] of hosts) {
      const calls = trace.filter((line) => line.startsWith(`${name} `)).map((line) => line.slice(name.length + 1));
      expect(calls.slice(0, 1)).toEqual(['connect']);
      expect(calls.slice(1).sort()).toEqual(['address of eth0', 'create lock.json', 'mkdir .kolla-ts', 'ping', 'read owner.json'].sort());
      // The lock is taken once the owner is known to be us (or nobody).
      expect(calls.indexOf('read owner.json')).toBeLessThan(calls.indexOf('create lock.json'));
      expect(JSON.parse(host.files.get(LOCK)!)).toMatchObject({ command: 'deploy', pid: process.pid });
    }
    expect(Object.fromEntries(deployment.pool.opened)).toEqual({ a: 1, b: 1, c: 1 });
    expect([...deployment.unclaimed].sort()).toEqual(['a', 'b']);
    const cache = JSON.parse(readFileSync(join(configDir, 'facts.json'), 'utf8')) as Record<string, { apiAddress: string }>;
    expect(Object.fromEntries(Object.entries(cache).map(([name, facts]) => [name, facts.apiAddress]))).toEqual({ a: '198.51.100.1', b: '198.51.100.2', c: '198.51.100.3' });
    await deployment.close();
    for (const host of hosts.values()) expect(host.files.has(LOCK)).toBe(false);
  });

  it('stops everything when a host belongs to another config directory, releasing every lock it took', async () => {
    const { configDir, inventoryFile, hosts, trace } = fleet();
    hosts.get('b')!.files.set(OWNER, JSON.stringify({ configDir: '/elsewhere' }));
    const opening = open(configDir, inventoryFile, 10);
    await expect(opening).rejects.toThrow(InputError);
    await expect(opening).rejects.toThrow(/host b: \/etc\/kolla is managed from config directory \/elsewhere/);
    // b was never locked; a and c were, and are released; every connection is closed.
    expect(trace).not.toContain('b create lock.json');
    for (const host of hosts.values()) {
      expect(host.files.has(LOCK)).toBe(false);
      expect(trace).toContain(`${host.name} close`);
    }
  });

  it('puts a host whose engine does not answer down, whoever owns it, and keeps its facts', async () => {
    const { configDir, inventoryFile, hosts } = fleet();
    hosts.get('c')!.engineAnswers = false;
    hosts.get('c')!.files.set(OWNER, JSON.stringify({ configDir: '/elsewhere' }));
    const deployment = await open(configDir, inventoryFile, 10);
    try {
      expect(deployment.recap.rows().map((row) => [row.host, row.outcome])).toEqual([
        ['a', 'ok'],
        ['b', 'ok'],
        ['c', 'unreachable'],
      ]);
      expect(deployment.recap.rows()[2]!.errors[0]).toMatch(/c: the Docker engine at fake does not answer/);
      expect(deployment.desired.hosts).not.toContain('c');
      expect(JSON.parse(readFileSync(join(configDir, 'facts.json'), 'utf8'))).toHaveProperty('c.apiAddress', '198.51.100.3');
    } finally {
      await deployment.close();
    }
  });
});
