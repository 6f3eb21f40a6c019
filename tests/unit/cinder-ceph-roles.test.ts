// The cinder role, and glance and nova on Ceph RBD, read and rendered as
// deploy would: with kolla-ts's own Ceph (enable_ceph), with an existing
// cluster whose files the operator puts under config/, and with every Ceph
// switch off (nothing of the above in any file).
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.ts';
import type { DesiredState } from '../../src/plan/desired.ts';
import { PROJECT_ROLES as roles, profileImages, renderRoles, ROLE_PASSWORDS as PASSWORDS } from '../helpers/project.ts';

/** One host in every group, storage too. */
const INVENTORY = 'hosts:\n  ctl1: {connection: local}\ngroups:\n  control: [ctl1]\n  network: [ctl1]\n  compute: [ctl1]\n  storage: [ctl1]\n';
const ALL_ON = 'enable_cinder: true\ncinder_backend_ceph: true\nglance_backend_ceph: true\nnova_backend_ceph: true\n';
const OWN_CEPH = `enable_ceph: true\n${ALL_ON}`;

/** An existing cluster's files, as an operator would copy them (kolla-ansible's layout). */
const EXTERNAL_CONF = '[global]\nfsid = 1d89fec3-325a-4963-a950-c4afedd37fe3\nmon_host = 198.51.100.50\n';
const CINDER_KEYRING = '[client.cinder]\n\tkey = AQAg5YRXpChaGRAAlTSCleesthCRmCYrfQVX1w==\n';
const GLANCE_KEYRING = '[client.glance]\n\tkey = AQAg5YRXS0qxLRAAXe6a4R1a15AoRx7ft80DhA==\n';
const EXTERNAL_FILES = {
  'cinder/ceph.conf': EXTERNAL_CONF,
  'cinder/ceph.client.cinder.keyring': CINDER_KEYRING,
  'glance/ceph.conf': EXTERNAL_CONF,
  'glance/ceph.client.glance.keyring': GLANCE_KEYRING,
  'nova/ceph.conf': EXTERNAL_CONF,
  'nova/ceph.client.cinder.keyring': CINDER_KEYRING,
};

const render = (globals: string, custom?: Record<string, string>): DesiredState =>
  renderRoles({ globals, inventory: INVENTORY, ...(custom ? { custom } : {}) }).state;

function container(state: DesiredState, name: string) {
  const found = state.services.flatMap((s) => s.containers).find((c) => c.name === name);
  if (!found) throw new Error(`no container ${name}`);
  return found;
}

/** name → content of a container's config files. */
function files(state: DesiredState, name: string): Record<string, string> {
  return Object.fromEntries(container(state, name).configFiles.map((f) => [f.name, f.content]));
}

/** The text of one INI section (up to the next section). */
function section(ini: string, name: string): string {
  const start = ini.indexOf(`\n[${name}]\n`);
  if (start < 0) return '';
  const rest = ini.slice(start + name.length + 4);
  const end = rest.search(/^\[/m);
  return end < 0 ? rest : rest.slice(0, end);
}

const configJson = (state: DesiredState, name: string) =>
  JSON.parse(files(state, name)['config.json']!) as { config_files: { source: string; dest: string; owner: string; perm: string }[]; directories: { path: string; perm: string }[] };

describe('what waits for a Ceph of kolla-ts\'s own', () => {
  const after = (state: DesiredState, service: string) => state.services.find((s) => s.role.service === service)!.after;

  it('cinder always; glance and nova only while their data is in it, so their migrations need not wait for Ceph\'s start', () => {
    const allOn = render(OWN_CEPH);
    expect(['cinder', 'glance', 'nova'].map((s) => after(allOn, s))).toEqual([['ceph'], ['ceph'], ['ceph']]);
    const volumesOnly = render('enable_ceph: true\nenable_cinder: true\ncinder_backend_ceph: true\n');
    expect(['cinder', 'glance', 'nova'].map((s) => after(volumesOnly, s))).toEqual([['ceph'], [], []]);
  });
});

describe('the cinder role', () => {
  const cinder = roles.find((r) => r.service === 'cinder')!;

  it('is off by default; api and scheduler on control, volume on storage, after a Ceph of its own', () => {
    expect(cinder.enabledByDefault).toBe(false);
    expect(cinder.groups).toEqual(['control']);
    expect(cinder.requires).toEqual(['mariadb', 'rabbitmq', 'memcached', 'keystone', 'kolla-toolbox']);
    expect(cinder.after).toEqual([{ service: 'ceph', when: [] }]);
    expect(cinder.containers.map((c) => [c.name, c.image, c.groups ?? cinder.groups, c.privileged])).toEqual([
      ['cinder_api', 'cinder-api', ['control'], false],
      ['cinder_scheduler', 'cinder-scheduler', ['control'], false],
      ['cinder_volume', 'cinder-volume', ['storage'], false],
    ]);
    expect(cinder.steps.map((s) => s.kind)).toEqual(['database', 'bootstrap', 'register', 'start', 'start', 'start']);
    expect(cinder.upgrade.before.map((s) => s.kind === 'oneshot' && Object.keys(s.environment))).toEqual([['KOLLA_UPGRADE_CHECK'], ['KOLLA_UPGRADE']]);
    expect(cinder.upgrade.after).toEqual([
      { kind: 'restart', containers: ['cinder_scheduler', 'cinder_volume', 'cinder_api'] },
      { kind: 'oneshot', container: 'cinder_api', environment: { KOLLA_OSM: '' }, okExitCodes: [0] },
    ]);
    expect(renderRoles().globals.enable_cinder).toBe(false);
  });

  it('registers cinderv3 (volumev3) with a per-project URL; the password only on stdin', () => {
    const service = render(OWN_CEPH).services.find((s) => s.role.service === 'cinder')!;
    const step = service.steps.find((s) => s.step.kind === 'register')!;
    const doc = JSON.parse(step.stdin!);
    expect(doc.services).toEqual([{ name: 'cinderv3', type: 'volumev3', description: 'OpenStack Block Storage' }]);
    expect(doc.endpoints.map((e: { interface: string; url: string }) => `${e.interface} ${e.url}`)).toEqual([
      'public http://198.51.100.10:8776/v3/%(project_id)s',
      'internal http://198.51.100.10:8776/v3/%(project_id)s',
      'admin http://198.51.100.10:8776/v3/%(project_id)s',
    ]);
    expect(doc.users).toEqual([{ name: 'cinder', password: PASSWORDS.cinder_keystone_password, project: 'service', role: 'admin' }]);
    expect(step.description).not.toContain(PASSWORDS.cinder_keystone_password);
  });

  it('serves the API from Apache and keeps the keys in 0600 files, never in a definition, label or environment', () => {
    const state = render(OWN_CEPH);
    const api = container(state, 'cinder_api');
    expect(api.definition.healthcheck).toEqual(['healthcheck_curl', 'http://198.51.100.1:8776']);
    expect(files(state, 'cinder_api')['cinder-wsgi.conf']).toContain('WSGIScriptAlias / /usr/bin/cinder-wsgi\n');
    expect(configJson(state, 'cinder_api')).toMatchObject({ command: '/usr/sbin/apache2 -DFOREGROUND' });
    for (const c of state.services.flatMap((s) => s.containers)) {
      expect(c.configFiles.every((f) => f.mode === 0o600)).toBe(true);
      const visible = JSON.stringify([c.spec.environment, c.spec.labels, c.definition, c.spec.volumes]);
      for (const secret of Object.values(PASSWORDS)) expect(visible, c.name).not.toContain(secret);
    }
  });

  it('is built by the main and default profiles', () => {
    for (const name of ['main', 'default']) expect(profileImages(name, 'cinder'), name).toEqual(['cinder-api', 'cinder-base', 'cinder-scheduler', 'cinder-volume']);
  });
});

describe("Ceph RBD with kolla-ts's own cluster", () => {
  const state = render(OWN_CEPH);
  const monHost = 'mon_host = [v2:198.51.100.1:3300,v1:198.51.100.1:6789]\n';

  it('puts volumes in the volumes pool as client.cinder, with the libvirt secret uuid', () => {
    const conf = files(state, 'cinder_volume')['cinder.conf']!;
    expect(conf).toMatch(/^enabled_backends = rbd-1$/m);
    expect(section(conf, 'rbd-1')).toContain(
      [
        'volume_driver = cinder.volume.drivers.rbd.RBDDriver',
        'volume_backend_name = rbd-1',
        'backend_host = rbd:volumes',
        'rbd_pool = volumes',
        'rbd_ceph_conf = /etc/ceph/ceph.conf',
        'rbd_user = cinder',
        `rbd_secret_uuid = ${PASSWORDS.cinder_rbd_secret_uuid}`,
      ].join('\n'),
    );
    expect(section(conf, 'nova')).toContain('auth_type = password\n');
    expect(section(conf, 'keystone_authtoken')).toContain('service_token_roles = admin\nservice_token_roles_required = true\n');
    expect(section(conf, 'oslo_concurrency')).toContain('lock_path = /var/lib/cinder/tmp\n');
    expect(conf).toMatch(/^transport_url = rabbit:\/\/openstack:.*@198\.51\.100\.10:5672\/\/$/m);
    expect(files(state, 'cinder_volume')['ceph.conf']).toContain(`fsid = ${PASSWORDS.ceph_fsid}\n${monHost}`);
    expect(files(state, 'cinder_volume')['ceph.client.cinder.keyring']).toBe(`[client.cinder]\n\tkey = ${PASSWORDS.ceph_cinder_cephx_key}\n`);
    expect(configJson(state, 'cinder_volume').config_files.map((f) => `${f.source} -> ${f.dest} ${f.owner} ${f.perm}`)).toEqual([
      '/var/lib/kolla/config_files/cinder.conf -> /etc/cinder/cinder.conf cinder 0600',
      '/var/lib/kolla/config_files/ceph.conf -> /etc/ceph/ceph.conf cinder 0600',
      '/var/lib/kolla/config_files/ceph.client.cinder.keyring -> /etc/ceph/ceph.client.cinder.keyring cinder 0600',
    ]);
    // Only cinder_volume talks to Ceph.
    expect(Object.keys(files(state, 'cinder_api')).sort()).toEqual(['cinder-wsgi.conf', 'cinder.conf', 'config.json']);
    expect(Object.keys(files(state, 'cinder_scheduler')).sort()).toEqual(['cinder.conf', 'config.json']);
  });

  it('stores new images in the images pool as client.glance, the file store still readable', () => {
    const conf = files(state, 'glance_api')['glance-api.conf']!;
    expect(conf).toMatch(/^enabled_backends = rbd:rbd, file:file$/m);
    expect(section(conf, 'glance_store')).toBe('default_backend = rbd\n\n');
    expect(section(conf, 'rbd')).toBe('rbd_store_pool = images\nrbd_store_user = glance\nrbd_store_ceph_conf = /etc/ceph/ceph.conf\n\n');
    expect(section(conf, 'file')).toContain('filesystem_store_datadir = /var/lib/glance/images/\n');
    expect(files(state, 'glance_api')['ceph.client.glance.keyring']).toBe(`[client.glance]\n\tkey = ${PASSWORDS.ceph_glance_cephx_key}\n`);
    expect(files(state, 'glance_api')['ceph.conf']).toContain(monHost);
    expect(configJson(state, 'glance_api').config_files.map((f) => f.dest)).toEqual(['/etc/glance/glance-api.conf', '/etc/ceph/ceph.conf', '/etc/ceph/ceph.client.glance.keyring']);
  });

  it("gives nova cinder's catalog entry, and nova_compute its disks in the vms pool", () => {
    for (const name of ['nova_api', 'nova_conductor', 'nova_scheduler', 'nova_compute']) {
      const cinderSection = section(files(state, name)['nova.conf']!, 'cinder');
      expect(cinderSection, name).toContain('catalog_info = volumev3:cinderv3:internalURL\nos_region_name = RegionOne\n');
      expect(cinderSection, name).toContain(`username = nova\npassword = ${PASSWORDS.nova_keystone_password}\n`);
    }
    const libvirt = section(files(state, 'nova_compute')['nova.conf']!, 'libvirt');
    expect(libvirt).toContain('images_type = rbd\nimages_rbd_pool = vms\nimages_rbd_ceph_conf = /etc/ceph/ceph.conf\n');
    // ceph_nova_user is cinder's by default, as in kolla-ansible: one user, cinder's key.
    expect(libvirt).toContain(`rbd_user = cinder\nrbd_secret_uuid = ${PASSWORDS.rbd_secret_uuid}\n`);
    expect(files(state, 'nova_compute')['ceph.client.cinder.keyring']).toBe(`[client.cinder]\n\tkey = ${PASSWORDS.ceph_cinder_cephx_key}\n`);
    expect(configJson(state, 'nova_compute').config_files.map((f) => f.dest)).toEqual(['/etc/nova/nova.conf', '/etc/ceph/ceph.conf', '/etc/ceph/ceph.client.cinder.keyring']);
  });

  it('gives nova_libvirt a secret per RBD user under its uuid, and the keyring its start hook reads the key from', () => {
    const libvirt = files(state, 'nova_libvirt');
    expect(Object.keys(libvirt).sort()).toEqual(['ceph.client.cinder.keyring', 'ceph.conf', 'config.json', 'libvirt-secret-cinder.xml', 'libvirt-secret-nova.xml', 'libvirtd.conf', 'qemu.conf']);
    expect(libvirt['libvirt-secret-cinder.xml']).toContain(`<uuid>${PASSWORDS.cinder_rbd_secret_uuid}</uuid>`);
    expect(libvirt['libvirt-secret-cinder.xml']).toMatch(/<usage type='ceph'>\s*<name>kolla-ts cinder volumes<\/name>/);
    expect(libvirt['libvirt-secret-nova.xml']).toContain(`<uuid>${PASSWORDS.rbd_secret_uuid}</uuid>`);
    expect(libvirt['libvirt-secret-nova.xml']).toMatch(/<usage type='ceph'>\s*<name>kolla-ts nova disks<\/name>/);
    // The secret's value is in no file but the keyring (the hook writes <uuid>.base64 inside the container).
    expect(libvirt['libvirt-secret-cinder.xml']).not.toContain(PASSWORDS.ceph_cinder_cephx_key);
    const copies = configJson(state, 'nova_libvirt').config_files.map((f) => `${f.source.replace('/var/lib/kolla/config_files/', '')} -> ${f.dest}`);
    expect(copies).toEqual([
      'libvirtd.conf -> /etc/libvirt/libvirtd.conf',
      'qemu.conf -> /etc/libvirt/qemu.conf',
      'ceph.conf -> /etc/ceph/ceph.conf',
      `libvirt-secret-cinder.xml -> /etc/libvirt/secrets/${PASSWORDS.cinder_rbd_secret_uuid}.xml`,
      `ceph.client.cinder.keyring -> /etc/libvirt/secrets/${PASSWORDS.cinder_rbd_secret_uuid}.keyring`,
      `libvirt-secret-nova.xml -> /etc/libvirt/secrets/${PASSWORDS.rbd_secret_uuid}.xml`,
      `ceph.client.cinder.keyring -> /etc/libvirt/secrets/${PASSWORDS.rbd_secret_uuid}.keyring`,
    ]);
    expect(configJson(state, 'nova_libvirt').directories).toContainEqual({ path: '/etc/libvirt/secrets', owner: 'root:root', perm: '0700' });
  });

  it("uses client.nova's own key when ceph_nova_user is nova", () => {
    const own = render(`${OWN_CEPH}ceph_nova_user: nova\n`);
    expect(section(files(own, 'nova_compute')['nova.conf']!, 'libvirt')).toContain(`rbd_user = nova\nrbd_secret_uuid = ${PASSWORDS.rbd_secret_uuid}\n`);
    expect(files(own, 'nova_compute')['ceph.client.nova.keyring']).toBe(`[client.nova]\n\tkey = ${PASSWORDS.ceph_nova_cephx_key}\n`);
    const libvirt = files(own, 'nova_libvirt');
    expect(libvirt['ceph.client.cinder.keyring']).toContain(PASSWORDS.ceph_cinder_cephx_key);
    expect(libvirt['ceph.client.nova.keyring']).toContain(PASSWORDS.ceph_nova_cephx_key);
  });

  it('without nova_backend_ceph, gives nova_compute cinder\'s RBD user for volumes and no Ceph files', () => {
    const volumesOnly = render('enable_ceph: true\nenable_cinder: true\ncinder_backend_ceph: true\n');
    const libvirt = section(files(volumesOnly, 'nova_compute')['nova.conf']!, 'libvirt');
    expect(libvirt).toContain(`rbd_user = cinder\nrbd_secret_uuid = ${PASSWORDS.cinder_rbd_secret_uuid}\n`);
    expect(libvirt).not.toContain('images_type');
    expect(Object.keys(files(volumesOnly, 'nova_compute')).sort()).toEqual(['config.json', 'nova.conf']);
    expect(Object.keys(files(volumesOnly, 'nova_libvirt')).sort()).toEqual(['ceph.client.cinder.keyring', 'ceph.conf', 'config.json', 'libvirt-secret-cinder.xml', 'libvirtd.conf', 'qemu.conf']);
    expect(Object.keys(files(volumesOnly, 'glance_api')).sort()).toEqual(['config.json', 'glance-api.conf']);
  });
});

describe('Ceph RBD with an existing cluster (enable_ceph off)', () => {
  it("takes the operator's ceph.conf and keyrings from config/<service>/ as they are", () => {
    const state = render(ALL_ON.replace('nova_backend_ceph: true\n', ''), EXTERNAL_FILES);
    expect(files(state, 'cinder_volume')['ceph.conf']).toBe(EXTERNAL_CONF);
    expect(files(state, 'cinder_volume')['ceph.client.cinder.keyring']).toBe(CINDER_KEYRING);
    expect(files(state, 'glance_api')['ceph.conf']).toBe(EXTERNAL_CONF);
    expect(files(state, 'glance_api')['ceph.client.glance.keyring']).toBe(GLANCE_KEYRING);
    expect(files(state, 'nova_libvirt')['ceph.client.cinder.keyring']).toBe(CINDER_KEYRING);
    expect(files(state, 'nova_libvirt')['libvirt-secret-cinder.xml']).toContain(`<uuid>${PASSWORDS.cinder_rbd_secret_uuid}</uuid>`);
    expect(section(files(state, 'cinder_volume')['cinder.conf']!, 'rbd-1')).toContain(`rbd_user = cinder\nrbd_secret_uuid = ${PASSWORDS.cinder_rbd_secret_uuid}\n`);
    // Nothing of kolla-ts's own cluster is rendered.
    const everything = JSON.stringify(state.services.flatMap((s) => s.containers.map((c) => c.configFiles)));
    for (const key of ['ceph_fsid', 'ceph_cinder_cephx_key', 'ceph_glance_cephx_key', 'ceph_nova_cephx_key']) expect(everything, key).not.toContain(PASSWORDS[key]);
    expect(state.services.map((s) => s.role.service)).not.toContain('ceph');
  });

  it("prefers a host's or a container's own file, and names where to put a missing one", () => {
    const state = render(ALL_ON.replace('nova_backend_ceph: true\n', ''), {
      ...EXTERNAL_FILES,
      'nova/nova_libvirt/ceph.conf': '[global]\nmon_host = 198.51.100.60\n',
      'cinder/ctl1/ceph.conf': '[global]\nmon_host = 198.51.100.70\n',
    });
    expect(files(state, 'nova_libvirt')['ceph.conf']).toContain('198.51.100.60');
    expect(files(state, 'cinder_volume')['ceph.conf']).toContain('198.51.100.70');

    const { 'cinder/ceph.client.cinder.keyring': _dropped, ...withoutKeyring } = EXTERNAL_FILES;
    const attempt = () => render(ALL_ON.replace('nova_backend_ceph: true\n', ''), withoutKeyring);
    expect(attempt).toThrow(InputError);
    expect(attempt).toThrow(/cinder_volume on ctl1 needs ceph\.client\.cinder\.keyring from the operator .*config\/cinder\/ceph\.client\.cinder\.keyring/);
  });

  it('names the keyring after ceph_*_user', () => {
    const state = render(`enable_cinder: true\ncinder_backend_ceph: true\nceph_cinder_user: openstack-volumes\nceph_cinder_pool_name: block\n`, {
      'cinder/ceph.conf': EXTERNAL_CONF,
      'cinder/ceph.client.openstack-volumes.keyring': '[client.openstack-volumes]\n\tkey = AQAg5YRXpChaGRAAlTSCleesthCRmCYrfQVX1w==\n',
      'nova/ceph.conf': EXTERNAL_CONF,
      'nova/ceph.client.openstack-volumes.keyring': '[client.openstack-volumes]\n\tkey = AQAg5YRXpChaGRAAlTSCleesthCRmCYrfQVX1w==\n',
    });
    expect(section(files(state, 'cinder_volume')['cinder.conf']!, 'rbd-1')).toContain('backend_host = rbd:block\nrbd_pool = block\nrbd_ceph_conf = /etc/ceph/ceph.conf\nrbd_user = openstack-volumes\n');
    expect(configJson(state, 'cinder_volume').config_files.map((f) => f.dest)).toContain('/etc/ceph/ceph.client.openstack-volumes.keyring');
    expect(configJson(state, 'nova_libvirt').config_files.map((f) => f.source)).toContain('/var/lib/kolla/config_files/ceph.client.openstack-volumes.keyring');
  });

  it('without cephx: no keyrings, no secrets, no secret uuid', () => {
    const state = render(`${ALL_ON}external_ceph_cephx_enabled: false\n`, { 'cinder/ceph.conf': EXTERNAL_CONF, 'glance/ceph.conf': EXTERNAL_CONF, 'nova/ceph.conf': EXTERNAL_CONF });
    expect(Object.keys(files(state, 'cinder_volume')).sort()).toEqual(['ceph.conf', 'cinder.conf', 'config.json']);
    expect(Object.keys(files(state, 'glance_api')).sort()).toEqual(['ceph.conf', 'config.json', 'glance-api.conf']);
    expect(Object.keys(files(state, 'nova_libvirt')).sort()).toEqual(['ceph.conf', 'config.json', 'libvirtd.conf', 'qemu.conf']);
    expect(Object.keys(files(state, 'nova_compute')).sort()).toEqual(['ceph.conf', 'config.json', 'nova.conf']);
    expect(files(state, 'cinder_volume')['cinder.conf']).not.toContain('rbd_secret_uuid');
    expect(files(state, 'nova_compute')['nova.conf']).not.toContain('rbd_secret_uuid');
    expect(configJson(state, 'nova_libvirt').directories.map((d) => d.path)).not.toContain('/etc/libvirt/secrets');
  });
});

describe('with every Ceph switch off', () => {
  it('renders nothing of Ceph, and settings that only Ceph reads change nothing', () => {
    const base = render('');
    const unused = render('external_ceph_cephx_enabled: false\nceph_glance_user: other\nceph_cinder_user: other\nceph_nova_pool_name: other\n');
    expect(base.services.map((s) => s.role.service)).not.toContain('cinder');
    const hashes = (state: DesiredState) => state.services.flatMap((s) => s.containers.map((c) => `${c.name} ${c.configHash} ${c.definitionHash}`));
    expect(hashes(unused)).toEqual(hashes(base));
    for (const c of base.services.flatMap((s) => s.containers)) {
      for (const f of c.configFiles) expect(`${c.name}/${f.name}: ${f.content}`).not.toMatch(/rbd|ceph|cinder/i);
    }
    const glance = files(base, 'glance_api')['glance-api.conf']!;
    expect(glance).toMatch(/^enabled_backends = file:file\nshow_image_direct_url = false$/m);
    expect(section(glance, 'glance_store')).toBe('default_backend = file\n\n');
  });

  it('with cinder on but not on Ceph: no backend, nova knows cinder, no Ceph file anywhere', () => {
    const state = render('enable_cinder: true\n');
    expect(files(state, 'cinder_volume')['cinder.conf']).not.toMatch(/enabled_backends|\[rbd-1\]/);
    expect(section(files(state, 'nova_compute')['nova.conf']!, 'cinder')).toContain('catalog_info = volumev3:cinderv3:internalURL\n');
    for (const c of state.services.flatMap((s) => s.containers)) expect(c.configFiles.map((f) => f.name).filter((n) => /ceph|secret/.test(n)), c.name).toEqual([]);
    expect(section(files(state, 'nova_compute')['nova.conf']!, 'libvirt')).not.toContain('rbd');
  });
});
