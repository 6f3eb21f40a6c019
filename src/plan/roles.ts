import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.ts';
import { errorAt, isPlainObject, readYaml, type LocatedYaml } from '../util/yaml.ts';

export interface HealthcheckDef {
  test: string;
  interval: number;
  timeout: number;
  retries: number;
  start_period: number;
}

export interface ConfigFileDef {
  template: string;
  dest: string;
  ini: boolean;
}

export interface ContainerDef {
  name: string;
  image: string;
  group?: string;
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
  group?: string;
  volumes: string[];
}

export type Step =
  | { kind: 'database'; name: string; user: string; password: string }
  | { kind: 'bootstrap'; container: string }
  | { kind: 'start'; containers: string[] }
  | { kind: 'exec'; container: string; user?: string; command: string[]; stdin?: string }
  | { kind: 'register'; spec: Record<string, unknown> };

export interface Role {
  service: string;
  file: string;
  group: string;
  enable: string;
  requires: string[];
  stage: number;
  passwords: string[];
  containers: ContainerDef[];
  dataContainers: DataContainerDef[];
  steps: Step[];
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
  return roles.sort((a, b) => a.stage - b.stage || a.service.localeCompare(b.service));
}

const ROLE_KEYS = ['service', 'group', 'enable', 'requires', 'stage', 'passwords', 'containers', 'data_containers', 'steps'];
const CONTAINER_KEYS = ['image', 'group', 'privileged', 'network_mode', 'pid_mode', 'ipc_mode', 'cap_add', 'user', 'environment', 'volumes', 'volumes_from', 'healthcheck', 'config'];

function parseRole(doc: LocatedYaml): Role {
  const data = doc.data;
  if (!isPlainObject(data)) throw errorAt(doc, [], 'a role is a mapping');
  unknownKeys(doc, [], data, ROLE_KEYS);
  const service = requireString(doc, ['service'], data.service);
  const containers = Object.entries(objectAt(doc, ['containers'], data.containers ?? {})).map(([name, raw]) => parseContainer(doc, name, raw));
  const dataContainers = Object.entries(objectAt(doc, ['data_containers'], data.data_containers ?? {})).map(([name, raw]) => {
    const path = ['data_containers', name];
    const entry = objectAt(doc, path, raw);
    unknownKeys(doc, path, entry, ['image', 'group', 'volumes']);
    const group = optionalString(doc, [...path, 'group'], entry.group);
    return { name, image: requireString(doc, [...path, 'image'], entry.image), ...(group ? { group } : {}), volumes: stringList(doc, [...path, 'volumes'], entry.volumes ?? []) };
  });
  const names = new Set(containers.map((c) => c.name));
  const steps = (listAt(doc, ['steps'], data.steps ?? []) as unknown[]).map((raw, index) => parseStep(doc, index, raw, names));
  const stage = data.stage ?? 50;
  if (!Number.isInteger(stage)) throw errorAt(doc, ['stage'], 'stage must be an integer');
  return {
    service,
    file: doc.file,
    group: requireString(doc, ['group'], data.group),
    enable: optionalString(doc, ['enable'], data.enable) ?? `enable_${service.replace(/-/g, '_')}`,
    requires: stringList(doc, ['requires'], data.requires ?? []),
    stage: stage as number,
    passwords: stringList(doc, ['passwords'], data.passwords ?? []),
    containers,
    dataContainers,
    steps,
    doc,
  };
}

function parseContainer(doc: LocatedYaml, name: string, raw: unknown): ContainerDef {
  const path = ['containers', name];
  const entry = objectAt(doc, path, raw);
  unknownKeys(doc, path, entry, CONTAINER_KEYS);
  const environment = objectAt(doc, [...path, 'environment'], entry.environment ?? {});
  for (const [key, value] of Object.entries(environment)) {
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
      interval: num('interval', 10),
      timeout: num('timeout', 30),
      retries: num('retries', 12),
      start_period: num('start_period', 10),
    };
  }
  const config = (listAt(doc, [...path, 'config'], entry.config ?? []) as unknown[]).map((item, index) => {
    const itemPath = [...path, 'config', index];
    const file = objectAt(doc, itemPath, item);
    unknownKeys(doc, itemPath, file, ['template', 'dest', 'ini']);
    const dest = requireString(doc, [...itemPath, 'dest'], file.dest);
    if (dest.includes('..') || dest.startsWith('/')) throw errorAt(doc, [...itemPath, 'dest'], 'dest is a relative path inside the container config directory');
    return { template: requireString(doc, [...itemPath, 'template'], file.template), dest, ini: file.ini === true };
  });
  const group = optionalString(doc, [...path, 'group'], entry.group);
  const pidMode = optionalString(doc, [...path, 'pid_mode'], entry.pid_mode);
  const ipcMode = optionalString(doc, [...path, 'ipc_mode'], entry.ipc_mode);
  const user = optionalString(doc, [...path, 'user'], entry.user);
  return {
    name,
    image: requireString(doc, [...path, 'image'], entry.image),
    ...(group ? { group } : {}),
    privileged: entry.privileged === true,
    network_mode: optionalString(doc, [...path, 'network_mode'], entry.network_mode) ?? 'host',
    ...(pidMode ? { pid_mode: pidMode } : {}),
    ...(ipcMode ? { ipc_mode: ipcMode } : {}),
    cap_add: stringList(doc, [...path, 'cap_add'], entry.cap_add ?? []),
    ...(user ? { user } : {}),
    environment: environment as Record<string, string>,
    volumes: stringList(doc, [...path, 'volumes'], entry.volumes ?? []),
    volumes_from: stringList(doc, [...path, 'volumes_from'], entry.volumes_from ?? []),
    ...(healthcheck ? { healthcheck } : {}),
    config,
  };
}

function parseStep(doc: LocatedYaml, index: number, raw: unknown, containers: ReadonlySet<string>): Step {
  const path: (string | number)[] = ['steps', index];
  const entry = objectAt(doc, path, raw);
  const kinds = Object.keys(entry);
  if (kinds.length !== 1) throw errorAt(doc, path, 'a step has exactly one kind: database, bootstrap, start, exec or register');
  const kind = kinds[0]!;
  const body = entry[kind];
  const at = [...path, kind];
  const container = (value: unknown, keyPath: (string | number)[]): string => {
    const name = requireString(doc, keyPath, value);
    if (!containers.has(name)) throw errorAt(doc, keyPath, `container "${name}" is not declared in this role`);
    return name;
  };
  switch (kind) {
    case 'database': {
      const spec = objectAt(doc, at, body);
      unknownKeys(doc, at, spec, ['name', 'user', 'password']);
      return { kind, name: requireString(doc, [...at, 'name'], spec.name), user: requireString(doc, [...at, 'user'], spec.user), password: requireString(doc, [...at, 'password'], spec.password) };
    }
    case 'bootstrap': {
      const spec = objectAt(doc, at, body);
      unknownKeys(doc, at, spec, ['container']);
      return { kind, container: container(spec.container, [...at, 'container']) };
    }
    case 'start': {
      const list = typeof body === 'string' ? [body] : stringList(doc, at, body);
      return { kind, containers: list.map((name, i) => container(name, typeof body === 'string' ? at : [...at, i])) };
    }
    case 'exec': {
      const spec = objectAt(doc, at, body);
      unknownKeys(doc, at, spec, ['container', 'user', 'command', 'stdin']);
      const user = optionalString(doc, [...at, 'user'], spec.user);
      const stdin = optionalString(doc, [...at, 'stdin'], spec.stdin);
      const command = stringList(doc, [...at, 'command'], spec.command);
      if (command.length === 0) throw errorAt(doc, [...at, 'command'], 'command must not be empty');
      return { kind, container: container(spec.container, [...at, 'container']), ...(user ? { user } : {}), command, ...(stdin !== undefined ? { stdin } : {}) };
    }
    case 'register':
      return { kind, spec: objectAt(doc, at, body) };
    default:
      throw errorAt(doc, at, `unknown step kind "${kind}" (expected database, bootstrap, start, exec or register)`);
  }
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

function optionalString(doc: LocatedYaml, path: (string | number)[], value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw errorAt(doc, path, 'expected a string');
  return value;
}
