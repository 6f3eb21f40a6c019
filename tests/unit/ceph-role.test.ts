// kolla-ts's own Ceph: the role, templates and images read and rendered as
// deploy and build would (off unless enabled, where it runs, what ceph.conf
// and the keyrings say, secrets only in 0600 files and on stdin), the typed
// secrets genpwd makes for it, and the images' hooks that make a monitor
// store and an OSD only when there is none, run against stand-in commands.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { cephxKey, generatePasswords, isCephxKey, loadPasswords, secretKind } from '../../src/config/passwords.ts';
import { loadRoles } from '../../src/plan/roles.ts';
import { PROJECT_ROOT as ROOT } from '../helpers/environment.ts';
import { PROJECT_ROLES as roles, profileImages, renderRoles, ROLE_PASSWORDS } from '../helpers/project.ts';

const ceph = roles.find((r) => r.service === 'ceph')!;

/** Real-shaped Ceph secrets over the fake passwords of the other roles. */
const PASSWORDS = {
  ...ROLE_PASSWORDS,
  ...Object.fromEntries(ceph.passwords.map((key) => [key, secretKind(key).generate()])),
};

const STORAGE_HOSTS = (names: string[]): string =>
  `hosts:\n${names.map((n) => `  ${n}: {connection: local}\n`).join('')}groups:\n  control: [${names[0]}]\n  network: [${names[0]}]\n  compute: [${names[0]}]\n  storage: [${names.join(', ')}]\n`;

function cephState(hosts = ['ctl1'], globals = '') {
  const facts = new Map(hosts.map((name, i) => [name, { apiAddress: `198.51.100.${i + 1}` }]));
  const { state, globals: values } = renderRoles({ globals: `enable_ceph: true\n${globals}`, inventory: STORAGE_HOSTS(hosts), facts, passwords: PASSWORDS, services: ['ceph'] });
  return { service: state.services.find((s) => s.role.service === 'ceph')!, globals: values };
}

const file = (container: { configFiles: { name: string; content: string; mode: number }[] }, name: string): string => {
  const found = container.configFiles.find((f) => f.name === name);
  expect(found, name).toBeDefined();
  expect(found!.mode).toBe(0o600);
  return found!.content;
};

describe('the ceph role', () => {
  it('is off unless globals.yml turns it on, and deploys nothing then', () => {
    expect(ceph.enable).toBe('enable_ceph');
    expect(ceph.enabledByDefault).toBe(false);
    const { state, globals } = renderRoles();
    expect(globals.enable_ceph).toBe(false);
    expect(globals.enable_keystone).toBe(true);
    expect(state.services.map((s) => s.role.service)).not.toContain('ceph');
  });

  it('reads enabled_by_default as a boolean, true when absent', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kolla-ts-roles-'));
    const write = (service: string, extra: string): void => {
      mkdirSync(join(dir, service), { recursive: true });
      writeFileSync(join(dir, service, 'role.yml'), `service: ${service}\ngroup: control\n${extra}`);
    };
    write('plain', '');
    write('optional', 'enabled_by_default: false\n');
    expect(loadRoles(dir).map((r) => [r.service, r.enabledByDefault])).toEqual([
      ['optional', false],
      ['plain', true],
    ]);
    write('optional', 'enabled_by_default: maybe\n');
    expect(() => loadRoles(dir)).toThrow(`${join(dir, 'optional', 'role.yml')}:3 (key enabled_by_default): expected true or false`);
  });

  it('runs a monitor, a manager and an OSD on each storage host, its data in named volumes, and bootstraps in order', () => {
    expect(ceph.groups).toEqual(['storage']);
    expect(ceph.requires).toEqual([]);
    expect(ceph.containers.map((c) => [c.name, c.image, c.privileged])).toEqual([
      ['ceph_mon', 'ceph-mon', false],
      ['ceph_mgr', 'ceph-mgr', false],
      ['ceph_osd', 'ceph-osd', false],
    ]);
    expect(ceph.containers.find((c) => c.name === 'ceph_mon')!.volumes).toContain('ceph_mon:/var/lib/ceph/mon');
    expect(ceph.containers.find((c) => c.name === 'ceph_osd')!.volumes).toContain('ceph_osd:/var/lib/ceph/osd');
    expect(ceph.steps.map((s) => (s.kind === 'start' ? `start ${s.containers.join()}` : s.kind === 'bootstrap' || s.kind === 'exec' ? `${s.kind} ${s.container}` : s.kind))).toEqual([
      'bootstrap ceph_mon',
      'start ceph_mon',
      'exec ceph_mon',
      'start ceph_mgr',
      'bootstrap ceph_osd',
      'start ceph_osd',
      'exec ceph_mon',
    ]);

    const { service } = cephState(['st1', 'st2', 'st3']);
    expect(service.containers.map((c) => `${c.name}@${c.host}`).sort()).toEqual(
      ['st1', 'st2', 'st3'].flatMap((h) => [`ceph_mgr@${h}`, `ceph_mon@${h}`, `ceph_osd@${h}`]).sort(),
    );
    // Once for the cluster, on the first storage host.
    expect(service.steps.filter((s) => s.step.kind !== 'start').map((s) => s.host)).toEqual(['st1', 'st1', 'st1', 'st1']);
  });

  it('renders ceph.conf with the fsid, every monitor, this host\'s address, one-copy pools and a sparse BlueStore file', () => {
    const { service } = cephState(['st1', 'st2', 'st3'], 'ceph_osd_file_size_gb: 7\n');
    const osd = service.containers.find((c) => c.name === 'ceph_osd' && c.host === 'st2')!;
    const conf = file(osd, 'ceph.conf');
    expect(conf).toContain(`fsid = ${PASSWORDS.ceph_fsid}\n`);
    expect(conf).toContain('mon_initial_members = st1,st2,st3\n');
    expect(conf).toContain(
      'mon_host = [v2:198.51.100.1:3300,v1:198.51.100.1:6789],[v2:198.51.100.2:3300,v1:198.51.100.2:6789],[v2:198.51.100.3:3300,v1:198.51.100.3:6789]\n',
    );
    expect(conf).toContain('public_addr = 198.51.100.2\n');
    expect(conf).not.toContain('public_network');
    expect(conf).toMatch(/^osd_pool_default_size = 1$/m);
    expect(conf).toMatch(/^mon_allow_pool_size_one = true$/m);
    expect(conf).toMatch(/^mon_warn_on_pool_no_redundancy = false$/m);
    expect(conf).toMatch(/^auth_allow_insecure_global_id_reclaim = false$/m);
    expect(conf).toMatch(/^bluestore_block_create = true$/m);
    expect(conf).toMatch(/^bluestore_block_size = 7G$/m);

    const mon = service.containers.find((c) => c.name === 'ceph_mon' && c.host === 'st1')!;
    expect(file(mon, 'kolla-ceph-monitors')).toBe(
      'st1 [v2:198.51.100.1:3300,v1:198.51.100.1:6789]\nst2 [v2:198.51.100.2:3300,v1:198.51.100.2:6789]\nst3 [v2:198.51.100.3:3300,v1:198.51.100.3:6789]\n',
    );
    expect(JSON.parse(file(mon, 'config.json')).command).toBe('ceph-mon -f -i st1');
    expect(mon.ports).toEqual([6789, 3300]);
    const mgr = service.containers.find((c) => c.name === 'ceph_mgr' && c.host === 'st3')!;
    const mgrJson = JSON.parse(file(mgr, 'config.json'));
    expect(mgrJson.command).toBe('ceph-mgr -f -i st3');
    expect(mgrJson.config_files.map((f: { dest: string }) => f.dest)).toContain('/etc/ceph/ceph.mgr.st3.keyring');
    expect(file(mgr, 'ceph.mgr.keyring')).toBe(`[mgr.st3]\n\tkey = ${PASSWORDS.ceph_mgr_cephx_key}\n`);

    const pinned = cephState(['st1'], 'ceph_public_network: 198.51.100.0/24\nceph_pool_size: 3\n').service.containers[0]!;
    expect(file(pinned, 'ceph.conf')).toContain('public_network = 198.51.100.0/24\n');
    expect(file(pinned, 'ceph.conf')).not.toContain('public_addr');
    expect(file(pinned, 'ceph.conf')).toMatch(/^osd_pool_default_size = 3$/m);
  });

  it('keeps every key in 0600 files and on stdin, never in environments, labels, commands or step descriptions', () => {
    const { service } = cephState(['st1']);
    const mon = service.containers.find((c) => c.name === 'ceph_mon')!;
    expect(file(mon, 'ceph.mon.keyring')).toContain(`[mon.]\n\tkey = ${PASSWORDS.ceph_mon_cephx_key}\n\tcaps mon = "allow *"\n`);
    expect(file(mon, 'ceph.mon.keyring')).toContain(`[client.admin]\n\tkey = ${PASSWORDS.ceph_admin_cephx_key}\n`);
    expect(file(service.containers.find((c) => c.name === 'ceph_osd')!, 'ceph.client.bootstrap-osd.keyring')).toContain(PASSWORDS.ceph_bootstrap_osd_cephx_key);
    const secrets = ceph.passwords.map((key) => PASSWORDS[key]!);
    for (const container of service.containers) {
      const visible = JSON.stringify([container.spec.environment, container.spec.labels, container.definition, container.spec.volumes, container.spec.healthcheck]);
      for (const secret of secrets) expect(visible, container.name).not.toContain(secret);
    }
    for (const step of service.steps) {
      const visible = JSON.stringify([step.step, step.description]);
      for (const secret of secrets) expect(visible, step.description).not.toContain(secret);
    }
  });

  it('imports the managers, the OSD bootstrap key and the OpenStack clients with their caps, keys on stdin', () => {
    const { service } = cephState(['st1', 'st2']);
    const step = service.steps.find((s) => s.step.kind === 'exec' && s.step.command.join(' ') === 'ceph auth import -i -')!;
    const keyring = step.stdin!;
    expect(keyring).toContain(`[mgr.st1]\n  key = ${PASSWORDS.ceph_mgr_cephx_key}\n  caps mon = "allow profile mgr"\n`);
    expect(keyring).toContain('[mgr.st2]\n');
    expect(keyring).toContain(`[client.bootstrap-osd]\n  key = ${PASSWORDS.ceph_bootstrap_osd_cephx_key}\n  caps mon = "allow profile bootstrap-osd"\n`);
    expect(keyring).toContain(`[client.glance]\n  key = ${PASSWORDS.ceph_glance_cephx_key}\n  caps mon = "profile rbd"\n  caps osd = "profile rbd pool=images"\n`);
    expect(keyring).toMatch(/\[client\.cinder\]\n {2}key = \S+\n {2}caps mon = "profile rbd"\n {2}caps osd = "profile rbd pool=volumes, profile rbd pool=vms, profile rbd pool=backups, profile rbd-read-only pool=images"\n/);
    // Every section Ceph's keyring parser will see has a key. Nova uses cinder's user unless told otherwise (kolla-ansible's default).
    const sections = (text: string): string[] => [...text.matchAll(/^\[([^\]]+)\]$/gm)].map((m) => m[1]!);
    expect(sections(keyring)).toEqual(['mgr.st1', 'mgr.st2', 'client.bootstrap-osd', 'client.glance', 'client.cinder']);
    expect(keyring.match(/^ {2}key = /gm)).toHaveLength(5);
    expect(service.steps.at(-1)!.stdin).toBe('1\nimages volumes vms backups\n');

    // Users and pools of other names, and a nova user of its own.
    const named = cephState(['st1'], 'ceph_nova_user: nova\nceph_cinder_user: cinder-rbd\nceph_cinder_pool_name: cinder-volumes\nceph_glance_pool_name: glance-images\n').service;
    const renamed = named.steps.find((s) => s.step.kind === 'exec' && s.step.command.join(' ') === 'ceph auth import -i -')!.stdin!;
    expect(sections(renamed)).toEqual(['mgr.st1', 'client.bootstrap-osd', 'client.glance', 'client.cinder-rbd', 'client.nova']);
    expect(renamed).toContain('  caps osd = "profile rbd pool=glance-images"\n');
    expect(renamed).toContain('  caps osd = "profile rbd pool=cinder-volumes, profile rbd pool=vms, profile rbd pool=backups, profile rbd-read-only pool=glance-images"\n');
    expect(renamed).toContain(
      `[client.nova]\n  key = ${PASSWORDS.ceph_nova_cephx_key}\n  caps mon = "profile rbd"\n  caps osd = "profile rbd pool=vms, profile rbd pool=cinder-volumes, profile rbd-read-only pool=glance-images"\n`,
    );
    expect(named.steps.at(-1)!.stdin).toBe('1\nglance-images cinder-volumes vms backups\n');
  });

  it('makes the pools idempotently: the script, run against a stand-in ceph twice, issues the same commands', () => {
    const { service } = cephState(['st1']);
    const pools = service.steps.at(-1)!;
    if (pools.step.kind !== 'exec') throw new Error('the last step is not an exec');
    const bin = mkdtempSync(join(tmpdir(), 'kolla-ts-ceph-bin-'));
    const log = join(bin, 'log');
    for (const tool of ['ceph', 'rbd', 'timeout']) {
      const body = tool === 'timeout' ? 'shift; exec "$@"' : `echo "${tool} $*" >> ${log}`;
      writeFileSync(join(bin, tool), `#!/bin/sh\n${body}\n`);
      chmodSync(join(bin, tool), 0o755);
    }
    const [shell, ...args] = pools.step.command;
    const run = (): string => {
      writeFileSync(log, '');
      execFileSync(shell!, args, { input: pools.stdin, env: { PATH: `${bin}:/usr/bin:/bin` } });
      return readFileSync(log, 'utf8');
    };
    const first = run();
    expect(first.split('\n').filter((l) => l.startsWith('ceph osd pool set images'))).toEqual([
      'ceph osd pool set images size 1 --yes-i-really-mean-it',
      'ceph osd pool set images min_size 1',
    ]);
    expect(first).toContain('ceph osd pool create backups\n');
    expect(first).toContain('rbd pool init vms\n');
    expect(run()).toBe(first);
  });

  it('is built by the storage and default profiles', () => {
    for (const name of ['storage', 'default']) expect(profileImages(name, 'ceph'), name).toEqual(['ceph-base', 'ceph-mgr', 'ceph-mon', 'ceph-osd']);
  });
});

describe('Ceph secrets', () => {
  it('makes cephx keys the way Ceph encodes them: type AES, creation time, a 16-byte secret, base64', () => {
    const secret = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const key = cephxKey(secret, new Date(Date.UTC(2026, 11, 3, 6, 0, 0, 250)));
    const bytes = Buffer.from(key, 'base64');
    expect(key).toHaveLength(40);
    expect(bytes).toHaveLength(28);
    expect(bytes.readUInt16LE(0)).toBe(1);
    expect(bytes.readUInt32LE(2)).toBe(Date.UTC(2026, 11, 3, 6, 0, 0) / 1000);
    expect(bytes.readUInt32LE(6)).toBe(250_000_000);
    expect(bytes.readUInt16LE(10)).toBe(16);
    expect(bytes.subarray(12).equals(secret)).toBe(true);
    expect(isCephxKey(key)).toBe(true);
    // One ceph-authtool --gen-print-key printed (Ceph 16.2.15, in the ceph-base image).
    expect(isCephxKey('AQCCCRFrMWeqJxAATtWOhbgaqXNndAWziIdUZw==')).toBe(true);
    expect(new Set(Array.from({ length: 20 }, () => cephxKey())).size).toBe(20);
    for (const bad of ['', 'AQ==', 'not base64 at all!', Buffer.alloc(28).toString('base64'), `${cephxKey().slice(0, -2)}A=`, cephxKey() + 'AAAA']) {
      expect(isCephxKey(bad), bad).toBe(false);
    }
  });

  it('genpwd fills each key with its kind and keeps what is set; a wrong kind is refused with file, line and key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kolla-ts-ceph-pwd-'));
    const passwords = join(dir, 'passwords.yml');
    writeFileSync(passwords, 'ceph_glance_cephx_key: AQCCCRFrMWeqJxAATtWOhbgaqXNndAWziIdUZw==\n');
    const { added } = generatePasswords(passwords, ceph.passwords);
    expect(added.sort()).toEqual(ceph.passwords.filter((k) => k !== 'ceph_glance_cephx_key').sort());
    const values = yaml.load(readFileSync(passwords, 'utf8')) as Record<string, string>;
    expect(values.ceph_fsid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(values.ceph_glance_cephx_key).toBe('AQCCCRFrMWeqJxAATtWOhbgaqXNndAWziIdUZw==');
    for (const key of ceph.passwords.filter((k) => k.endsWith('_cephx_key'))) expect(isCephxKey(values[key]!), key).toBe(true);
    expect(new Set(ceph.passwords.map((k) => values[k])).size).toBe(ceph.passwords.length);
    expect(loadPasswords(passwords, ceph.passwords).ceph_fsid).toBe(values.ceph_fsid);

    writeFileSync(passwords, readFileSync(passwords, 'utf8').replace(/^ceph_nova_cephx_key: .*$/m, 'ceph_nova_cephx_key: 0123456789abcdef0123456789abcdef01234567'));
    const line = readFileSync(passwords, 'utf8').split('\n').findIndex((l) => l.startsWith('ceph_nova_cephx_key:')) + 1;
    expect(() => loadPasswords(passwords, ceph.passwords)).toThrow(`${passwords}:${line} (key ceph_nova_cephx_key): expected a cephx key`);
  });
});

/**
 * A hook of a ceph image, runnable here: its paths moved under `root`, the
 * helpers it sources given without touching this machine (no directories
 * made under /var/log or /run), and stand-ins for the Ceph commands in `bin`.
 */
function hookRunner(image: 'ceph-mon' | 'ceph-osd', stubs: Record<string, string>) {
  const root = mkdtempSync(join(tmpdir(), `kolla-ts-${image}-`));
  const bin = join(root, 'bin');
  mkdirSync(bin);
  const log = join(root, 'calls');
  writeFileSync(log, '');
  for (const [name, body] of Object.entries(stubs)) {
    writeFileSync(join(bin, name), `#!/bin/sh\necho "${name} $*" >> ${log}\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  }
  const functions = readFileSync(join(ROOT, 'images', 'base', 'kolla_functions.sh'), 'utf8');
  const cephPart = readFileSync(join(ROOT, 'images', 'ceph', 'ceph-base', 'ceph_extend_start'), 'utf8').replace('. /usr/local/lib/kolla/functions.sh', '');
  writeFileSync(join(root, 'ceph_extend_start'), `${functions}\nkolla_dir() { :; }\n${cephPart}`);
  const hook = readFileSync(join(ROOT, 'images', 'ceph', image, 'kolla_extend_start'), 'utf8')
    .replaceAll('/tmp/', `${root}/tmp-`)
    .replaceAll('/usr/local/lib/kolla/ceph_extend_start', join(root, 'ceph_extend_start'))
    .replaceAll('/var/lib/ceph/', `${root}/data/`)
    .replaceAll('/etc/ceph/', `${root}/etc/`);
  writeFileSync(join(root, 'hook'), hook);
  mkdirSync(join(root, 'data', image === 'ceph-mon' ? 'mon' : 'osd'), { recursive: true });
  mkdirSync(join(root, 'etc'));
  return {
    root,
    /** Sources the hook as kolla_start does (set -e) and prints ARGS; returns the output and the commands it ran. */
    run(cmd: string, env: Record<string, string> = {}): { out: string; calls: string[] } {
      writeFileSync(log, '');
      const out = execFileSync('sh', ['-c', `set -e\nCMD=$1\nARGS=""\n. ${join(root, 'hook')}\necho "ARGS=$ARGS"`, 'sh', cmd], {
        env: { PATH: `${bin}:/usr/bin:/bin`, ...env },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      return { out, calls: readFileSync(log, 'utf8').split('\n').filter(Boolean) };
    },
  };
}

describe('the ceph images\' hooks', () => {
  it('ceph-mon makes a store from the monitors listed, only when there is none, whole or not at all', () => {
    const hook = hookRunner('ceph-mon', {
      'ceph-conf': 'echo 0b3c2e8e-1d7e-4f0a-9c55-5b8f1c0a7e11',
      // --print: the map's fsid (the store's: STORE_FSID, else this cloud's); else a new map in the last argument.
      monmaptool: 'case " $* " in *" --print "*) echo "epoch 0"; echo "fsid ${STORE_FSID:-0b3c2e8e-1d7e-4f0a-9c55-5b8f1c0a7e11}" ;; *) for last; do :; done; echo monmap > "$last" ;; esac',
      // --mon-data DIR: a store appears there.
      'ceph-mon': 'while [ $# -gt 0 ]; do [ "$1" = --mon-data ] && mkdir -p "$2" && touch "$2/store.db"; shift; done',
    });
    writeFileSync(join(hook.root, 'etc', 'kolla-ceph-monitors'), 'st1 [v2:198.51.100.1:3300,v1:198.51.100.1:6789]\nst2 [v2:198.51.100.2:3300,v1:198.51.100.2:6789]\n');
    const first = hook.run('ceph-mon -f -i st1');
    const store = join(hook.root, 'data', 'mon', 'ceph-st1');
    expect(first.calls).toEqual([
      'ceph-conf --lookup fsid',
      `monmaptool --create --clobber --fsid 0b3c2e8e-1d7e-4f0a-9c55-5b8f1c0a7e11 --addv st1 [v2:198.51.100.1:3300,v1:198.51.100.1:6789] --addv st2 [v2:198.51.100.2:3300,v1:198.51.100.2:6789] ${hook.root}/tmp-kolla-monmap`,
      `ceph-mon --mkfs -i st1 --mon-data ${store}.kolla-new --monmap ${hook.root}/tmp-kolla-monmap --keyring ${hook.root}/etc/ceph.mon.keyring`,
    ]);
    expect(existsSync(join(store, 'store.db'))).toBe(true);
    expect(existsSync(`${store}.kolla-new`)).toBe(false);
    expect(first.out).toContain('ARGS=\n');
    // A store exists: nothing is made, in either mode; only its cluster is read, and it is this cloud's.
    const readOnly = [
      'ceph-conf --lookup fsid',
      `ceph-mon -c /dev/null -i st1 --mon-data ${store} --extract-monmap ${hook.root}/tmp-kolla-monmap`,
      `monmaptool -c /dev/null --print ${hook.root}/tmp-kolla-monmap`,
    ];
    expect(hook.run('ceph-mon -f -i st1').calls).toEqual(readOnly);
    expect(hook.run('ceph-mon -f -i st1', { KOLLA_BOOTSTRAP: '' })).toEqual({ out: expect.not.stringContaining('ARGS='), calls: readOnly });
    // A store of another cluster (another passwords.yml) is refused, naming both.
    const other = '7d1e6c3a-2b4f-4e8a-9c1d-3f5a7b9c0d2e';
    expect(() => hook.run('ceph-mon -f -i st1', { STORE_FSID: other })).toThrow(new RegExp(`belongs to Ceph cluster ${other}, not to this cloud's ceph_fsid 0b3c2e8e-1d7e-4f0a-9c55-5b8f1c0a7e11`));
    // A mkfs that failed leaves no store: the next start makes it again.
    rmSync(store, { recursive: true });
    mkdirSync(`${store}.kolla-new`);
    expect(hook.run('ceph-mon -f -i st1').calls).toHaveLength(3);
    expect(existsSync(join(store, 'store.db'))).toBe(true);
  });

  it('ceph-osd makes its OSD once (ceph osd new with the key in a file, then mkfs), and starts it by id', () => {
    const hook = hookRunner('ceph-osd', {
      'ceph-authtool': 'echo AQCCCRFrMWeqJxAATtWOhbgaqXNndAWziIdUZw==',
      // osd new UUID -i FILE: the secret must be in FILE; the same id every time (Ceph's answer for a known uuid).
      ceph: 'for last; do :; done; grep -q \'"cephx_secret": "AQCCCRFrMWeqJxAATtWOhbgaqXNndAWziIdUZw=="\' "$last" && echo 3',
      // --osd-data DIR --osd-uuid UUID: BlueStore's files, "ready" last (unless told to fail half-way).
      'ceph-osd': [
        'while [ $# -gt 0 ]; do case $1 in --osd-data) d=$2;; --osd-uuid) u=$2;; esac; shift; done',
        'echo "$u" > "$d/fsid"; : > "$d/block"',
        '[ -z "$FAIL_MKFS" ] || exit 1',
        'echo ready > "$d/ready"',
      ].join('\n'),
    });
    const data = join(hook.root, 'data', 'osd');
    // Interrupted after ceph osd new: the uuid and key are kept, the half-made directory is made again.
    expect(() => hook.run('ceph-osd -f', { FAIL_MKFS: '1' })).toThrow();
    const uuid = readFileSync(join(data, 'kolla-osd-uuid'), 'utf8').trim();
    expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(existsSync(join(data, 'ceph-3', 'ready'))).toBe(false);

    const first = hook.run('ceph-osd -f');
    expect(first.calls).toEqual([
      `ceph --name client.bootstrap-osd --keyring ${hook.root}/etc/ceph.client.bootstrap-osd.keyring osd new ${uuid} -i ${data}/kolla-osd-new.json`,
      `ceph-osd --mkfs -i 3 --osd-uuid ${uuid} --osd-data ${data}/ceph-3 --keyring ${data}/ceph-3/keyring`,
    ]);
    expect(first.out).toContain('ARGS=-i 3\n');
    expect(readFileSync(join(data, 'ceph-3', 'keyring'), 'utf8')).toBe('[osd.3]\n\tkey = AQCCCRFrMWeqJxAATtWOhbgaqXNndAWziIdUZw==\n');
    expect(existsSync(join(data, 'kolla-osd-new.json'))).toBe(false);
    for (const secretFile of ['kolla-osd-key', 'kolla-osd-uuid', join('ceph-3', 'keyring')]) {
      expect(execFileSync('stat', ['-c', '%a', join(data, secretFile)], { encoding: 'utf8' }).trim(), secretFile).toBe('600');
    }
    // Ready: nothing runs again; the bootstrap mode ends before the command.
    expect(hook.run('ceph-osd -f')).toEqual({ out: expect.stringContaining('ARGS=-i 3\n'), calls: [] });
    expect(hook.run('ceph-osd -f', { KOLLA_BOOTSTRAP: '' })).toEqual({ out: '', calls: [] });
  });
});
