/**
 * What each step of a service waits for (src/plan/waits.ts), on the
 * project's own roles; the stages run against outcomes settled by hand; and
 * applyPlan on an all-in-one host in memory whose one-shot runs the test
 * releases. No real engine, no clock.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyPlan } from '../../src/deploy/apply.ts';
import type { Deployment } from '../../src/deploy/session.ts';
import type { ContainerEngine, ContainerSpec, ContainerState, ExecResult } from '../../src/engine/containers.ts';
import { InputError } from '../../src/errors.ts';
import { Recap } from '../../src/fleet/runner.ts';
import { diffState, type ObservedHost } from '../../src/plan/diff.ts';
import { loadRoles, type Role, type Step } from '../../src/plan/roles.ts';
import { awaitedBy, firstIncomplete, runStages, serviceStages, toolboxServices, type Stage } from '../../src/plan/waits.ts';
import { MemoryHost } from '../helpers/memory-host.ts';
import { PROJECT_ROLES, renderRoles, ROLE_PASSWORDS } from '../helpers/project.ts';

const roleOf = (service: string): Role => PROJECT_ROLES.find((r) => r.service === service)!;
const nova = roleOf('nova');
const toolbox = toolboxServices(PROJECT_ROLES);

const label = (step: Step): string => {
  switch (step.kind) {
    case 'database':
      return `database ${step.name}`;
    case 'start':
    case 'restart':
      return `${step.kind} ${step.containers.join(',')}`;
    case 'register':
      return 'register';
    default:
      return `${step.kind} ${step.container}`;
  }
};

/** A service's outcome that the test settles. */
function outcomes(): { outcome: (name: string) => Promise<boolean>; settle: (name: string, ok: boolean) => void } {
  const pending = new Map<string, { promise: Promise<boolean>; resolve: (ok: boolean) => void }>();
  const entry = (name: string) => {
    let found = pending.get(name);
    if (!found) {
      let resolve!: (ok: boolean) => void;
      const promise = new Promise<boolean>((r) => (resolve = r));
      found = { promise, resolve };
      pending.set(name, found);
    }
    return found;
  };
  return { outcome: (name) => entry(name).promise, settle: (name, ok) => entry(name).resolve(ok) };
}

/** Lets every promise that can settle do so (a turn of the event loop, no timer). */
const drained = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** nova's deploy with every step due, recording each part as it runs. */
function novaDeploy(outcome: (name: string) => Promise<boolean>) {
  const ran: string[] = [];
  let result: Awaited<ReturnType<typeof runStages>> | undefined;
  const stages = serviceStages(nova, nova.steps.map((step) => ({ step })), toolbox);
  void runStages(stages, outcome, async (stage: Stage<{ step: Step }>) => {
    ran.push(stage.part === 'step' ? label(stage.step.step) : stage.part);
    return true;
  }).then((r) => (result = r));
  return { ran, result: () => result };
}

describe('what a step waits for', () => {
  it('finds the toolbox and its database from the roles: the service running kolla_toolbox and what it requires', () => {
    expect(toolbox).toEqual({ toolbox: ['kolla-toolbox'], database: ['mariadb'] });
  });

  it("nova: databases wait for MariaDB and the toolbox, migrations for MariaDB, registration for keystone, containers for all it requires", () => {
    const waits = nova.steps.map((step) => [label(step), awaitedBy(nova, step, toolbox)]);
    expect(waits).toEqual([
      ['database nova_api', ['mariadb', 'kolla-toolbox']],
      ['database nova', ['mariadb', 'kolla-toolbox']],
      ['database nova_cell0', ['mariadb', 'kolla-toolbox']],
      ['bootstrap nova_api', ['mariadb']],
      ['register', ['keystone', 'kolla-toolbox']],
      ...['nova_api', 'nova_scheduler', 'nova_conductor', 'nova_novncproxy', 'nova_libvirt', 'nova_compute'].map((c) => [`start ${c}`, nova.requires]),
      // An exec without `needs` waits for everything required.
      ['exec nova_api', nova.requires],
    ]);
  });

  it('keystone: its registration waits for the toolbox, never for keystone itself', () => {
    const keystone = roleOf('keystone');
    const register = keystone.steps.find((s) => s.kind === 'register')!;
    expect(awaitedBy(keystone, register, toolbox)).toEqual(['kolla-toolbox']);
    expect(awaitedBy(keystone, keystone.steps.find((s) => s.kind === 'bootstrap')!, toolbox)).toEqual(['mariadb']);
  });

  it('every OpenStack role migrates before it registers, and its migrations need only MariaDB', () => {
    for (const service of ['keystone', 'glance', 'placement', 'nova', 'neutron', 'heat', 'cinder']) {
      const role = roleOf(service);
      const kinds = role.steps.map((s) => s.kind);
      expect(kinds.indexOf('bootstrap'), service).toBeLessThan(kinds.includes('register') ? kinds.indexOf('register') : Infinity);
      expect(awaitedBy(role, role.steps.find((s) => s.kind === 'bootstrap')!, toolbox), service).toEqual(['mariadb']);
    }
  });

  it('prepares a service when its first due step may run; with no step due, when its containers may start', () => {
    const stages = serviceStages(nova, nova.steps.map((step) => ({ step })), toolbox);
    expect(stages[0]).toEqual({ part: 'prepare', awaits: ['mariadb', 'kolla-toolbox'] });
    expect(stages.at(-1)).toEqual({ part: 'rest', awaits: nova.requires });
    expect(serviceStages(nova, [], toolbox)[0]).toEqual({ part: 'prepare', awaits: nova.requires });
    const onlyStarts = nova.steps.filter((s) => s.kind === 'start').map((step) => ({ step }));
    expect(serviceStages(nova, onlyStarts, toolbox)[0]).toEqual({ part: 'prepare', awaits: nova.requires });
  });
});

describe("a service's stages against outcomes settled by hand", () => {
  it("runs nova's databases and migrations while keystone is still running, and registers once it is done", async () => {
    const { outcome, settle } = outcomes();
    const deploy = novaDeploy(outcome);
    settle('mariadb', true);
    settle('kolla-toolbox', true);
    await drained();
    expect(deploy.ran).toEqual(['prepare', 'database nova_api', 'database nova', 'database nova_cell0', 'bootstrap nova_api']);
    expect(deploy.result()).toBeUndefined();
    settle('keystone', true);
    await drained();
    expect(deploy.ran.at(-1)).toBe('register');
  });

  it("starts nova's containers only once placement is done", async () => {
    const { outcome, settle } = outcomes();
    const deploy = novaDeploy(outcome);
    for (const name of ['mariadb', 'kolla-toolbox', 'keystone', 'rabbitmq', 'memcached']) settle(name, true);
    await drained();
    expect(deploy.ran.at(-1)).toBe('register');
    expect(deploy.ran.some((part) => part.startsWith('start'))).toBe(false);
    settle('placement', true);
    await drained();
    expect(deploy.ran.slice(6)).toEqual([
      'start nova_api',
      'start nova_scheduler',
      'start nova_conductor',
      'start nova_novncproxy',
      'start nova_libvirt',
      'start nova_compute',
      'exec nova_api',
      'rest',
    ]);
    expect(deploy.result()).toEqual({ ok: true });
  });

  it('a failed keystone stops nova before its registration, after its migrations ran', async () => {
    const { outcome, settle } = outcomes();
    const deploy = novaDeploy(outcome);
    settle('mariadb', true);
    settle('kolla-toolbox', true);
    settle('keystone', false);
    await drained();
    expect(deploy.ran).toEqual(['prepare', 'database nova_api', 'database nova', 'database nova_cell0', 'bootstrap nova_api']);
    expect(deploy.result()).toEqual({ ok: false, incomplete: 'keystone' });
  });

  it('a failed MariaDB stops nova before it touches anything', async () => {
    const { outcome, settle } = outcomes();
    const deploy = novaDeploy(outcome);
    settle('mariadb', false);
    settle('kolla-toolbox', false);
    await drained();
    expect(deploy.ran).toEqual([]);
    expect(deploy.result()).toEqual({ ok: false, incomplete: 'mariadb' });
  });

  it('a stage that stops the service ends it there, waiting for nothing more', async () => {
    const { outcome, settle } = outcomes();
    settle('a', true);
    const ran: string[] = [];
    const result = await runStages(
      [
        { name: 'first', awaits: ['a'] },
        { name: 'second', awaits: ['never settled'] },
      ],
      outcome,
      async (stage) => {
        ran.push(stage.name);
        return false;
      },
    );
    expect(result).toEqual({ ok: false });
    expect(ran).toEqual(['first']);
  });

  it('waits for every service of a part, then names the first in the order given that did not complete', async () => {
    const { outcome, settle } = outcomes();
    let named: string | undefined | null = null;
    void firstIncomplete(outcome, ['keystone', 'placement']).then((n) => (named = n));
    settle('placement', false);
    await drained();
    expect(named).toBeNull();
    settle('keystone', false);
    await drained();
    expect(named).toBe('keystone');
  });
});

describe('needs in role.yml', () => {
  /** A demo role (these lines, then its steps) beside two roles it may require. */
  const load = (requires: string, ...steps: string[]): Role[] => {
    const dir = mkdtempSync(join(tmpdir(), 'kolla-ts-needs-'));
    const demo = [
      'service: demo', // 1
      'group: control', // 2
      `requires: ${requires}`, // 3
      'containers:', // 4
      '  demo_api: {image: demo-api}', // 5
      'steps:', // 6
      ...steps, // 7...
    ];
    for (const [service, text] of [
      ['demo', demo.join('\n')],
      ['mariadb', 'service: mariadb\ngroup: control'],
      ['keystone', 'service: keystone\ngroup: control'],
    ] as const) {
      mkdirSync(join(dir, service));
      writeFileSync(join(dir, service, 'role.yml'), `${text}\n`);
    }
    return loadRoles(dir);
  };
  const refusal = (requires: string, ...steps: string[]): InputError => {
    try {
      load(requires, ...steps);
    } catch (error) {
      if (error instanceof InputError) return error;
      throw error;
    }
    throw new Error('accepted');
  };

  it('reads needs on bootstrap, one-shot and exec steps', () => {
    const roles = load(
      '[mariadb, keystone]',
      '  - bootstrap: {container: demo_api, needs: [mariadb]}',
      '  - oneshot: {container: demo_api, needs: []}',
      '  - exec: {container: demo_api, command: ["true"], needs: [keystone, mariadb]}',
    );
    expect(roles.find((r) => r.service === 'demo')!.steps).toEqual([
      { kind: 'bootstrap', container: 'demo_api', needs: ['mariadb'] },
      { kind: 'oneshot', container: 'demo_api', environment: {}, okExitCodes: [0], needs: [] },
      { kind: 'exec', container: 'demo_api', command: ['true'], needs: ['keystone', 'mariadb'] },
    ]);
  });

  it('refuses a service the role does not require, naming file, line and key', () => {
    const error = refusal('[mariadb, keystone]', '  - bootstrap:', '      container: demo_api', '      needs: [mariadb, rabbitmq]');
    expect(error.message).toMatch(/"rabbitmq" is not in this role's requires \(mariadb, keystone\)/);
    expect(error.message).toMatch(/demo\/role\.yml:9\b/);
    expect(error.message).toContain('(key steps.0.bootstrap.needs.1)');
  });

  it('refuses a required service no role declares, naming file, line and key', () => {
    const error = refusal('[mariadb, mariadbb]', '  - start: demo_api', '  - exec: {container: demo_api, command: ["true"], needs: [mariadbb]}');
    expect(error.message).toContain('unknown service "mariadbb"');
    expect(error.message).toMatch(/demo\/role\.yml:8\b/);
    expect(error.message).toContain('(key steps.1.exec.needs.0)');
  });

  it('refuses needs in an upgrade sequence, which runs services one after another', () => {
    const error = refusal('[mariadb]', 'upgrade:', '  before:', '    - oneshot: {container: demo_api, needs: [mariadb]}');
    expect(error.message).toContain('unknown key "needs"');
    expect(error.message).toContain('(key upgrade.before.0.oneshot.needs)');
  });
});

describe('stamps', () => {
  it('needs only says when a step may run: changing it does not run the step again', () => {
    const stampOf = (roles: Role[]): string =>
      renderRoles({ roles }).state.services.find((s) => s.role.service === 'nova')!.steps.find((s) => s.step.kind === 'bootstrap')!.stamp;
    const withoutNeeds = PROJECT_ROLES.map((role) =>
      role.service === 'nova' ? { ...role, steps: role.steps.map((step) => (step.kind === 'bootstrap' ? { kind: step.kind, container: step.container } : step)) } : role,
    );
    expect(stampOf(withoutNeeds)).toBe(stampOf(PROJECT_ROLES));
  });
});

/**
 * One all-in-one host in memory. Every container is healthy once started;
 * a one-shot run or an exec finishes when the test says (`hold`), else at once.
 */
class HeldEngine implements ContainerEngine {
  readonly calls: string[] = [];
  private readonly containers = new Map<string, ContainerSpec>();
  private readonly held = new Map<string, { promise: Promise<ExecResult>; release: (result: ExecResult) => void }>();

  /** Keeps the call named `call` (as it shows in `calls`) running until released. */
  hold(call: string): (result: ExecResult) => void {
    let release!: (result: ExecResult) => void;
    const promise = new Promise<ExecResult>((r) => (release = r));
    this.held.set(call, { promise, release });
    return release;
  }
  private async finish(call: string): Promise<ExecResult> {
    this.calls.push(call);
    return (await this.held.get(call)?.promise) ?? { exitCode: 0, output: '' };
  }
  async inspect(name: string): Promise<ContainerState | null> {
    const spec = this.containers.get(name);
    if (!spec) return null;
    const at = new Date().toISOString();
    return { id: name, name, image: spec.image, imageId: `id-${spec.image}`, labels: spec.labels, running: true, status: 'running', health: 'healthy', exitCode: 0, restartCount: 0, startedAt: at, createdAt: at };
  }
  async specOf(name: string) {
    return this.containers.get(name) ?? null;
  }
  async listByLabel() {
    return [];
  }
  async image(ref: string) {
    return { id: `id-${ref}`, digests: [], labels: {} };
  }
  async registryDigest() {
    return null;
  }
  async pull() {}
  async create(spec: ContainerSpec) {
    this.containers.set(spec.name, spec);
  }
  async start(name: string) {
    this.calls.push(`start ${name}`);
  }
  async stop() {}
  async restart() {}
  async remove() {}
  async rename() {}
  async runOnce(spec: ContainerSpec) {
    return this.finish(`one-shot ${spec.name}`);
  }
  async exec(name: string, command: string[], options: { stdin?: string }) {
    if (name === 'kolla_toolbox' && command[0] === 'mariadb') return this.finish(`database ${/CREATE DATABASE IF NOT EXISTS `(\w+)`/.exec(options.stdin ?? '')?.[1] ?? '?'}`);
    if (command[0] === 'kolla_register') return this.finish(`register ${JSON.parse(options.stdin!).services?.[0]?.name ?? '-'}`);
    return this.finish(`exec ${name}`);
  }
  async logsTail() {
    return '';
  }
  async removeVolume() {}
  async removeImage() {}
}

describe('applyPlan on an all-in-one host', () => {
  const { state, globals } = renderRoles();

  function deploy(engine: HeldEngine) {
    const host = new MemoryHost('ctl1');
    const empty: ObservedHost = { containers: new Map(), configFiles: new Map(), stepStamps: {}, appliedConfig: {}, imageIds: new Map(), staleImages: new Set() };
    const plan = diffState(state, new Map([['ctl1', empty]]), { runSteps: true });
    const deployment = {
      roles: PROJECT_ROLES,
      globals: { ...globals, node_config_directory: '/etc/kolla', health_timeout: 1 },
      passwords: ROLE_PASSWORDS,
      desired: state,
      pool: { get: async () => ({ engine, connection: host }) },
      policy: { forks: 10 },
      recap: new Recap(['ctl1']),
      unclaimed: new Set<string>(),
      configDir: mkdtempSync(join(tmpdir(), 'kolla-ts-apply-unit-')),
      redact: (text: string) => text,
      critical: <T>(work: () => Promise<T>) => work(),
      settle: async () => {},
    } as unknown as Deployment;
    const finished = new Map<string, string>();
    const reporter = { start: () => {}, finish: (name: string, ok: boolean, detail = '') => void finished.set(name, `${ok ? 'ok' : 'failed'}: ${detail}`) };
    return { applied: applyPlan(deployment, plan, { runSteps: true, command: 'deploy', reporter }), finished };
  }

  /** Turns of the event loop until `condition` holds (no timer: a bound on turns, not on time). */
  async function until(condition: () => boolean): Promise<void> {
    for (let turn = 0; turn < 10_000 && !condition(); turn++) await drained();
    expect(condition()).toBe(true);
  }

  it("runs nova's databases and migrations while keystone's are still running; registers nova only after keystone", async () => {
    const engine = new HeldEngine();
    const releaseKeystone = engine.hold('one-shot keystone_bootstrap');
    const run = deploy(engine);
    await until(() => engine.calls.includes('one-shot nova_api_bootstrap'));
    await drained();
    expect(engine.calls).toEqual(expect.arrayContaining(['database nova_api', 'database nova', 'database nova_cell0', 'database placement', 'one-shot placement_api_bootstrap']));
    expect(engine.calls.filter((call) => call.startsWith('register') || call.startsWith('start nova') || call === 'start keystone')).toEqual([]);
    releaseKeystone({ exitCode: 0, output: '' });
    await run.applied;
    const at = (call: string): number => engine.calls.indexOf(call);
    expect(at('register nova')).toBeGreaterThan(at('register keystone'));
    expect(at('start nova_api')).toBeGreaterThan(at('start placement_api'));
    expect(at('start nova_api')).toBeGreaterThan(at('start rabbitmq'));
    expect([...run.finished.values()].every((line) => line.startsWith('ok'))).toBe(true);
    expect(run.finished.size).toBe(state.services.length);
  });

  it('a keystone that fails stops nova before its registration, after its migrations ran, and what requires keystone', async () => {
    const engine = new HeldEngine();
    const failKeystone = engine.hold('one-shot keystone_bootstrap');
    const run = deploy(engine);
    await until(() => engine.calls.includes('one-shot nova_api_bootstrap'));
    await drained();
    failKeystone({ exitCode: 1, output: 'db_sync failed' });
    await run.applied;
    expect(run.finished.get('keystone')).toMatch(/^failed: stopped: .*exit code 1/);
    for (const service of ['nova', 'placement', 'glance', 'neutron', 'heat', 'horizon']) expect(run.finished.get(service), service).toBe('failed: not run: keystone did not complete');
    expect(engine.calls.filter((call) => call.startsWith('register') || call.startsWith('start nova'))).toEqual([]);
    for (const service of ['mariadb', 'kolla-toolbox', 'memcached', 'rabbitmq']) expect(run.finished.get(service), service).toMatch(/^ok/);
  });
});
