import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { EXPECTED, isHostAddress, isInterfaceName, isIpAddress, isPort, isSafeAbsolutePath } from '../util/values.ts';
import { errorAt, isPlainObject, readYaml, type LocatedYaml } from '../util/yaml.ts';

export type GlobalValue = string | boolean | number;
export type Globals = Record<string, GlobalValue>;

interface KeySpec {
  kind: 'string' | 'boolean' | 'number';
  /** A value, or a function of the globals read so far (derived defaults). */
  default?: GlobalValue | ((g: Globals) => GlobalValue | undefined);
  choices?: readonly string[];
  /** What a string must look like; these values reach shells, bind mounts, URLs and config files. */
  format?: keyof typeof FORMATS;
  /** Numbers: the smallest allowed, and whether it must be whole. */
  min?: number;
  integer?: boolean;
}

const FORMATS: Record<string, { test: (value: string) => boolean; expected: string }> = {
  ip: { test: isIpAddress, expected: EXPECTED.ip },
  interface: { test: isInterfaceName, expected: EXPECTED.interface },
  path: { test: isSafeAbsolutePath, expected: EXPECTED.path },
  localPath: { test: (v) => v.startsWith('/') && !/[\x00-\x1f\x7f]/.test(v), expected: 'an absolute path' },
  registry: { test: isRegistryAddress, expected: 'empty or a registry address (host or host:port)' },
  namespace: { test: (v) => /^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/.test(v), expected: 'an image namespace (lower-case letters, digits, ".", "_", "-", "/")' },
  tag: { test: (v) => /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(v), expected: 'an image tag (letters, digits, "_", ".", "-"; at most 128)' },
  networkTypes: { test: (v) => v === '' || v.split(',').every((t) => ['vxlan', 'vlan', 'flat'].includes(t)), expected: 'empty or a comma-separated list of vxlan, vlan, flat' },
  name: { test: (v) => /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(v), expected: 'a name of letters, digits, "_", ".", "-"' },
  cidr: { test: (v) => v === '' || isCidr(v), expected: 'empty or a network as ADDRESS/PREFIX (198.51.100.0/24)' },
};

function isCidr(value: string): boolean {
  const [address, prefix, ...rest] = value.split('/');
  if (rest.length > 0 || !address || !prefix || !/^\d{1,3}$/.test(prefix) || !isIpAddress(address)) return false;
  return Number(prefix) <= (address.includes(':') ? 128 : 32);
}

function isRegistryAddress(value: string): boolean {
  if (value === '') return true;
  const match = /^(\[[0-9a-fA-F:]+\]|[^:/\s]+)(?::(\d+))?$/.exec(value);
  if (!match) return false;
  const host = match[1]!.replace(/^\[(.*)\]$/, '$1');
  return isHostAddress(host) && (match[2] === undefined || isPort(Number(match[2])));
}

/** Keys every deployment knows, with kolla-ansible's names where they apply. */
const BASE_KEYS: Record<string, KeySpec> = {
  kolla_base_distro: { kind: 'string', default: 'debian', choices: ['debian'] },
  kolla_install_type: { kind: 'string', default: 'binary', choices: ['binary'] },
  openstack_release: { kind: 'string', default: 'zed', format: 'tag' },
  openstack_tag: { kind: 'string', default: (g) => g.openstack_release, format: 'tag' },
  openstack_region_name: { kind: 'string', default: 'RegionOne', format: 'name' },
  docker_registry: { kind: 'string', default: '', format: 'registry' },
  docker_namespace: { kind: 'string', default: 'kolla', format: 'namespace' },
  // bootstrap-servers lists docker_registry under insecure-registries (plain HTTP) when set.
  docker_registry_insecure: { kind: 'boolean', default: false },
  network_interface: { kind: 'string', default: 'eth0', format: 'interface' },
  api_interface: { kind: 'string', default: (g) => g.network_interface, format: 'interface' },
  kolla_internal_vip_address: { kind: 'string', format: 'ip' },
  kolla_external_vip_address: { kind: 'string', default: (g) => g.kolla_internal_vip_address, format: 'ip' },
  neutron_external_interface: { kind: 'string', format: 'interface' },
  // VXLAN's local end (the Linux bridge agent's local_ip) is this interface's address.
  tunnel_interface: { kind: 'string', default: (g) => g.network_interface, format: 'interface' },
  // Network types projects get when they create a network; empty: provider networks only.
  neutron_tenant_network_types: { kind: 'string', default: 'vxlan', format: 'networkTypes' },
  config_strategy: { kind: 'string', default: 'COPY_ALWAYS', choices: ['COPY_ALWAYS', 'COPY_ONCE'] },
  nova_compute_virt_type: { kind: 'string', default: 'kvm', choices: ['kvm', 'qemu'] },
  node_config_directory: { kind: 'string', default: '/etc/kolla', format: 'path' },
  node_custom_config: { kind: 'string', format: 'localPath' },
  health_timeout: { kind: 'number', default: 300, min: 1 },
  // Worker processes per API service; kolla-ansible's default: the CPU count, at most 5.
  openstack_service_workers: { kind: 'number', default: Math.min(cpus().length, 5), min: 1, integer: true },
  // Ceph (enable_ceph): each storage host's OSD keeps BlueStore in a sparse file of this size (GiB) in the
  // ceph_osd volume; pools keep ceph_pool_size copies (1: one OSD is enough); daemons and clients use
  // ceph_public_network when set, else each host's api_interface address.
  ceph_osd_file_size_gb: { kind: 'number', default: 10, min: 1, integer: true },
  ceph_pool_size: { kind: 'number', default: 1, min: 1, integer: true },
  ceph_public_network: { kind: 'string', default: '', format: 'cidr' },
  // Services on Ceph RBD, kolla-ansible's names: the cluster is kolla-ts's own when enable_ceph is on,
  // else an existing one whose ceph.conf and keyrings the operator puts under config/<service>/.
  cinder_backend_ceph: { kind: 'boolean', default: false },
  glance_backend_ceph: { kind: 'boolean', default: false },
  nova_backend_ceph: { kind: 'boolean', default: false },
  external_ceph_cephx_enabled: { kind: 'boolean', default: true },
  ceph_cinder_user: { kind: 'string', default: 'cinder', format: 'name' },
  ceph_glance_user: { kind: 'string', default: 'glance', format: 'name' },
  // As kolla-ansible: nova's RBD user serves attached volumes too, so by default it is cinder's.
  ceph_nova_user: { kind: 'string', default: (g) => g.ceph_cinder_user, format: 'name' },
  ceph_cinder_pool_name: { kind: 'string', default: 'volumes', format: 'name' },
  ceph_glance_pool_name: { kind: 'string', default: 'images', format: 'name' },
  ceph_nova_pool_name: { kind: 'string', default: 'vms', format: 'name' },
};

export interface GlobalsSchemaInput {
  /** Service names: each gets enable_<service> and <service>_tag. */
  services: { name: string; enabledByDefault: boolean }[];
  /** Container names: each gets <container>_tag, defaulting to its service's tag. */
  containers?: { name: string; service: string }[];
}

export interface LoadedGlobals {
  values: Globals;
  /** Where each key given in globals.yml stands, for errors raised later. */
  doc: LocatedYaml | null;
}

export function globalsSchema(input: GlobalsSchemaInput): Record<string, KeySpec> {
  const schema: Record<string, KeySpec> = { ...BASE_KEYS };
  for (const { name, enabledByDefault } of input.services) {
    const key = name.replace(/-/g, '_');
    schema[`enable_${key}`] = { kind: 'boolean', default: enabledByDefault };
    schema[`${key}_tag`] = { kind: 'string', default: (g) => g.openstack_tag, format: 'tag' };
  }
  for (const { name, service } of input.containers ?? []) {
    const serviceTag = `${service.replace(/-/g, '_')}_tag`;
    schema[`${name.replace(/-/g, '_')}_tag`] ??= { kind: 'string', default: (g) => g[serviceTag], format: 'tag' };
  }
  return schema;
}

/**
 * Reads globals.yml strictly: an unknown key (a typo, most often) is an
 * error naming its line and the nearest known key, never silently ignored.
 */
export function loadGlobals(file: string, configDir: string, input: GlobalsSchemaInput): LoadedGlobals {
  const schema = globalsSchema(input);
  const doc = existsSync(file) ? readYaml(file) : null;
  const given = doc?.data ?? {};
  if (doc && given !== null && !isPlainObject(given)) throw errorAt(doc, [], 'globals.yml must be a mapping of keys to values');
  const values: Globals = {};
  for (const [key, value] of Object.entries((given ?? {}) as Record<string, unknown>)) {
    // Own keys only: "constructor" or "__proto__" are typos, not schema entries.
    const spec = Object.hasOwn(schema, key) ? schema[key] : undefined;
    if (!spec) {
      const hint = nearest(key, Object.keys(schema));
      throw errorAt(doc!, [key], `unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}`);
    }
    values[key] = checkValue(doc!, key, value, spec);
  }
  // Derived defaults may depend on other defaults: resolve in schema order.
  for (const [key, spec] of Object.entries(schema)) {
    if (key in values || spec.default === undefined) continue;
    const value = typeof spec.default === 'function' ? spec.default(values) : spec.default;
    if (value !== undefined) values[key] = value;
  }
  values.node_custom_config ??= `${configDir}/config`;
  return { values, doc };
}

function checkValue(doc: LocatedYaml, key: string, value: unknown, spec: KeySpec): GlobalValue {
  if (spec.kind === 'boolean') {
    if (typeof value === 'boolean') return value;
    if (value === 'yes' || value === 'no') return value === 'yes';
    throw errorAt(doc, [key], `expected true or false, got ${JSON.stringify(value)}`);
  }
  if (spec.kind === 'number') {
    const wanted = `${spec.integer ? 'a whole number' : 'a number'}${spec.min !== undefined ? ` of at least ${spec.min}` : ''}`;
    if (typeof value === 'number' && Number.isFinite(value) && (!spec.integer || Number.isInteger(value)) && (spec.min === undefined || value >= spec.min)) return value;
    throw errorAt(doc, [key], `expected ${wanted}, got ${JSON.stringify(value)}`);
  }
  if (typeof value !== 'string' && typeof value !== 'number') throw errorAt(doc, [key], `expected a string, got ${JSON.stringify(value)}`);
  const text = String(value);
  if (spec.choices && !spec.choices.includes(text)) throw errorAt(doc, [key], `must be one of ${spec.choices.join(', ')}, got "${text}"`);
  const format = spec.format ? FORMATS[spec.format]! : undefined;
  if (format && !format.test(text)) throw errorAt(doc, [key], `expected ${format.expected}, got ${JSON.stringify(text)}`);
  return text;
}

/** The known key closest to a misspelt one, when it is close enough to be a likely typo. */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(word, candidate);
    if (!best || distance < best.distance) best = { candidate, distance };
  }
  return best && best.distance <= Math.max(2, Math.floor(word.length / 4)) ? best.candidate : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
