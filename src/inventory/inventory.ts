import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { InputError } from '../errors.ts';
import { EXPECTED, isGroupName, isHostName } from '../util/values.ts';
import { errorAt, isPlainObject, parseYaml, type LocatedYaml } from '../util/yaml.ts';
import { looksLikeIni, parseIniInventory } from './ini.ts';
import { type InventorySource, type SourceGroup, type SourceHost } from './source.ts';
import { CONNECTION_VARS, readVarsFiles, typedVar, type HostVars } from './vars.ts';

export type { HostVars, VarValue } from './vars.ts';

export const GROUPS = ['control', 'network', 'compute', 'storage', 'monitoring'] as const;

/** How the deployer reaches a host. */
export type HostSpec =
  | { name: string; connection: 'local'; apiAddress?: string }
  | {
      name: string;
      connection: 'ssh';
      address: string;
      port: number;
      user: string;
      keyFile?: string;
      /** known_hosts file; host keys are always verified. */
      knownHosts?: string;
      apiAddress?: string;
    };

/** A host of the inventory: how to reach it, and its variables for the templates. */
export type InventoryHost = HostSpec & {
  /** ansible_become: run privileged commands through sudo. */
  become: boolean;
  /**
   * Every variable that is not a connection setting (network_interface,
   * api_interface, anything unknown), merged as Ansible merges them: the
   * inventory's group vars (all, then parents before children), group_vars/
   * files the same way, the host's own line, host_vars/ files.
   */
  vars: HostVars;
};

export interface Inventory {
  file: string;
  hosts: Map<string, InventoryHost>;
  /** Group → its hosts, children groups' hosts included; Ansible's `all` and `ungrouped` are not listed. */
  groups: Map<string, string[]>;
  /** Service or container name → group, where the inventory moves one. */
  placement: Map<string, string>;
  /** Where each host, group and variable stands (`lineOf(['groups', 'compute'])`); for INI, data holds the sections read. */
  doc: LocatedYaml;
}

/** Reads an inventory: kolla-ansible's INI format (first meaningful line a `[section]`, or a .ini file) or ours in YAML. */
export function loadInventory(file: string): Inventory {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new InputError(`cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { file });
  }
  if (looksLikeIni(text) || /\.ini$/i.test(file)) {
    const source = parseIniInventory(text, file);
    const data = { hosts: Object.fromEntries(source.hosts), groups: Object.fromEntries(source.groups) };
    return resolve(source, { file, data, lineOf: source.lineOf });
  }
  const doc = parseYaml(text, file);
  return resolve(readYamlInventory(doc), doc);
}

/*
 * Our YAML format:
 *   hosts:
 *     node1: {connection: ssh, address: 198.18.0.10, port: 22, user: root, key_file: ~/.ssh/id_ed25519,
 *             known_hosts: ~/.ssh/known_hosts, api_address: 198.18.0.10, become: false,
 *             vars: {network_interface: eth1}}
 *     localhost: {connection: local}
 *   groups:
 *     control: [node1]
 *     compute: [node1, node2]
 *   group_vars:          # optional: variables of every host of a group (`all`: every host)
 *     compute: {neutron_external_interface: eth2}
 *   services:            # optional: run a service (or one container) on another group
 *     nova_compute: compute
 */
const HOST_KEYS: Record<string, (typeof CONNECTION_VARS)[number]> = {
  connection: 'ansible_connection',
  address: 'ansible_host',
  port: 'ansible_port',
  user: 'ansible_user',
  key_file: 'ansible_ssh_private_key_file',
  known_hosts: 'known_hosts',
  api_address: 'api_address',
  become: 'ansible_become',
};

function readYamlInventory(doc: LocatedYaml): InventorySource {
  if (!isPlainObject(doc.data)) throw errorAt(doc, [], 'an inventory is a mapping with "hosts" and "groups"');
  for (const key of Object.keys(doc.data)) {
    if (!['hosts', 'groups', 'group_vars', 'services'].includes(key)) throw errorAt(doc, [key], `unknown key "${key}" (expected hosts, groups, group_vars, services)`);
  }
  const hosts = new Map<string, SourceHost>();
  const rawHosts = doc.data.hosts;
  if (!isPlainObject(rawHosts) || Object.keys(rawHosts).length === 0) throw errorAt(doc, ['hosts'], 'at least one host is needed under "hosts"');
  for (const [name, raw] of Object.entries(rawHosts)) {
    if (!isHostName(name)) throw errorAt(doc, ['hosts', name], `invalid host name "${name}": expected ${EXPECTED.hostName}`);
    hosts.set(name, { vars: readYamlHost(doc, name, raw ?? {}) });
  }

  const groups = new Map<string, SourceGroup>();
  const rawGroups = doc.data.groups;
  if (!isPlainObject(rawGroups)) throw errorAt(doc, ['groups'], 'expected "groups" mapping group names to lists of hosts');
  for (const [group, members] of Object.entries(rawGroups)) {
    if (!isGroupName(group) || group === 'all' || group === 'ungrouped') throw errorAt(doc, ['groups', group], `invalid group name "${group}": expected ${EXPECTED.groupName}`);
    if (!Array.isArray(members) || !members.every((m) => typeof m === 'string')) throw errorAt(doc, ['groups', group], 'a group is a list of host names');
    members.forEach((member, index) => {
      if (!hosts.has(member as string)) throw errorAt(doc, ['groups', group, index], `host "${member}" is not defined under "hosts"`);
    });
    groups.set(group, { hosts: members as string[], children: [], vars: {} });
  }

  const rawGroupVars = doc.data.group_vars ?? {};
  if (!isPlainObject(rawGroupVars)) throw errorAt(doc, ['group_vars'], 'expected "group_vars" mapping group names to variables');
  for (const [group, rawVars] of Object.entries(rawGroupVars)) {
    if (group !== 'all' && !groups.has(group)) throw errorAt(doc, ['group_vars', group], `group "${group}" is not defined under "groups"`);
    const entry = groups.get(group) ?? { hosts: [], children: [], vars: {} };
    entry.vars = readYamlVars(doc, ['group_vars', group], rawVars ?? {});
    groups.set(group, entry);
  }

  const placement = new Map<string, string>();
  const rawServices = doc.data.services ?? {};
  if (!isPlainObject(rawServices)) throw errorAt(doc, ['services'], 'expected "services" mapping a service or container to a group');
  for (const [service, group] of Object.entries(rawServices)) {
    if (typeof group !== 'string') throw errorAt(doc, ['services', service], 'expected a group name');
    if (!groups.has(group) && !(GROUPS as readonly string[]).includes(group)) {
      throw errorAt(doc, ['services', service], `group "${group}" does not exist (groups: ${[...new Set([...groups.keys(), ...GROUPS])].join(', ')})`);
    }
    placement.set(service, group);
  }
  return { file: doc.file, hosts, groups, placement, lineOf: (path) => doc.lineOf(path) };
}

function readYamlHost(doc: LocatedYaml, name: string, raw: unknown): HostVars {
  if (!isPlainObject(raw)) throw errorAt(doc, ['hosts', name], 'expected a mapping of host settings');
  const known = [...Object.keys(HOST_KEYS), 'vars'];
  for (const key of Object.keys(raw)) if (!known.includes(key)) throw errorAt(doc, ['hosts', name, key], `unknown host key "${key}" (expected ${known.join(', ')})`);
  const vars = readYamlVars(doc, ['hosts', name, 'vars'], raw.vars ?? {});
  for (const [key, variable] of Object.entries(HOST_KEYS)) {
    if (raw[key] === undefined) continue;
    if (variable in vars) throw errorAt(doc, ['hosts', name, 'vars', variable], `${variable} is also given as "${key}"`);
    const result = typedVar(variable, raw[key]);
    if ('problem' in result) throw errorAt(doc, ['hosts', name, key], result.problem);
    vars[variable] = result.value;
  }
  return vars;
}

function readYamlVars(doc: LocatedYaml, path: string[], raw: unknown): HostVars {
  if (!isPlainObject(raw)) throw errorAt(doc, path, 'expected a mapping of variable names to values');
  const vars: HostVars = {};
  for (const [key, value] of Object.entries(raw)) {
    const result = typedVar(key, value);
    if ('problem' in result) throw errorAt(doc, [...path, key], result.problem);
    vars[key] = result.value;
  }
  return vars;
}

/** Flattens children, applies group_vars/ and host_vars/ beside the file, and maps variables onto hosts. */
function resolve(source: InventorySource, doc: LocatedYaml): Inventory {
  const { file } = source;
  const members = new Map<string, Set<string>>();
  const parents = new Map<string, string[]>();
  const membersOf = (group: string, trail: string[]): Set<string> => {
    const known = members.get(group);
    if (known) return known;
    const entry = source.groups.get(group)!;
    const hosts = new Set(entry.hosts);
    for (const child of entry.children) {
      if (trail.includes(child.name)) {
        throw new InputError(`groups form a cycle: ${[...trail, child.name].join(' → ')}`, { file, line: child.line ?? doc.lineOf(['groups', group]), key: child.name });
      }
      parents.set(child.name, [...(parents.get(child.name) ?? []), group]);
      for (const host of membersOf(child.name, [...trail, child.name])) hosts.add(host);
    }
    members.set(group, hosts);
    return hosts;
  };
  for (const group of source.groups.keys()) membersOf(group, [group]);

  // Ansible's depth: children of `all` are 1, their children 2; deeper groups' vars win.
  const depths = new Map<string, number>();
  const depth = (group: string): number => {
    let value = depths.get(group);
    if (value === undefined) {
      value = Math.max(0, ...(parents.get(group) ?? []).filter((p) => p !== 'all').map(depth)) + 1;
      depths.set(group, value);
    }
    return value;
  };
  const named = [...source.groups.keys()].filter((g) => g !== 'all');
  const ordered = named.sort((a, b) => depth(a) - depth(b) || a.localeCompare(b));

  const dir = dirname(file);
  const groupFiles = new Map(['all', ...ordered].map((g) => [g, readVarsFiles(join(dir, 'group_vars'), g)]));
  const hosts = new Map<string, InventoryHost>();
  for (const [name, host] of source.hosts) {
    const own = ordered.filter((g) => members.get(g)!.has(name));
    const merged: HostVars = Object.assign(
      {},
      source.groups.get('all')?.vars,
      ...own.map((g) => source.groups.get(g)!.vars),
      groupFiles.get('all'),
      ...own.map((g) => groupFiles.get(g)),
      host.vars,
      readVarsFiles(join(dir, 'host_vars'), name),
    );
    hosts.set(name, toHost(name, merged));
  }

  const groups = new Map<string, string[]>();
  for (const group of [...source.groups.keys(), ...GROUPS]) {
    if (group !== 'all' && group !== 'ungrouped') groups.set(group, [...(members.get(group) ?? [])]);
  }
  return { file, hosts, groups, placement: source.placement, doc };
}

/** Values were checked where they were read: a port is a number, ansible_become a boolean. */
function toHost(name: string, merged: HostVars): InventoryHost {
  const vars: HostVars = {};
  for (const [key, value] of Object.entries(merged)) if (!(CONNECTION_VARS as readonly string[]).includes(key)) vars[key] = value;
  const text = (...keys: string[]): string | undefined => keys.map((k) => merged[k]).find((v) => v !== undefined) as string | undefined;
  const apiAddress = text('api_address');
  const become = merged.ansible_become === true;
  if (merged.ansible_connection === 'local') return { name, connection: 'local', ...(apiAddress ? { apiAddress } : {}), become, vars };
  const keyFile = text('ansible_ssh_private_key_file', 'ansible_private_key_file');
  const knownHosts = text('known_hosts');
  return {
    name,
    connection: 'ssh',
    address: text('ansible_host', 'ansible_ssh_host') ?? name,
    port: (merged.ansible_port ?? merged.ansible_ssh_port ?? 22) as number,
    user: text('ansible_user', 'ansible_ssh_user') ?? 'root',
    ...(keyFile ? { keyFile } : {}),
    ...(knownHosts ? { knownHosts } : {}),
    ...(apiAddress ? { apiAddress } : {}),
    become,
    vars,
  };
}
