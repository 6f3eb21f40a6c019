import { errorAt, isPlainObject, readYaml, type LocatedYaml } from '../util/yaml.ts';

export const GROUPS = ['control', 'network', 'compute', 'storage', 'monitoring'] as const;

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

export interface Inventory {
  file: string;
  hosts: Map<string, HostSpec>;
  groups: Map<string, string[]>;
  /** Service or container name → group, where the inventory moves one. */
  placement: Map<string, string>;
  doc: LocatedYaml;
}

/*
 * Format:
 *   hosts:
 *     node1: {connection: ssh, address: 192.0.2.10, user: root, key_file: ~/.ssh/id_ed25519,
 *             known_hosts: ~/.ssh/known_hosts, api_address: 192.0.2.10}
 *     localhost: {connection: local}
 *   groups:
 *     control: [node1]
 *     compute: [node1, node2]
 *   services:            # optional: run a service (or one container) on another group
 *     nova_compute: compute
 */
export function loadInventory(file: string): Inventory {
  const doc = readYaml(file);
  if (!isPlainObject(doc.data)) throw errorAt(doc, [], 'an inventory is a mapping with "hosts" and "groups"');
  for (const key of Object.keys(doc.data)) {
    if (!['hosts', 'groups', 'services'].includes(key)) throw errorAt(doc, [key], `unknown key "${key}" (expected hosts, groups, services)`);
  }
  const hosts = new Map<string, HostSpec>();
  const rawHosts = doc.data.hosts;
  if (!isPlainObject(rawHosts) || Object.keys(rawHosts).length === 0) throw errorAt(doc, ['hosts'], 'at least one host is needed under "hosts"');
  for (const [name, raw] of Object.entries(rawHosts)) hosts.set(name, parseHost(doc, name, raw ?? {}));

  const groups = new Map<string, string[]>();
  const rawGroups = doc.data.groups;
  if (!isPlainObject(rawGroups)) throw errorAt(doc, ['groups'], 'expected "groups" mapping group names to lists of hosts');
  for (const [group, members] of Object.entries(rawGroups)) {
    if (!Array.isArray(members) || !members.every((m) => typeof m === 'string')) throw errorAt(doc, ['groups', group], 'a group is a list of host names');
    members.forEach((member, index) => {
      if (!hosts.has(member as string)) throw errorAt(doc, ['groups', group, index], `host "${member}" is not defined under "hosts"`);
    });
    groups.set(group, [...new Set(members as string[])]);
  }
  for (const group of GROUPS) if (!groups.has(group)) groups.set(group, []);

  const placement = new Map<string, string>();
  const rawServices = doc.data.services ?? {};
  if (!isPlainObject(rawServices)) throw errorAt(doc, ['services'], 'expected "services" mapping a service or container to a group');
  for (const [service, group] of Object.entries(rawServices)) {
    if (typeof group !== 'string') throw errorAt(doc, ['services', service], 'expected a group name');
    if (!groups.has(group)) throw errorAt(doc, ['services', service], `group "${group}" does not exist (groups: ${[...groups.keys()].join(', ')})`);
    placement.set(service, group);
  }
  return { file, hosts, groups, placement, doc };
}

function parseHost(doc: LocatedYaml, name: string, raw: unknown): HostSpec {
  if (!isPlainObject(raw)) throw errorAt(doc, ['hosts', name], 'expected a mapping of host settings');
  const known = ['connection', 'address', 'port', 'user', 'key_file', 'known_hosts', 'api_address'];
  for (const key of Object.keys(raw)) if (!known.includes(key)) throw errorAt(doc, ['hosts', name, key], `unknown host key "${key}" (expected ${known.join(', ')})`);
  const str = (key: string): string | undefined => {
    const value = raw[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw errorAt(doc, ['hosts', name, key], 'expected a string');
    return value;
  };
  const connection = str('connection') ?? 'ssh';
  const apiAddress = str('api_address');
  if (connection === 'local') return { name, connection, ...(apiAddress ? { apiAddress } : {}) };
  if (connection !== 'ssh') throw errorAt(doc, ['hosts', name, 'connection'], `connection must be local or ssh, got "${connection}"`);
  const port = raw.port ?? 22;
  if (!Number.isInteger(port)) throw errorAt(doc, ['hosts', name, 'port'], 'expected a port number');
  const keyFile = str('key_file');
  const knownHosts = str('known_hosts');
  return {
    name,
    connection,
    address: str('address') ?? name,
    port: port as number,
    user: str('user') ?? 'root',
    ...(keyFile ? { keyFile } : {}),
    ...(knownHosts ? { knownHosts } : {}),
    ...(apiAddress ? { apiAddress } : {}),
  };
}
