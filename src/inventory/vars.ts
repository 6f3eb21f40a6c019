import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EXPECTED, isHostAddress, isInterfaceName, isIpAddress, isPort, isUserName } from '../util/values.ts';
import { errorAt, isPlainObject, readYaml } from '../util/yaml.ts';

export type VarValue = string | number | boolean;
export type HostVars = Record<string, VarValue>;

/** Ansible's variable naming rule; anything else cannot be referenced from a template. */
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Variables that become fields of a host (address, port, ...), with the
 * Ansible names an inventory gives them. `known_hosts` has no Ansible
 * counterpart: it is kolla-ts's, as in the YAML format.
 */
export const CONNECTION_VARS = [
  'ansible_host',
  'ansible_ssh_host',
  'ansible_port',
  'ansible_ssh_port',
  'ansible_user',
  'ansible_ssh_user',
  'ansible_connection',
  'ansible_ssh_private_key_file',
  'ansible_private_key_file',
  'ansible_become',
  'api_address',
  'known_hosts',
] as const;

/**
 * Checks one variable where it is read, so the caller can name its file,
 * line and key. Returns the value in the model's type (a port is a number,
 * ansible_become a boolean) or why it is refused. Values of variables we do
 * not know are never quoted back: they may be secrets.
 */
export function typedVar(name: string, raw: unknown): { value: VarValue } | { problem: string } {
  // __proto__ would be dropped by a plain object, not stored.
  if (!VAR_NAME.test(name) || name === '__proto__') return { problem: `"${name}" is not a variable name (letters, digits and "_", not starting with a digit)` };
  if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') return { problem: 'expected a string, a number or a boolean' };
  // A line break or other control character would end the config or shell line the value lands on.
  if (typeof raw === 'string' && /[\x00-\x1f\x7f]/.test(raw)) return { problem: 'a value cannot hold a line break or other control character' };
  const got = `, got ${JSON.stringify(raw)}`;
  const text = typeof raw === 'boolean' ? undefined : String(raw);
  const check = (ok: (value: string) => boolean, expected: string): { value: VarValue } | { problem: string } =>
    text !== undefined && ok(text) ? { value: text } : { problem: `expected ${expected}${got}` };
  switch (name) {
    case 'ansible_host':
    case 'ansible_ssh_host':
      return check(isHostAddress, EXPECTED.hostAddress);
    case 'ansible_port':
    case 'ansible_ssh_port': {
      const port = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
      return isPort(port) ? { value: port } : { problem: `expected ${EXPECTED.port}${got}` };
    }
    case 'ansible_user':
    case 'ansible_ssh_user':
      return check(isUserName, EXPECTED.userName);
    case 'ansible_connection':
      return check((v) => v === 'local' || v === 'ssh', 'local or ssh');
    case 'ansible_become': {
      const word = String(raw).toLowerCase();
      if (['true', 'yes', '1'].includes(word)) return { value: true };
      if (['false', 'no', '0'].includes(word)) return { value: false };
      return { problem: `expected true, false, yes, no, 1 or 0${got}` };
    }
    case 'ansible_ssh_private_key_file':
    case 'ansible_private_key_file':
    case 'known_hosts':
      return check((v) => v !== '', 'a file path');
  }
  if (name.endsWith('_interface')) return check(isInterfaceName, EXPECTED.interface);
  if (name.endsWith('_address')) return check(isIpAddress, EXPECTED.ip);
  return { value: raw };
}

/**
 * host_vars/<host> and group_vars/<group> beside the inventory, as Ansible
 * reads them: a file named <name>, <name>.yml or <name>.yaml, or a
 * directory of such files, each a YAML mapping of variables.
 */
export function readVarsFiles(dir: string, name: string): HostVars {
  const vars: HostVars = {};
  for (const candidate of [name, `${name}.yml`, `${name}.yaml`].map((n) => join(dir, n))) {
    if (!existsSync(candidate)) continue;
    const files = statSync(candidate).isDirectory()
      ? readdirSync(candidate)
          .filter((f) => /\.ya?ml$/.test(f))
          .sort()
          .map((f) => join(candidate, f))
      : [candidate];
    for (const file of files) Object.assign(vars, readVarsFile(file));
  }
  return vars;
}

function readVarsFile(file: string): HostVars {
  const doc = readYaml(file);
  if (doc.data === null || doc.data === undefined) return {};
  if (!isPlainObject(doc.data)) throw errorAt(doc, [], 'a vars file is a mapping of variable names to values');
  const vars: HostVars = {};
  for (const [key, raw] of Object.entries(doc.data)) {
    const result = typedVar(key, raw);
    if ('problem' in result) throw errorAt(doc, [key], result.problem);
    vars[key] = result.value;
  }
  return vars;
}
