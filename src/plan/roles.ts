import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.ts';
import { EXPECTED, isGroupName, isUserName } from '../util/values.ts';
import { errorAt, isPlainObject, readYaml, type LocatedYaml } from '../util/yaml.ts';

/** A service deployed before this one, while each globals key in `when` is true (nova after Ceph only when its disks are in it). */
export interface AfterDef {
  service: string;
  when: string[];
}

export interface HealthcheckDef {
  test: string;
  interval: number;
  timeout: number;
  retries: number;
  start_period: number;
}

export interface ConfigFileDef {
  template: string;
  /** The file's name in the container's config directory; may name variables (`ceph.client.{{ceph_glance_user}}.keyring`). */
  dest: string;
  ini: boolean;
  /** Template context keys that must all be true for the file to exist (`!key`: must not be); empty: always. */
  when: string[];
  /** While this key is true the file is the operator's, from the config directory's config/ (required), not the template. */
  customWhen?: string;
}

export interface ContainerDef {
  name: string;
  image: string;
  /** Groups whose hosts run it (the Linux bridge agent: network and compute). */
  groups?: string[];
  /** Names of the ports it listens on (template variables such as keystone_public_port). */
  ports: string[];
  privileged: boolean;
  network_mode: string;
  pid_mode?: string;
  ipc_mode?: string;
  cap_add: string[];
  user?: string;
  environment: Record<string, string>;
  volumes: string[];
  volumes_from: string[];
  healthcheck?: HealthcheckDef;
  config: ConfigFileDef[];
}

export interface DataContainerDef {
  name: string;
  image: string;
  groups?: string[];
  volumes: string[];
}

/**
 * `needs` (deploy steps only): the services of the role's `requires` the step
 * uses, so it runs as soon as those are done; absent: all of them.
 */
export type Step =
  | { kind: 'database'; name: string; user: string; password: string }
  | { kind: 'bootstrap'; container: string; needs?: string[] }
  | { kind: 'start'; containers: string[] }
  | { kind: 'exec'; container: string; user?: string; command: string[]; stdin?: string; needs?: string[] }
  | { kind: 'register'; spec: Record<string, unknown> }
  /** A one-shot container of `container`'s image and config, in the mode its environment selects (KOLLA_UPGRADE, ...). */
  | { kind: 'oneshot'; container: string; environment: Record<string, string>; okExitCodes: number[]; needs?: string[] }
  /** Upgrade only: restart these containers on every host (a service that pins a version at start reads it again). */
  | { kind: 'restart'; containers: string[] };

/** A service's own upgrade sequence: `before` replaces its bootstrap steps during an upgrade, `after` runs once every host runs the new containers. */
export interface UpgradeSequence {
  before: Step[];
  after: Step[];
}

export interface Role {
  service: string;
  file: string;
  groups: string[];
  enable: string;
  /** The enable key's default when globals.yml does not set it (role.yml `enabled_by_default`, default true). */
  enabledByDefault: boolean;
  /** Services deployed before this one (and that must be enabled with it). */
  requires: string[];
  /** Services that must be enabled with this one, in any order (nova needs neutron, not neutron first). */
  uses: string[];
  /** Services deployed before this one when they are deployed too, needed or not (cinder after a Ceph of kolla-ts's own). */
  after: AfterDef[];
  stage: number;
  passwords: string[];
  containers: ContainerDef[];
  dataContainers: DataContainerDef[];
  steps: Step[];
  upgrade: UpgradeSequence;
  doc: LocatedYaml;
}

/** Reads every roles/<service>/role.yml, sorted by stage then name. */
export function loadRoles(rolesDir: string): Role[] {
  if (!existsSync(rolesDir)) throw new InputError(`roles directory does not exist: ${rolesDir}`);
  const roles: Role[] = [];
  for (const entry of readdirSync(rolesDir, { withFileTypes: true })) {
    const file = join(rolesDir, entry.name, 'role.yml');
    if (entry.isDirectory() && existsSync(file)) roles.push(parseRole(readYaml(file)));
  }
  const containerOwner = new Map<string, string>();
  for (const role of roles) {
    for (const name of [...role.containers.map((c) => c.name), ...role.dataContainers.map((d) => d.name)]) {
      const other = containerOwner.get(name);
      if (other) throw new InputError(`container "${name}" is declared by both ${other} and ${role.service}`, { file: role.file });
      containerOwner.set(name, role.service);
    }
  }
  // `after` names no requirement, so nothing else would notice a misspelt service; nor would anything
  // notice one in `needs` before the deploy waited for a service that never comes.
  const known = new Set(roles.map((r) => r.service));
  for (const role of roles) {
    const unknown = role.after.findIndex(({ service }) => !known.has(service));
    if (unknown >= 0) throw errorAt(role.doc, ['after', unknown], `unknown service "${role.after[unknown]!.service}"`);
    role.steps.forEach((step, index) => {
      const needs = 'needs' in step ? (step.needs ?? []) : [];
      const at = needs.findIndex((name) => !known.has(name));
      if (at >= 0) throw errorAt(role.doc, ['steps', index, step.kind, 'needs', at], `unknown service "${needs[at]}"`);
    });
  }
  return roles.sort((a, b) => a.stage - b.stage || a.service.localeCompare(b.service));
}

const ROLE_KEYS = ['service', 'group', 'enable', 'enabled_by_default', 'requires', 'uses', 'after', 'stage', 'passwords', 'containers', 'data_containers', 'steps', 'upgrade'];
const CONTAINER_KEYS = ['image', 'group', 'ports', 'privileged', 'network_mode', 'pid_mode', 'ipc_mode', 'cap_add', 'user', 'environment', 'volumes', 'volumes_from', 'healthcheck', 'config'];

function parseRole(doc: LocatedYaml): Role {
  const data = doc.data;
  if (!isPlainObject(data)) throw errorAt(doc, [], 'a role is a mapping');
  unknownKeys(doc, [], data, ROLE_KEYS);
  const service = shaped(doc, ['service'], requireString(doc, ['service'], data.service), 'name');
  const containers = Object.entries(objectAt(doc, ['containers'], data.containers ?? {})).map(([name, raw]) => parseContainer(doc, name, raw));
  const dataContainers = Object.entries(objectAt(doc, ['data_containers'], data.data_containers ?? {})).map(([name, raw]) => {
    const path = ['data_containers', name];
    shaped(doc, path, name, 'name');
    const entry = objectAt(doc, path, raw);
    unknownKeys(doc, path, entry, ['image', 'group', 'volumes']);
    const groups = optionalGroups(doc, [...path, 'group'], entry.group);
    const image = shaped(doc, [...path, 'image'], requireString(doc, [...path, 'image'], entry.image), 'name');
    return { name, image, ...(groups ? { groups } : {}), volumes: shapedList(doc, [...path, 'volumes'], entry.volumes ?? [], 'volume') };
  });
  const names = new Set(containers.map((c) => c.name));
  const requires = shapedList(doc, ['requires'], data.requires ?? [], 'name');
  const steps = (listAt(doc, ['steps'], data.steps ?? []) as unknown[]).map((raw, index) => parseStep(doc, ['steps', index], raw, names, DEPLOY_STEPS, requires));
  const upgrade = objectAt(doc, ['upgrade'], data.upgrade ?? {});
  unknownKeys(doc, ['upgrade'], upgrade, ['before', 'after']);
  // An upgrade runs services one after another, so its steps take no `needs`.
  const upgradeSteps = (phase: 'before' | 'after'): Step[] =>
    (listAt(doc, ['upgrade', phase], upgrade[phase] ?? []) as unknown[]).map((raw, index) => parseStep(doc, ['upgrade', phase, index], raw, names, phase === 'before' ? UPGRADE_BEFORE_STEPS : UPGRADE_AFTER_STEPS, null));
  const stage = data.stage ?? 50;
  if (!Number.isInteger(stage)) throw errorAt(doc, ['stage'], 'stage must be an integer');
  return {
    service,
    file: doc.file,
    groups: optionalGroups(doc, ['group'], data.group) ?? [requireString(doc, ['group'], data.group)],
    enable: shaped(doc, ['enable'], optionalString(doc, ['enable'], data.enable) ?? `enable_${service.replace(/-/g, '_')}`, 'key'),
    enabledByDefault: data.enabled_by_default === undefined ? true : optionalBoolean(doc, ['enabled_by_default'], data.enabled_by_default),
    requires,
    uses: shapedList(doc, ['uses'], data.uses ?? [], 'name'),
    after: parseAfter(doc, data.after ?? []),
    stage: stage as number,
    passwords: shapedList(doc, ['passwords'], data.passwords ?? [], 'key'),
    containers,
    dataContainers,
    steps,
    upgrade: { before: upgradeSteps('before'), after: upgradeSteps('after') },
    doc,
  };
}

/** `after` entries: a service's name, or {service, when} with the globals keys that must be true. */
function parseAfter(doc: LocatedYaml, raw: unknown): AfterDef[] {
  return listAt(doc, ['after'], raw).map((item, index) => {
    const path = ['after', index];
    if (typeof item === 'string') return { service: shaped(doc, path, item, 'name'), when: [] };
    const entry = objectAt(doc, path, item);
    unknownKeys(doc, path, entry, ['service', 'when']);
    const service = shaped(doc, [...path, 'service'], requireString(doc, [...path, 'service'], entry.service), 'name');
    const when = typeof entry.when === 'string' ? [shaped(doc, [...path, 'when'], entry.when, 'key')] : shapedList(doc, [...path, 'when'], entry.when ?? [], 'key');
    return { service, when };
  });
}

function parseContainer(doc: LocatedYaml, name: string, raw: unknown): ContainerDef {
  const path = ['containers', name];
  shaped(doc, path, name, 'name');
  const entry = objectAt(doc, path, raw);
  unknownKeys(doc, path, entry, CONTAINER_KEYS);
  const environment = objectAt(doc, [...path, 'environment'], entry.environment ?? {});
  for (const [key, value] of Object.entries(environment)) {
    shaped(doc, [...path, 'environment', key], key, 'key');
    if (typeof value !== 'string') throw errorAt(doc, [...path, 'environment', key], 'environment values are strings');
  }
  let healthcheck: HealthcheckDef | undefined;
  if (entry.healthcheck !== undefined) {
    const hc = objectAt(doc, [...path, 'healthcheck'], entry.healthcheck);
    unknownKeys(doc, [...path, 'healthcheck'], hc, ['test', 'interval', 'timeout', 'retries', 'start_period']);
    const num = (key: string, fallback: number): number => {
      const value = hc[key] ?? fallback;
      if (typeof value !== 'number' || value < 0) throw errorAt(doc, [...path, 'healthcheck', key], 'expected a number of seconds');
      return value;
    };
    healthcheck = {
      test: requireString(doc, [...path, 'healthcheck', 'test'], hc.test),
      // kolla-ansible's defaults. Each probe is a docker exec (about 0.2 CPU-s with the test, measured on a
      // 2-core host): an idle all-in-one used 0.51 of a core with every container probed each 10 s, 0.25 each 30 s.
      interval: num('interval', 30),
      timeout: num('timeout', 30),
      retries: num('retries', 3),
      start_period: num('start_period', 10),
    };
  }
  const config = (listAt(doc, [...path, 'config'], entry.config ?? []) as unknown[]).map((item, index) => {
    const itemPath = [...path, 'config', index];
    const file = objectAt(doc, itemPath, item);
    unknownKeys(doc, itemPath, file, ['template', 'dest', 'ini', 'when', 'custom_when']);
    const template = shaped(doc, [...itemPath, 'template'], requireString(doc, [...itemPath, 'template'], file.template), 'path');
    const dest = requireString(doc, [...itemPath, 'dest'], file.dest);
    // With its variables ({{key}} only) standing for a name; the rendered name is checked where it is rendered.
    if (!SHAPES.path.test(dest.replace(/\{\{[A-Za-z_][A-Za-z0-9_]*\}\}/g, 'x'))) throw errorAt(doc, [...itemPath, 'dest'], `expected ${SHAPES.path.expected}, got ${JSON.stringify(dest)}`);
    const when = typeof file.when === 'string' ? [file.when] : stringList(doc, [...itemPath, 'when'], file.when ?? []);
    when.forEach((condition, i) => shaped(doc, typeof file.when === 'string' ? [...itemPath, 'when'] : [...itemPath, 'when', i], condition, 'condition'));
    const customWhen = optionalShaped(doc, [...itemPath, 'custom_when'], file.custom_when, 'key');
    return { template, dest, ini: optionalBoolean(doc, [...itemPath, 'ini'], file.ini), when, ...(customWhen ? { customWhen } : {}) };
  });
  const groups = optionalGroups(doc, [...path, 'group'], entry.group);
  const pidMode = optionalShaped(doc, [...path, 'pid_mode'], entry.pid_mode, 'pidMode');
  const ipcMode = optionalShaped(doc, [...path, 'ipc_mode'], entry.ipc_mode, 'ipcMode');
  const user = optionalShaped(doc, [...path, 'user'], entry.user, 'user');
  return {
    name,
    image: shaped(doc, [...path, 'image'], requireString(doc, [...path, 'image'], entry.image), 'name'),
    ...(groups ? { groups } : {}),
    ports: stringList(doc, [...path, 'ports'], entry.ports ?? []),
    privileged: optionalBoolean(doc, [...path, 'privileged'], entry.privileged),
    network_mode: optionalShaped(doc, [...path, 'network_mode'], entry.network_mode, 'networkMode') ?? 'host',
    ...(pidMode ? { pid_mode: pidMode } : {}),
    ...(ipcMode ? { ipc_mode: ipcMode } : {}),
    cap_add: shapedList(doc, [...path, 'cap_add'], entry.cap_add ?? [], 'capability'),
    ...(user ? { user } : {}),
    environment: environment as Record<string, string>,
    volumes: shapedList(doc, [...path, 'volumes'], entry.volumes ?? [], 'volume'),
    volumes_from: shapedList(doc, [...path, 'volumes_from'], entry.volumes_from ?? [], 'name'),
    ...(healthcheck ? { healthcheck } : {}),
    config,
  };
}

const DEPLOY_STEPS = ['database', 'bootstrap', 'start', 'exec', 'register', 'oneshot'];
const UPGRADE_BEFORE_STEPS = ['oneshot', 'exec'];
const UPGRADE_AFTER_STEPS = ['oneshot', 'exec', 'restart'];

/** `requires`: the role's, which a deploy step's `needs` must come from; null where steps take no `needs`. */
function parseStep(doc: LocatedYaml, path: (string | number)[], raw: unknown, containers: ReadonlySet<string>, allowed: readonly string[], requires: readonly string[] | null): Step {
  const entry = objectAt(doc, path, raw);
  const kinds = Object.keys(entry);
  const expected = `${allowed.slice(0, -1).join(', ')} or ${allowed.at(-1)}`;
  if (kinds.length !== 1) throw errorAt(doc, path, `a step has exactly one kind: ${expected}`);
  const kind = kinds[0]!;
  if (!allowed.includes(kind)) throw errorAt(doc, [...path, kind], `${DEPLOY_STEPS.includes(kind) || kind === 'restart' ? 'a' : 'unknown'} step kind "${kind}"${DEPLOY_STEPS.includes(kind) || kind === 'restart' ? ' is not allowed here' : ''} (expected ${expected})`);
  const body = entry[kind];
  const at = [...path, kind];
  const container = (value: unknown, keyPath: (string | number)[]): string => {
    const name = requireString(doc, keyPath, value);
    if (!containers.has(name)) throw errorAt(doc, keyPath, `container "${name}" is not declared in this role`);
    return name;
  };
  const keysWithNeeds = (keys: string[]): string[] => (requires ? [...keys, 'needs'] : keys);
  const needs = (value: unknown): { needs?: string[] } => {
    if (value === undefined || !requires) return {};
    const names = shapedList(doc, [...at, 'needs'], value, 'name');
    names.forEach((name, i) => {
      if (!requires.includes(name)) throw errorAt(doc, [...at, 'needs', i], `"${name}" is not in this role's requires (${requires.join(', ') || 'none'}): a step needs only services the role requires`);
    });
    return { needs: names };
  };
  switch (kind) {
    case 'database': {
      const spec = objectAt(doc, at, body);
      unknownKeys(doc, at, spec, ['name', 'user', 'password']);
      const required = (key: string, shape: Shape): string => shaped(doc, [...at, key], requireString(doc, [...at, key], spec[key]), shape);
      return { kind, name: required('name', 'sqlName'), user: required('user', 'sqlName'), password: required('password', 'key') };
    }
    case 'bootstrap': {
      const spec = objectAt(doc, at, body);
      unknownKeys(doc, at, spec, keysWithNeeds(['container']));
      return { kind, container: container(spec.container, [...at, 'container']), ...needs(spec.needs) };
    }
    case 'start': {
      const list = typeof body === 'string' ? [body] : stringList(doc, at, body);
      return { kind, containers: list.map((name, i) => container(name, typeof body === 'string' ? at : [...at, i])) };
    }
    case 'exec': {
      const spec = objectAt(doc, at, body);
      unknownKeys(doc, at, spec, keysWithNeeds(['container', 'user', 'command', 'stdin']));
      const user = optionalShaped(doc, [...at, 'user'], spec.user, 'user');
      const stdin = optionalString(doc, [...at, 'stdin'], spec.stdin);
      const command = stringList(doc, [...at, 'command'], spec.command);
      if (command.length === 0) throw errorAt(doc, [...at, 'command'], 'command must not be empty');
      return { kind, container: container(spec.container, [...at, 'container']), ...(user ? { user } : {}), command, ...(stdin !== undefined ? { stdin } : {}), ...needs(spec.needs) };
    }
    case 'register':
      return { kind, spec: parseRegister(doc, at, body) };
    case 'oneshot': {
      const spec = objectAt(doc, at, body);
      unknownKeys(doc, at, spec, keysWithNeeds(['container', 'environment', 'ok_exit_codes']));
      const environment = objectAt(doc, [...at, 'environment'], spec.environment ?? {});
      for (const [key, value] of Object.entries(environment)) {
        shaped(doc, [...at, 'environment', key], key, 'key');
        if (typeof value !== 'string') throw errorAt(doc, [...at, 'environment', key], 'environment values are strings');
      }
      const codes = spec.ok_exit_codes ?? [0];
      if (!Array.isArray(codes) || codes.length === 0 || !codes.every((c) => Number.isInteger(c) && c >= 0 && c <= 255)) {
        throw errorAt(doc, [...at, 'ok_exit_codes'], 'expected a list of exit codes (0-255)');
      }
      return { kind, container: container(spec.container, [...at, 'container']), environment: environment as Record<string, string>, okExitCodes: codes as number[], ...needs(spec.needs) };
    }
    case 'restart': {
      const list = typeof body === 'string' ? [body] : stringList(doc, at, body);
      return { kind, containers: list.map((name, i) => container(name, typeof body === 'string' ? at : [...at, i])) };
    }
    default:
      throw errorAt(doc, at, `unknown step kind "${kind}" (expected ${expected})`);
  }
}

/**
 * The document kolla_register reads (images/kolla-toolbox/kolla_register),
 * checked here so a role's mistake is named with its line at load time, not
 * by the toolbox mid-deploy. Per list: required keys, allowed keys.
 */
const REGISTER_LISTS: Record<string, { required: string[]; allowed: string[] }> = {
  services: { required: ['name', 'type'], allowed: ['name', 'type', 'description'] },
  endpoints: { required: ['service', 'interface', 'url'], allowed: ['service', 'interface', 'url', 'region'] },
  domains: { required: ['name'], allowed: ['name', 'description'] },
  users: { required: ['name', 'password', 'role'], allowed: ['name', 'password', 'project', 'domain', 'role'] },
};
const REGISTER_INTERFACES = ['public', 'internal', 'admin'];

function parseRegister(doc: LocatedYaml, at: (string | number)[], body: unknown): Record<string, unknown> {
  const spec = objectAt(doc, at, body);
  unknownKeys(doc, at, spec, ['projects', 'roles', ...Object.keys(REGISTER_LISTS)]);
  for (const key of ['projects', 'roles']) {
    if (spec[key] === undefined) continue;
    stringList(doc, [...at, key], spec[key]).forEach((name, i) => requireString(doc, [...at, key, i], name));
  }
  for (const [key, { required, allowed }] of Object.entries(REGISTER_LISTS)) {
    if (spec[key] === undefined) continue;
    listAt(doc, [...at, key], spec[key]).forEach((raw, i) => {
      const path = [...at, key, i];
      const entry = objectAt(doc, path, raw);
      unknownKeys(doc, path, entry, allowed);
      for (const name of required) requireString(doc, [...path, name], entry[name]);
      for (const [name, value] of Object.entries(entry)) {
        // A description may be empty; everything else names something.
        if (name === 'description' ? typeof value !== 'string' : typeof value !== 'string' || value === '') throw errorAt(doc, [...path, name], 'expected a string');
      }
      if (key === 'endpoints' && !REGISTER_INTERFACES.includes(entry.interface as string)) {
        throw errorAt(doc, [...path, 'interface'], `expected one of ${REGISTER_INTERFACES.join(', ')}, got ${JSON.stringify(entry.interface)}`);
      }
      if (key === 'users') {
        // The password is a key of passwords.yml, never a value.
        shaped(doc, [...path, 'password'], entry.password as string, 'key');
        if (('project' in entry) === ('domain' in entry)) throw errorAt(doc, path, 'a user gets its role on a project or on a domain: give exactly one of "project" and "domain"');
      }
    });
  }
  return spec;
}

function unknownKeys(doc: LocatedYaml, path: (string | number)[], value: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) throw errorAt(doc, [...path, key], `unknown key "${key}" (expected one of ${known.join(', ')})`);
  }
}

function objectAt(doc: LocatedYaml, path: (string | number)[], value: unknown): Record<string, unknown> {
  if (!isPlainObject(value)) throw errorAt(doc, path, 'expected a mapping');
  return value;
}

function listAt(doc: LocatedYaml, path: (string | number)[], value: unknown): unknown[] {
  if (!Array.isArray(value)) throw errorAt(doc, path, 'expected a list');
  return value;
}

function stringList(doc: LocatedYaml, path: (string | number)[], value: unknown): string[] {
  const list = listAt(doc, path, value);
  list.forEach((item, i) => {
    if (typeof item !== 'string') throw errorAt(doc, [...path, i], 'expected a string');
  });
  return list as string[];
}

function requireString(doc: LocatedYaml, path: (string | number)[], value: unknown): string {
  if (typeof value !== 'string' || value === '') throw errorAt(doc, path, `"${path.at(-1)}" is required and must be a string`);
  return value;
}

/** `group: compute` or `group: [network, compute]`. */
function optionalGroups(doc: LocatedYaml, path: (string | number)[], value: unknown): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  const groups = typeof value === 'string' ? [shaped(doc, path, value, 'group')] : shapedList(doc, path, value, 'group');
  if (groups.length === 0) throw errorAt(doc, path, 'expected a group name or a list of them');
  return groups;
}

/**
 * What each name a role gives may look like: these reach host paths,
 * container names, SQL statements and command lines.
 */
const SHAPES = {
  name: { test: (v: string) => /^[a-z0-9][a-z0-9_-]{0,62}$/.test(v), expected: 'a name of lower-case letters, digits, "_" and "-"' },
  key: { test: (v: string) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(v), expected: 'a key of letters, digits and "_"' },
  condition: { test: (v: string) => /^!?[A-Za-z_][A-Za-z0-9_]*$/.test(v), expected: 'a key of letters, digits and "_", or "!" and a key' },
  group: { test: isGroupName, expected: EXPECTED.groupName },
  path: { test: (v: string) => /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(v) && !v.split('/').includes('..'), expected: 'a relative path without ".."' },
  sqlName: { test: (v: string) => /^[A-Za-z0-9_]{1,64}$/.test(v), expected: 'a MariaDB name of letters, digits and "_" (at most 64)' },
  user: { test: isUserName, expected: EXPECTED.userName },
  volume: {
    test: (v: string) => /^([A-Za-z0-9][A-Za-z0-9_.-]*|\/[A-Za-z0-9_.@+\/-]*):\/[A-Za-z0-9_.@+\/-]*(:[a-z]+(,[a-z]+)*)?$/.test(v) && !v.split(/[:/]/).includes('..'),
    expected: 'VOLUME:/path or /host/path:/path, optionally with :ro, :shared...',
  },
  capability: { test: (v: string) => /^[A-Z][A-Z_]*$/.test(v), expected: 'a capability such as NET_ADMIN' },
  networkMode: { test: (v: string) => /^(host|bridge|none|container:[a-z0-9][a-z0-9_-]*)$/.test(v), expected: 'host, bridge, none or container:NAME' },
  pidMode: { test: (v: string) => /^(host|container:[a-z0-9][a-z0-9_-]*)$/.test(v), expected: 'host or container:NAME' },
  ipcMode: { test: (v: string) => /^(host|private|shareable|none|container:[a-z0-9][a-z0-9_-]*)$/.test(v), expected: 'host, private, shareable, none or container:NAME' },
};
type Shape = keyof typeof SHAPES;

/** Whether a rendered config file name stays inside its container's config directory. */
export function isConfigFileName(name: string): boolean {
  return SHAPES.path.test(name);
}

function shaped(doc: LocatedYaml, path: (string | number)[], value: string, shape: Shape): string {
  if (!SHAPES[shape].test(value)) throw errorAt(doc, path, `expected ${SHAPES[shape].expected}, got ${JSON.stringify(value)}`);
  return value;
}

function shapedList(doc: LocatedYaml, path: (string | number)[], value: unknown, shape: Shape): string[] {
  const list = stringList(doc, path, value);
  list.forEach((item, i) => shaped(doc, [...path, i], item, shape));
  return list;
}

function optionalShaped(doc: LocatedYaml, path: (string | number)[], value: unknown, shape: Shape): string | undefined {
  const text = optionalString(doc, path, value);
  return text === undefined ? undefined : shaped(doc, path, text, shape);
}

function optionalBoolean(doc: LocatedYaml, path: (string | number)[], value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw errorAt(doc, path, 'expected true or false');
  return value;
}

function optionalString(doc: LocatedYaml, path: (string | number)[], value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw errorAt(doc, path, 'expected a string');
  return value;
}
