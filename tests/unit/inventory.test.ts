import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.ts';
import { loadInventory, type Inventory, type InventoryHost } from '../../src/inventory/inventory.ts';
import { matchHosts } from '../../src/inventory/limit.ts';

const PROJECT_ROOT = join(import.meta.dirname, '..', '..');

/** Writes files into a fresh directory and loads the first one as the inventory. */
function load(files: Record<string, string>): Inventory {
  return loadInventory(write(files));
}

const SCRATCH = mkdtempSync(join(tmpdir(), 'kolla-ts-inventory-'));
afterAll(() => rmSync(SCRATCH, { recursive: true, force: true }));

function write(files: Record<string, string>): string {
  const dir = mkdtempSync(join(SCRATCH, 'case-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return join(dir, Object.keys(files)[0]!);
}

function host(inventory: Inventory, name: string): InventoryHost {
  const spec = inventory.hosts.get(name);
  if (!spec) throw new Error(`no host ${name}`);
  return spec;
}

/** The error loading `files` raises, for checking its file, line and key. */
function failure(files: Record<string, string>): InputError {
  const file = write(files);
  try {
    loadInventory(file);
  } catch (error) {
    if (error instanceof InputError) return error;
    throw error;
  }
  throw new Error('expected an InputError');
}

describe('INI inventory', () => {
  it('reads hosts, sections and the ansible_* connection settings', () => {
    const inventory = load({
      'hosts.ini': [
        '# comment',
        '[control]',
        'ctl01 ansible_host=198.18.0.11 ansible_port=2222 ansible_user=kolla ansible_ssh_private_key_file=/root/.ssh/kolla ansible_become=yes',
        'localhost ansible_connection=local   # the deploy host',
        '[compute]',
        "cmp01 ansible_ssh_host=198.18.0.21 ansible_become=0 custom='two words' count=3 flag=True",
      ].join('\n'),
    });
    expect(host(inventory, 'ctl01')).toEqual({
      name: 'ctl01',
      connection: 'ssh',
      address: '198.18.0.11',
      port: 2222,
      user: 'kolla',
      keyFile: '/root/.ssh/kolla',
      become: true,
      vars: {},
    });
    expect(host(inventory, 'localhost')).toEqual({ name: 'localhost', connection: 'local', become: false, vars: {} });
    expect(host(inventory, 'cmp01')).toMatchObject({ address: '198.18.0.21', port: 22, user: 'root', become: false, vars: { custom: 'two words', count: 3, flag: true } });
    expect(inventory.groups.get('control')).toEqual(['ctl01', 'localhost']);
    // Our core groups exist even when the inventory leaves them out.
    expect(inventory.groups.get('storage')).toEqual([]);
    expect(inventory.doc.lineOf(['hosts', 'cmp01'])).toBe(6);
    expect(inventory.doc.lineOf(['groups', 'compute'])).toBe(5);
  });

  it('expands ranges: zero padding kept, letters, a stride, several ranges, host:port', () => {
    const inventory = load({
      'inventory': '[compute]\ncompute[01:03]\nnode-[a:c]\nodd[1:9:2]\nrack[1:2]-n[a:b]\nedge:2201\n',
    });
    expect(inventory.groups.get('compute')).toEqual([
      'compute01', 'compute02', 'compute03',
      'node-a', 'node-b', 'node-c',
      'odd1', 'odd3', 'odd5', 'odd7', 'odd9',
      'rack1-na', 'rack1-nb', 'rack2-na', 'rack2-nb',
      'edge',
    ]);
    expect(host(inventory, 'edge')).toMatchObject({ port: 2201, address: 'edge' });
  });

  it('refuses malformed ranges with the line', () => {
    const cases: [string, RegExp][] = [
      ['c[01:100]', /same width/],
      ['c[5:1]', /begins \(5\) after it ends \(1\)/],
      ['c[1:9:0]', /step "0"/],
      ['c[1:]', /needs an end/],
      ['c[1:3', /not closed/],
      ['c[a:9]', /neither numbers nor single letters/],
      ['c[0:999999]', /more than 10000 hosts/],
      ['c[0:999][0:999]', /more than 10000 hosts/],
    ];
    for (const [pattern, message] of cases) {
      const error = failure({ 'hosts.ini': `[compute]\n${pattern}\n` });
      expect(error.message).toMatch(message);
      expect(error.location).toMatchObject({ line: 2, key: 'inventory_hostname' });
    }
  });

  it('flattens children groups, kolla-ansible style', () => {
    const inventory = load({
      'multinode': [
        '[control]', 'ctl01', '[compute]', 'cmp01', 'cmp02',
        '[nova-compute:children]', 'compute',
        '[nova:children]', 'control', 'nova-compute',
        '[deployment]', 'localhost ansible_connection=local',
      ].join('\n'),
    });
    expect(inventory.groups.get('nova-compute')).toEqual(['cmp01', 'cmp02']);
    expect(inventory.groups.get('nova')).toEqual(['ctl01', 'cmp01', 'cmp02']);
    expect(inventory.groups.get('deployment')).toEqual(['localhost']);
    expect(inventory.groups.has('all')).toBe(false);
  });

  it('merges variables as Ansible does: all < parent group < child group < host; same depth by name', () => {
    const inventory = load({
      'hosts.ini': [
        '[compute]', 'cmp01 level=host',
        '[gpu:children]', 'compute',
        '[a-group]', 'cmp01',
        '[all:vars]', 'level=all', 'from_all=1', 'tie=all',
        '[gpu:vars]', 'level=gpu', 'from_gpu=1', 'tie=gpu',
        '[compute:vars]', 'from_compute=1', 'tie=compute',
        '[a-group:vars]', 'tie=a-group',
      ].join('\n'),
    });
    // compute is gpu's child (depth 2) and wins over gpu and a-group (depth 1); gpu beats a-group by name.
    expect(host(inventory, 'cmp01').vars).toEqual({ level: 'host', from_all: 1, from_gpu: 1, from_compute: 1, tie: 'compute' });
  });

  it('reads group_vars/ and host_vars/ beside the inventory, in Ansible precedence', () => {
    const inventory = load({
      'hosts.ini': '[compute]\ncmp01 network_interface=eth9\ncmp02\n[compute:vars]\nnetwork_interface=eth1\nfrom_inventory=yes\n',
      'group_vars/all.yml': 'api_interface: eth0\nnetwork_interface: eth0\nfrom_inventory: false\n',
      'group_vars/compute.yaml': 'neutron_external_interface: eth2\n',
      'group_vars/compute/extra.yml': 'extra: 1\n',
      'host_vars/cmp01': 'network_interface: eth7\nansible_host: 198.18.0.21\n',
      'host_vars/cmp02.yml': 'ansible_connection: local\n',
    });
    // A group_vars/ file wins over the inventory's own group vars, as in Ansible.
    expect(host(inventory, 'cmp01')).toMatchObject({
      address: '198.18.0.21',
      vars: { api_interface: 'eth0', network_interface: 'eth7', neutron_external_interface: 'eth2', from_inventory: false, extra: 1 },
    });
    expect(host(inventory, 'cmp02')).toMatchObject({ connection: 'local', vars: { network_interface: 'eth0' } });
  });

  it('refuses unresolved group references, cycles and malformed sections', () => {
    expect(failure({ 'h.ini': '[nova:children]\ncompute\n[control]\nctl01\n' }).location).toMatchObject({ line: 2, key: 'compute' });
    expect(failure({ 'h.ini': '[control]\nctl01\n\n[compute:vars]\nx=1\n' }).location).toMatchObject({ line: 4, key: 'compute' });
    const cycle = failure({ 'h.ini': '[a:children]\nb\n[b:children]\na\n[control]\nctl01\n' });
    expect(cycle.message).toMatch(/cycle/);
    expect(cycle.location?.line).toBeGreaterThan(0);
    expect(failure({ 'h.ini': '[control:host]\nctl01\n' }).message).toMatch(/unknown type "host"/);
    expect(failure({ 'h.ini': '[control ]\nctl01\n' }).location).toMatchObject({ line: 1 });
    expect(failure({ 'h.ini': '[control]\nctl01 ansible_host\n' }).location).toMatchObject({ line: 2 });
    expect(failure({ 'h.ini': '[control]\nctl01 ansible_host="198.18.0.1\n' }).message).toMatch(/double quote is not closed/);
    expect(failure({ 'h.ini': '[control]\nctl01 a=1 a=2\n' }).location).toMatchObject({ line: 2, key: 'a' });
    expect(failure({ 'h.ini': '[control]\nctl01 1st=x\n' }).location).toMatchObject({ line: 2, key: '1st' });
    expect(failure({ 'h.ini': '[all:vars]\nx=1\n' }).message).toMatch(/no host/);
  });

  it('names file, line and key of each malformed typed value', () => {
    const cases: [string, string, RegExp][] = [
      ['ansible_host=-oProxyCommand=x', 'ansible_host', /an IP address or a host name/],
      ['ansible_port=0', 'ansible_port', /port number/],
      ['ansible_port=65536', 'ansible_port', /port number/],
      ['ansible_port=ssh', 'ansible_port', /port number/],
      ['ansible_user=root;id', 'ansible_user', /user name/],
      ['ansible_connection=paramiko', 'ansible_connection', /local or ssh/],
      ['ansible_become=maybe', 'ansible_become', /true, false, yes, no, 1 or 0/],
      ['network_interface=eth0/../x', 'network_interface', /network interface name/],
      ['api_interface=averyveryverylongname', 'api_interface', /network interface name/],
      ['api_address=control01', 'api_address', /an IP address/],
      ['storage_address=198.51.100.300', 'storage_address', /an IP address/],
      ['ansible_ssh_private_key_file=""', 'ansible_ssh_private_key_file', /a file path/],
    ];
    for (const [assignment, key, message] of cases) {
      const file = write({ 'hosts.ini': `# fleet\n[control]\nctl01 ${assignment}\n` });
      expect(() => loadInventory(file), assignment).toThrow(message);
      expect(() => loadInventory(file), assignment).toThrow(`${file}:3 (key ${key})`);
      // The same value in a [group:vars] section points at its own line.
      const vars = write({ 'hosts.ini': `[control]\nctl01\n[control:vars]\n${assignment}\n` });
      expect(() => loadInventory(vars), assignment).toThrow(`${vars}:4 (key ${key})`);
    }
    const badName = write({ 'hosts.ini': '[control]\nctl_01\n' });
    expect(() => loadInventory(badName)).toThrow(`${badName}:2 (key inventory_hostname): invalid host name "ctl_01"`);
    const inFile = write({ 'hosts.ini': '[control]\nctl01\n', 'host_vars/ctl01.yml': 'ok: 1\n\nansible_port: 99999\n' });
    expect(() => loadInventory(inFile)).toThrow(`${join(dirname(inFile), 'host_vars', 'ctl01.yml')}:3 (key ansible_port)`);
  });

  it('refuses a hostile address however it is written', () => {
    const hostile = '127.0.0.1; touch /tmp/pwned #';
    for (const line of [`ctl01 ansible_host=${hostile}`, `ctl01 ansible_host="${hostile}"`, `ctl01 ansible_host='${hostile}'`]) {
      const file = write({ 'hosts.ini': `[control]\n${line}\n` });
      expect(() => loadInventory(file), line).toThrow(`${file}:2 (key ansible_host)`);
    }
    const vars = write({ 'hosts.ini': `[control]\nctl01\n[control:vars]\nansible_host=${hostile}\n` });
    expect(() => loadInventory(vars)).toThrow(`${vars}:4 (key ansible_host)`);
    const yaml = write({ 'inventory.yml': `hosts:\n  ctl01:\n    address: "${hostile}"\ngroups:\n  control: [ctl01]\n` });
    expect(() => loadInventory(yaml)).toThrow(`${yaml}:3 (key hosts.ctl01.address)`);
    const hostName = write({ 'hosts.ini': `[control]\n"${hostile}"\n` });
    expect(() => loadInventory(hostName)).toThrow(`${hostName}:2 (key inventory_hostname)`);
  });

  it('reads the example inventories: multinode.ini and multinode.yml describe the same cloud', () => {
    const ini = loadInventory(join(PROJECT_ROOT, 'inventory', 'multinode.ini'));
    const yaml = loadInventory(join(PROJECT_ROOT, 'inventory', 'multinode.yml'));
    expect([...ini.hosts.values()]).toEqual([...yaml.hosts.values()]);
    expect(new Map([...ini.groups].sort())).toEqual(new Map([...yaml.groups].sort()));
    expect(host(ini, 'compute01')).toMatchObject({ address: '198.18.0.21', user: 'root', keyFile: '~/.ssh/id_ed25519', vars: { neutron_external_interface: 'eth1' } });
  });
});

describe('YAML inventory', () => {
  const hosts = 'hosts:\n  ctl01:\n    address: 198.18.0.11\n    port: 2222\n    become: true\n    vars: {network_interface: eth1, site: lab}\n  localhost: {connection: local}\n';

  it('maps host keys, become and vars; group_vars apply below the host', () => {
    const inventory = load({ 'inventory.yml': `${hosts}groups:\n  control: [ctl01]\n  compute: [localhost]\ngroup_vars:\n  all: {site: default, api_interface: eth0}\n  control: {ansible_user: kolla}\n` });
    expect(host(inventory, 'ctl01')).toEqual({
      name: 'ctl01',
      connection: 'ssh',
      address: '198.18.0.11',
      port: 2222,
      user: 'kolla',
      become: true,
      vars: { site: 'lab', api_interface: 'eth0', network_interface: 'eth1' },
    });
    expect(host(inventory, 'localhost')).toEqual({ name: 'localhost', connection: 'local', become: false, vars: { site: 'default', api_interface: 'eth0' } });
  });

  it('names file, line and key of each malformed typed value', () => {
    const cases: [string, string, RegExp][] = [
      ['address: "198.18.0.1 -p 2"', 'hosts.ctl01.address', /an IP address or a host name/],
      ['port: 0', 'hosts.ctl01.port', /port number/],
      ['port: 22.5', 'hosts.ctl01.port', /port number/],
      ['user: "x y"', 'hosts.ctl01.user', /user name/],
      ['connection: winrm', 'hosts.ctl01.connection', /local or ssh/],
      ['become: sometimes', 'hosts.ctl01.become', /true, false/],
      ['api_address: ctl01.example', 'hosts.ctl01.api_address', /an IP address/],
      ['vars: {api_interface: "eth0 up"}', 'hosts.ctl01.vars.api_interface', /network interface name/],
      ['vars: {tunnel_address: nope}', 'hosts.ctl01.vars.tunnel_address', /an IP address/],
      ['vars: {nested: {a: 1}}', 'hosts.ctl01.vars.nested', /a string, a number or a boolean/],
      ['vars: {"bad-name": 1}', 'hosts.ctl01.vars.bad-name', /not a variable name/],
      ['vars: {motd: "a\\nb"}', 'hosts.ctl01.vars.motd', /control character/],
      ['vars: {ansible_user: x}\n    user: y', 'hosts.ctl01.vars.ansible_user', /also given as "user"/],
      ['adress: 198.18.0.1', 'hosts.ctl01.adress', /unknown host key/],
    ];
    for (const [line, key, message] of cases) {
      const file = write({ 'inventory.yml': `hosts:\n  ctl01:\n    ${line}\ngroups:\n  control: [ctl01]\n` });
      expect(() => loadInventory(file), line).toThrow(message);
      expect(() => loadInventory(file), line).toThrow(`${file}:3 (key ${key})`);
    }
    const badName = write({ 'inventory.yml': 'hosts:\n  "ctl01;reboot": {}\ngroups: {}\n' });
    expect(() => loadInventory(badName)).toThrow(`${badName}:2 (key hosts.ctl01;reboot): invalid host name`);
    const groupVars = write({ 'inventory.yml': 'hosts:\n  ctl01: {}\ngroups:\n  control: [ctl01]\ngroup_vars:\n  compute: {}\n' });
    expect(() => loadInventory(groupVars)).toThrow(`${groupVars}:6 (key group_vars.compute): group "compute" is not defined`);
  });
});

describe('matchHosts (--limit)', () => {
  const inventory = load({
    'hosts.ini': '[control]\nctl01\nctl02\n[compute]\ncmp01\ncmp02\ncmp03\n[nova-compute:children]\ncompute\n[ungrouped]\nlonely\n',
  });

  it('matches names, groups, globs, regexes, all and ungrouped', () => {
    expect(matchHosts(inventory, 'ctl01')).toEqual(['ctl01']);
    expect(matchHosts(inventory, 'nova-compute')).toEqual(['cmp01', 'cmp02', 'cmp03']);
    expect(matchHosts(inventory, 'cmp0[12]')).toEqual(['cmp01', 'cmp02']);
    expect(matchHosts(inventory, 'c*01')).toEqual(['ctl01', 'cmp01']);
    expect(matchHosts(inventory, '~^ctl\\d+$')).toEqual(['ctl01', 'ctl02']);
    expect(matchHosts(inventory, 'all')).toHaveLength(6);
    expect(matchHosts(inventory, '*')).toHaveLength(6);
    expect(matchHosts(inventory, 'ungrouped')).toEqual(['lonely']);
  });

  it('unions, then intersects (&), then excludes (!), whatever the order; commas or colons', () => {
    expect(matchHosts(inventory, '!cmp02,compute')).toEqual(['cmp01', 'cmp03']);
    expect(matchHosts(inventory, 'control:compute:!ctl02')).toEqual(['ctl01', 'cmp01', 'cmp02', 'cmp03']);
    expect(matchHosts(inventory, 'all,&nova-compute,!cmp01')).toEqual(['cmp02', 'cmp03']);
    expect(matchHosts(inventory, '!control')).toEqual(['cmp01', 'cmp02', 'cmp03', 'lonely']);
    expect(matchHosts(inventory, 'cmp0[1:3]')).toEqual(['cmp01', 'cmp03']);
  });

  it('names an element that matches nothing', () => {
    expect(() => matchHosts(inventory, 'control,computee')).toThrow(InputError);
    expect(() => matchHosts(inventory, 'control,computee')).toThrow(/"computee" matches no host or group/);
    expect(() => matchHosts(inventory, 'all:!nothing*')).toThrow(/"!nothing\*" matches no host or group/);
    expect(() => matchHosts(inventory, '~[')).toThrow(/not a valid regular expression/);
    expect(() => matchHosts(inventory, 'cmp0[9-1]')).toThrow(/not a valid glob/);
    expect(() => matchHosts(inventory, ' , ')).toThrow(/empty/);
    expect(() => matchHosts(inventory, 'control:&compute')).toThrow(/leaves no host/);
  });
});
