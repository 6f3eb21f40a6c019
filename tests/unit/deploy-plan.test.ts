import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadGlobals } from '../../src/config/globals.ts';
import { generatePasswords, loadPasswords } from '../../src/config/passwords.ts';
import { ConfigRenderer } from '../../src/config/templates.ts';
import type { ContainerState } from '../../src/engine/containers.ts';
import { InputError } from '../../src/errors.ts';
import { loadInventory } from '../../src/inventory/inventory.ts';
import { computeDesiredState, hashOf, LABEL, type DesiredContainer, type DesiredState } from '../../src/plan/desired.ts';
import { diffState, isEmptyPlan, stepId, type ObservedHost } from '../../src/plan/diff.ts';
import { loadRoles } from '../../src/plan/roles.ts';
import { limitToHosts, withoutDownHosts } from '../../src/plan/scope.ts';
import { iniValue, myCnfValue, shellQuote, sqlString, UnsafeValueError } from '../../src/util/escape.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'deploy');
const roles = loadRoles(join(FIXTURES, 'roles'));
const schemaInput = {
  services: roles.map((r) => ({ name: r.service, enabledByDefault: true })),
  containers: roles.flatMap((r) => r.containers.map((c) => ({ name: c.name, service: r.service }))),
};

function tempFile(name: string, text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'kolla-ts-unit-')), name);
  writeFileSync(file, text);
  return file;
}

const INVENTORY = 'hosts:\n  node1: {connection: local}\n  node2: {connection: local}\ngroups:\n  control: [node1, node2]\n  compute: [node2]\n';
const PASSWORDS = { database_password: 'db-secret-1', web_database_password: 'web-secret-2', web_keystone_password: 'ks-secret-3', rabbitmq_password: 'rabbit-secret-4' };

function desired(globalsText = '', customDir?: string, passwords: Record<string, string> = PASSWORDS): DesiredState {
  const configDir = mkdtempSync(join(tmpdir(), 'kolla-ts-etc-'));
  const globalsFile = join(configDir, 'globals.yml');
  writeFileSync(globalsFile, `kolla_internal_vip_address: 198.51.100.10\ndocker_registry: registry.example:4000\n${globalsText}`);
  const { values } = loadGlobals(globalsFile, configDir, schemaInput);
  const inventory = loadInventory(tempFile('inventory.yml', INVENTORY));
  return computeDesiredState({
    roles,
    globals: values,
    passwords,
    inventory,
    facts: new Map([
      ['node1', { apiAddress: '198.51.100.1' }],
      ['node2', { apiAddress: '198.51.100.2' }],
    ]),
    renderer: new ConfigRenderer(join(FIXTURES, 'config-templates')),
    customDir: customDir ?? join(configDir, 'config'),
  });
}

function container(state: DesiredState, name: string, host = 'node1'): DesiredContainer {
  return state.services.flatMap((s) => [...s.containers, ...s.dataContainers]).find((c) => c.name === name && c.host === host)!;
}

/** What a host looks like right after a deploy of `state`. */
function deployed(state: DesiredState): Map<string, ObservedHost> {
  const hosts = new Map<string, ObservedHost>();
  for (const host of state.hosts) hosts.set(host, { containers: new Map(), configFiles: new Map(), stepStamps: {}, appliedConfig: {}, imageIds: new Map(), staleImages: new Set() });
  for (const service of state.services) {
    for (const c of [...service.containers, ...service.dataContainers]) {
      const running: ContainerState = {
        id: c.name,
        name: c.name,
        image: c.spec.image,
        imageId: `id-of-${c.spec.image}`,
        labels: c.spec.labels,
        running: c.kind === 'service',
        status: c.kind === 'service' ? 'running' : 'created',
        exitCode: 0,
        restartCount: 0,
        startedAt: '',
        createdAt: '',
      };
      hosts.get(c.host)!.containers.set(c.name, running);
      hosts.get(c.host)!.imageIds.set(c.spec.image, running.imageId);
      if (c.kind === 'service') hosts.get(c.host)!.configFiles.set(c.name, new Map(c.configFiles.map((f) => [f.name, f.content])));
    }
    for (const step of service.steps) {
      const imageId = step.imageRef ? hosts.get(step.host)!.imageIds.get(step.imageRef) ?? null : null;
      hosts.get(step.host)!.stepStamps[stepId(step)] = step.imageRef ? hashOf([step.stamp, imageId]) : step.stamp;
    }
  }
  return hosts;
}

describe('globals.yml', () => {
  it('names the line of an unknown key and the key it was probably meant to be', () => {
    const file = tempFile('globals.yml', 'kolla_internal_vip_address: 198.51.100.10\nnova_compute_virt_tpye: qemu\n');
    expect(() => loadGlobals(file, '/etc/kolla', schemaInput)).toThrow(`${file}:2 (key nova_compute_virt_tpye): unknown key "nova_compute_virt_tpye" (did you mean "nova_compute_virt_type"?)`);
  });

  it('rejects a value of the wrong kind or outside its choices', () => {
    const bad = tempFile('globals.yml', 'enable_web: maybe\n');
    expect(() => loadGlobals(bad, '/etc/kolla', schemaInput)).toThrow(/globals.yml:1 \(key enable_web\): expected true or false/);
    const strategy = tempFile('globals.yml', '\nconfig_strategy: COPY_SOMETIMES\n');
    expect(() => loadGlobals(strategy, '/etc/kolla', schemaInput)).toThrow(/:2 \(key config_strategy\): must be one of COPY_ALWAYS, COPY_ONCE/);
  });

  it('derives tags: container tag from service tag from openstack_tag', () => {
    const file = tempFile('globals.yml', 'openstack_tag: zed-1\nweb_tag: zed-2\n');
    const { values } = loadGlobals(file, '/etc/kolla', schemaInput);
    expect(values.db_tag).toBe('zed-1');
    expect(values.web_api_tag).toBe('zed-2');
    expect(values.api_interface).toBe('eth0');
  });
});

describe('inventory', () => {
  it('names an undefined host in a group with its line', () => {
    const file = tempFile('inventory.yml', 'hosts:\n  node1: {connection: local}\ngroups:\n  control: [node1, node9]\n');
    expect(() => loadInventory(file)).toThrow(`${file}:4 (key groups.control.1): host "node9" is not defined under "hosts"`);
  });

  it('rejects moving a service to a group that does not exist', () => {
    const file = tempFile('inventory.yml', `${INVENTORY}services:\n  web: frontend\n`);
    expect(() => loadInventory(file)).toThrow(/:8 \(key services.web\): group "frontend" does not exist/);
  });
});

describe('passwords', () => {
  it('genpwd fills what is missing, keeps what is set, and writes mode 0600', () => {
    const file = tempFile('passwords.yml', 'database_password: kept-value\nweb_database_password:\n');
    const { added } = generatePasswords(file, ['database_password', 'web_database_password', 'web_keystone_password']);
    expect(added).toEqual(['web_database_password', 'web_keystone_password']);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const passwords = loadPasswords(file, ['database_password', 'web_keystone_password']);
    expect(passwords.database_password).toBe('kept-value');
    expect(passwords.web_keystone_password).toMatch(/^[0-9a-f]{40}$/);
  });

  it('names a missing password without printing any value', () => {
    const file = tempFile('passwords.yml', 'database_password: s3cret-value\n');
    let message = '';
    try {
      loadPasswords(file, ['database_password', 'web_keystone_password']);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('web_keystone_password');
    expect(message).not.toContain('s3cret-value');
  });
});

describe('desired state', () => {
  it('places containers by group, names images with registry and per-container tag', () => {
    const state = desired('web_api_tag: zed-9\n');
    expect(state.hosts).toEqual(['node1', 'node2']);
    expect(container(state, 'web_api', 'node2').definition.image).toBe('registry.example:4000/kolla/web-api:zed-9');
    expect(container(state, 'db').definition.image).toBe('registry.example:4000/kolla/mariadb:zed');
    expect(container(state, 'web_api').definition.healthcheck).toEqual(['healthcheck_curl', 'http://198.51.100.1:8080']);
    expect(container(state, 'web_api', 'node2').definition.healthcheck).toEqual(['healthcheck_curl', 'http://198.51.100.2:8080']);
  });

  it('keeps secrets out of environment, labels and the definition; config files are 0600', () => {
    const web = container(desired(), 'web_api');
    const visible = JSON.stringify([web.spec.environment, web.spec.labels, web.definition, web.spec.volumes]);
    for (const secret of Object.values(PASSWORDS)) expect(visible).not.toContain(secret);
    expect(web.configFiles.find((f) => f.name === 'web.conf')!.content).toContain('web-secret-2');
    expect(web.configFiles.every((f) => f.mode === 0o600)).toBe(true);
  });

  it('puts register passwords only into the step stdin', () => {
    const step = desired().services.find((s) => s.role.service === 'web')!.steps.find((s) => s.step.kind === 'register')!;
    expect(JSON.parse(step.stdin!)).toMatchObject({ users: [{ name: 'web', password: 'ks-secret-3' }], endpoints: [{ url: 'http://198.51.100.10:8080' }] });
    expect(step.description).not.toContain('ks-secret-3');
  });

  it('merges INI overrides in precedence order and replaces non-INI files whole', () => {
    const custom = mkdtempSync(join(tmpdir(), 'kolla-ts-custom-'));
    mkdirSync(join(custom, 'web', 'web_api'), { recursive: true });
    mkdirSync(join(custom, 'web', 'node2'), { recursive: true });
    writeFileSync(join(custom, 'global.conf'), '[DEFAULT]\ndebug = True\nlevel = global\n');
    writeFileSync(join(custom, 'web.conf'), '[DEFAULT]\nlevel = project\n');
    writeFileSync(join(custom, 'web', 'web.conf'), '[DEFAULT]\nlevel = file\n[extra]\nkey = 1\n');
    writeFileSync(join(custom, 'web', 'web_api', 'web.conf'), '[DEFAULT]\nlevel = container\n');
    writeFileSync(join(custom, 'web', 'node2', 'web.conf'), '[DEFAULT]\nlevel = host\n');
    writeFileSync(join(custom, 'web', 'policy.yaml'), '"default": "role:member"\n');
    const state = desired('', custom);
    const node1 = container(state, 'web_api').configFiles.find((f) => f.name === 'web.conf')!.content;
    const node2 = container(state, 'web_api', 'node2').configFiles.find((f) => f.name === 'web.conf')!.content;
    expect(node1).toContain('debug = True');
    expect(node1).toContain('level = container');
    expect(node1).toContain('[extra]\nkey = 1');
    expect(node1).toContain('connection = mysql+pymysql://web:web-secret-2@198.51.100.10:3306/web');
    expect(node2).toContain('level = host');
    expect(container(state, 'web_api').configFiles.find((f) => f.name === 'policy.yaml')!.content).toBe('"default": "role:member"\n');
  });

  it('names the template and line of an undefined variable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kolla-ts-tpl-'));
    mkdirSync(join(dir, 'web'));
    writeFileSync(join(dir, 'web', 'web.conf.hbs'), '[DEFAULT]\n\nvalue = {{no_such_value}}\n');
    writeFileSync(join(dir, 'web', 'policy.yaml.hbs'), '');
    const configDir = mkdtempSync(join(tmpdir(), 'kolla-ts-etc-'));
    writeFileSync(join(configDir, 'globals.yml'), 'kolla_internal_vip_address: 198.51.100.10\n');
    const run = () =>
      computeDesiredState({
        roles,
        globals: loadGlobals(join(configDir, 'globals.yml'), configDir, schemaInput).values,
        passwords: PASSWORDS,
        inventory: loadInventory(tempFile('inventory.yml', INVENTORY)),
        facts: new Map([
          ['node1', { apiAddress: '198.51.100.1' }],
          ['node2', { apiAddress: '198.51.100.2' }],
        ]),
        renderer: new ConfigRenderer(dir),
        customDir: join(configDir, 'config'),
      });
    expect(run).toThrow(`${join(dir, 'web', 'web.conf.hbs')}:3 (key no_such_value): variable "no_such_value" is not defined`);
  });

  it('refuses a service enabled without what it needs', () => {
    expect(() => desired('enable_db: false\n')).toThrow(InputError);
    expect(() => desired('enable_db: false\n')).toThrow(/web is enabled but needs db, which is not enabled \(set enable_db: true\)/);
  });
});

describe('plan', () => {
  it('creates everything on empty hosts and runs every step', () => {
    const state = desired();
    const empty = new Map(state.hosts.map((h) => [h, { containers: new Map(), configFiles: new Map(), stepStamps: {}, appliedConfig: {}, imageIds: new Map(), staleImages: new Set() } as ObservedHost]));
    const plan = diffState(state, empty, { runSteps: true });
    const actions = plan.services.flatMap((s) => s.containers.map((c) => `${c.host}/${c.container}:${c.action}`));
    expect(actions).toContain('node1/db:create');
    expect(actions).toContain('node2/web_api:create');
    expect(plan.services.find((s) => s.service === 'web')!.steps.every((s) => s.run)).toBe(true);
    expect(plan.services.find((s) => s.service === 'web')!.files.map((f) => f.path)).toContain('/etc/kolla/web_api/web.conf');
  });

  it('is empty when nothing changed', () => {
    const state = desired();
    expect(isEmptyPlan(diffState(state, deployed(state), { runSteps: true }))).toBe(true);
  });

  it('restarts under COPY_ALWAYS and recreates under COPY_ONCE when only config changed', () => {
    const before = desired('config_strategy: COPY_ONCE\n');
    const observed = deployed(before);
    const after = desired('config_strategy: COPY_ONCE\n', (() => {
      const custom = mkdtempSync(join(tmpdir(), 'kolla-ts-custom-'));
      writeFileSync(join(custom, 'web.conf'), '[DEFAULT]\ndebug = True\n');
      return custom;
    })());
    const plan = diffState(after, observed, { runSteps: true });
    const web = plan.services.find((s) => s.service === 'web')!;
    expect(web.containers.filter((c) => c.container === 'web_api').map((c) => [c.action, c.reasons])).toEqual([
      ['recreate', ['config changed under COPY_ONCE']],
      ['recreate', ['config changed under COPY_ONCE']],
    ]);
    expect(plan.services.find((s) => s.service === 'db')!.containers.every((c) => c.action === 'none')).toBe(true);

    const always = desired();
    const alwaysAfter = desired('', (() => {
      const custom = mkdtempSync(join(tmpdir(), 'kolla-ts-custom-'));
      mkdirSync(join(custom, 'web', 'node2'), { recursive: true });
      writeFileSync(join(custom, 'web', 'node2', 'web.conf'), '[DEFAULT]\ndebug = True\n');
      return custom;
    })());
    const onlyNode2 = diffState(alwaysAfter, deployed(always), { runSteps: true }).services.find((s) => s.service === 'web')!;
    expect(onlyNode2.containers.map((c) => `${c.host}:${c.action}`)).toEqual(['node1:none', 'node2:restart']);
    expect(onlyNode2.files.map((f) => `${f.host}:${f.path}`)).toEqual(['node2:/etc/kolla/web_api/web.conf']);
  });

  it('counts the config a container was restarted with, for that container only', () => {
    const before = desired();
    const custom = mkdtempSync(join(tmpdir(), 'kolla-ts-custom-'));
    writeFileSync(join(custom, 'web.conf'), '[DEFAULT]\ndebug = True\n');
    const after = desired('', custom);
    const observed = deployed(before);
    const node1 = observed.get('node1')!;
    node1.configFiles.set('web_api', new Map(container(after, 'web_api').configFiles.map((f) => [f.name, f.content])));
    node1.appliedConfig.web_api = { id: node1.containers.get('web_api')!.id, configHash: container(after, 'web_api').configHash };
    const web = () => diffState(after, observed, { runSteps: true }).services.find((s) => s.service === 'web')!.containers;
    expect(web().map((c) => `${c.host}:${c.action}`)).toEqual(['node1:none', 'node2:restart']);
    node1.appliedConfig.web_api = { id: 'an older container', configHash: container(after, 'web_api').configHash };
    expect(web().map((c) => `${c.host}:${c.action}`)).toEqual(['node1:restart', 'node2:restart']);
  });

  it('recreates on a changed definition and says which field changed', () => {
    const before = desired();
    const plan = diffState(desired('web_tag: zed-2\n'), deployed(before), { runSteps: true });
    const web = plan.services.find((s) => s.service === 'web')!.containers[0]!;
    expect(web).toMatchObject({ action: 'recreate', reasons: ['image changed'] });
  });

  it('never replaces a data container, and starts a stopped one', () => {
    const before = desired();
    const observed = deployed(before);
    const keep = observed.get('node1')!.containers.get('db_keep')!;
    observed.get('node1')!.containers.set('db_keep', { ...keep, labels: { ...keep.labels, [LABEL.definitionHash]: 'older' } });
    const db = observed.get('node1')!.containers.get('db')!;
    observed.get('node1')!.containers.set('db', { ...db, running: false, status: 'exited' });
    const plan = diffState(before, observed, { runSteps: true }).services.find((s) => s.service === 'db')!;
    expect(plan.containers.find((c) => c.container === 'db_keep' && c.host === 'node1')).toMatchObject({ action: 'none', reasons: ['definition differs; data containers are never replaced'] });
    expect(plan.containers.find((c) => c.container === 'db' && c.host === 'node1')).toMatchObject({ action: 'start' });
  });

  it('recreates a container whose image tag now names a rebuilt image, and reruns its bootstrap', () => {
    const state = desired();
    const observed = deployed(state);
    observed.get('node1')!.imageIds.set(container(state, 'web_api').spec.image, 'id-of-a-rebuild');
    const plan = diffState(state, observed, { runSteps: true }).services.find((s) => s.service === 'web')!;
    expect(plan.steps.filter((s) => s.run).map((s) => s.description)).toEqual(['bootstrap web_api (one-shot)']);
    const web = plan.containers;
    expect(web.map((c) => `${c.host}:${c.action}:${c.reasons.join()}`)).toEqual([
      'node1:recreate:registry.example:4000/kolla/web-api:zed now names another image (rebuilt or pulled)',
      'node2:none:',
    ]);
  });

  it('pulls and recreates where the registry has a re-pushed tag, on that host only', () => {
    const state = desired();
    const observed = deployed(state);
    observed.get('node2')!.staleImages.add(container(state, 'web_api').spec.image);
    const web = diffState(state, observed, { runSteps: true }).services.find((s) => s.service === 'web')!.containers;
    expect(web).toEqual([
      expect.objectContaining({ host: 'node1', action: 'none' }),
      expect.objectContaining({ host: 'node2', action: 'recreate', pull: true, reasons: ['the registry has a new registry.example:4000/kolla/web-api:zed (re-pushed)'] }),
    ]);
  });

  it('restarts an up-to-date container that is unhealthy or restarting', () => {
    const state = desired();
    const observed = deployed(state);
    const node2 = observed.get('node2')!;
    node2.containers.set('db', { ...node2.containers.get('db')!, health: 'unhealthy' });
    node2.containers.set('web_api', { ...node2.containers.get('web_api')!, restartCount: 3, health: 'starting' });
    const actions = diffState(state, observed, { runSteps: true }).services.flatMap((s) => s.containers).filter((c) => c.action !== 'none');
    expect(actions.map((c) => `${c.host}/${c.container}:${c.action}:${c.reasons.join()}`)).toEqual([
      'node2/db:restart:container is unhealthy',
      'node2/web_api:restart:container is restarting',
    ]);
  });

  it('reruns a step whose inputs changed, and no step under reconfigure', () => {
    const state = desired();
    const register = state.services.find((s) => s.role.service === 'web')!.steps.find((s) => s.step.kind === 'register')!;
    const observed = deployed(state);
    observed.get(register.host)!.stepStamps[stepId(register)] = 'stamp of an earlier catalog';
    const plan = diffState(state, observed, { runSteps: true }).services.find((s) => s.service === 'web')!;
    expect(plan.steps.filter((s) => s.run).map((s) => s.description)).toEqual(['register service web']);
    expect(diffState(state, observed, { runSteps: false }).services.every((s) => s.steps.every((st) => !st.run))).toBe(true);
  });
});


describe('hostile values', () => {
  const injection = '127.0.0.1; touch /tmp/kolla-ts-pwned #';

  it('refuses typed globals that are not what they claim to be, naming file, line and key', () => {
    const cases: [string, string][] = [
      ['kolla_internal_vip_address', injection],
      ['network_interface', 'eth0 $(reboot)'],
      ['neutron_external_interface', 'eth1\nbad'],
      ['node_config_directory', '/etc/kolla; rm -rf /'],
      ['docker_registry', 'evil host:4000'],
      ['docker_namespace', 'kolla && true'],
      ['openstack_tag', 'zed`id`'],
      ['web_tag', '../../x'],
      ['openstack_region_name', 'Region One'],
    ];
    for (const [key, value] of cases) {
      const file = tempFile('globals.yml', `# hostile\n${key}: ${JSON.stringify(value)}\n`);
      expect(() => loadGlobals(file, '/etc/kolla', schemaInput), key).toThrow(`${file}:2 (key ${key}): expected`);
    }
  });

  it('refuses a password holding a line break, naming file, line and key but not the value', () => {
    const file = tempFile('passwords.yml', 'database_password: ok\nweb_database_password: "line1\\n[DEFAULT]\\ndebug = True"\n');
    let message = '';
    try {
      loadPasswords(file, ['database_password']);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain(`${file}:2 (key web_database_password): a password cannot hold a line break`);
    expect(message).not.toContain('DEFAULT');
  });

  it('escapes passwords for the language of the line they land on', () => {
    const hostile = { ...PASSWORDS, web_database_password: "p@ss/w'rd$x#", web_keystone_password: 'k$ey$$', rabbitmq_password: 'r@b:b/it' };
    const conf = container(desired('', undefined, hostile), 'web_api').configFiles.find((f) => f.name === 'web.conf')!.content;
    expect(conf).toContain("connection = mysql+pymysql://web:p%40ss%2Fw'rd%24x%23@198.51.100.10:3306/web");
    expect(conf).toContain('password = k$$ey$$$$');
    expect(conf).toContain('transport_url = rabbit://openstack:r%40b%3Ab%2Fit@198.51.100.10:5672//');
  });

  it('gives health checks as argv in exec form: a value with spaces stays one argument', () => {
    const state = desired();
    const web = container(state, 'web_api');
    expect(web.spec.healthcheck?.test).toEqual(['healthcheck_curl', 'http://198.51.100.1:8080']);
    const renderer = new ConfigRenderer(join(FIXTURES, 'config-templates'));
    expect(renderer.renderString('{{x}}', { x: injection }, 'inline')).toBe(injection);
  });
});

describe('escaping helpers', () => {
  /** Reads one MariaDB string literal (default sql_mode) and says what it holds and where it ended. */
  function readSqlLiteral(text: string): { value: string; end: number } {
    expect(text[0]).toBe("'");
    let value = '';
    for (let i = 1; i < text.length; i++) {
      const c = text[i]!;
      if (c === '\\') value += text[++i]!;
      else if (c === "'" && text[i + 1] === "'") (value += "'"), i++;
      else if (c === "'") return { value, end: i + 1 };
      else value += c;
    }
    throw new Error('unterminated literal');
  }

  const hostile = ["'; DROP DATABASE nova; --", "a\\'b", '\\', "'", "''", 'x\\\\\'y', 'plain', '$(reboot)', '`id`', 'a"b'];

  it('sqlString: the literal holds exactly the value and ends where it should', () => {
    for (const value of hostile) {
      const literal = sqlString(value);
      expect(readSqlLiteral(literal)).toEqual({ value, end: literal.length });
    }
    expect(() => sqlString('a\0b')).toThrow(UnsafeValueError);
  });

  it('shellQuote: a real shell prints exactly the value and runs nothing', () => {
    const marker = join(mkdtempSync(join(tmpdir(), 'kolla-ts-shell-')), 'pwned');
    for (const value of [...hostile, `x; touch ${marker}`, `$(touch ${marker})`, "it's"]) {
      const out = execFileSync('sh', ['-c', `printf %s ${shellQuote(value)}`]).toString();
      expect(out).toBe(value);
    }
    expect(existsSync(marker)).toBe(false);
  });

  it('iniValue doubles $ and refuses line breaks; myCnfValue quotes and refuses line breaks', () => {
    expect(iniValue('a$b')).toBe('a$$b');
    expect(() => iniValue('a\nb = c')).toThrow(UnsafeValueError);
    expect(myCnfValue('pa#ss\\')).toBe('"pa#ss\\\\"');
    expect(() => myCnfValue('a\nb')).toThrow(UnsafeValueError);
  });
});

describe('scope: --limit and hosts that do not answer', () => {
  it('limits containers and one-shot steps to the hosts given', () => {
    const state = limitToHosts(desired(), new Set(['node2']));
    expect(state.hosts).toEqual(['node2']);
    const all = state.services.flatMap((s) => [...s.containers, ...s.dataContainers]);
    expect(all.length).toBeGreaterThan(0);
    expect(all.every((c) => c.host === 'node2')).toBe(true);
    // web's database, register and bootstrap steps run on node1: not this command's.
    expect(state.services.find((s) => s.role.service === 'web')!.steps.map((s) => s.step.kind)).toEqual(['start']);
  });

  it("keeps a role's upgrade sequence to the hosts given: its one-shots run on node1, its restarts on every host within the limit", () => {
    const whole = desired().services.find((s) => s.role.service === 'web')!;
    expect(whole.upgrade.before.map((s) => [s.host, s.description])).toEqual([['node1', 'web_api one-shot (KOLLA_UPGRADE)']]);
    expect(whole.upgrade.after.map((s) => s.step)).toEqual([
      { kind: 'restart', containers: ['web_api'] },
      { kind: 'oneshot', container: 'web_api', environment: { KOLLA_OSM: '' }, okExitCodes: [0, 1] },
    ]);
    const limited = limitToHosts(desired(), new Set(['node2'])).services.find((s) => s.role.service === 'web')!;
    expect(limited.upgrade.before).toEqual([]);
    expect(limited.upgrade.after.map((s) => s.step.kind)).toEqual(['restart']);
  });

  it('stops a service whose one-shot steps run on a down host, and what requires it; the rest go on elsewhere', () => {
    const { desired: state, blocked } = withoutDownHosts(desired(), new Set(['node1']));
    expect([...blocked.keys()]).toEqual(['web']);
    expect(blocked.get('web')).toBe('its one-shot steps run on node1, which is unreachable');
    expect(state.services.map((s) => s.role.service)).not.toContain('web');
    expect(state.hosts).toEqual(['node2']);
    expect(state.services.find((s) => s.role.service === 'db')!.containers.map((c) => c.host)).toEqual(['node2']);
  });
});

describe('groups of hosts that run nothing', () => {
  it('render without facts for them (kolla-ansible\'s [deployment] group)', () => {
    const configDir = mkdtempSync(join(tmpdir(), 'kolla-ts-etc-'));
    writeFileSync(join(configDir, 'globals.yml'), 'kolla_internal_vip_address: 198.51.100.10\n');
    const inventory = loadInventory(tempFile('inventory.yml', `${INVENTORY}  deployment: [node3]\n`.replace('hosts:\n', 'hosts:\n  node3: {connection: local}\n')));
    const state = computeDesiredState({
      roles,
      globals: loadGlobals(join(configDir, 'globals.yml'), configDir, schemaInput).values,
      passwords: PASSWORDS,
      inventory,
      facts: new Map([
        ['node1', { apiAddress: '198.51.100.1' }],
        ['node2', { apiAddress: '198.51.100.2' }],
      ]),
      renderer: new ConfigRenderer(join(FIXTURES, 'config-templates')),
      customDir: join(configDir, 'config'),
    });
    expect(state.hosts).toEqual(['node1', 'node2']);
  });
});
