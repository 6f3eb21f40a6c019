// The project's own horizon role, image and templates, read and rendered as
// deploy and build would: where it runs, what local_settings.py says once
// Python reads it (a hostile secret key included), and that the secret stays
// in a 0600 file.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { selectImages } from '../../src/build/graph.ts';
import { loadProfiles } from '../../src/build/images.ts';
import { PROJECT_ROOT as ROOT } from '../helpers/environment.ts';
import { PROJECT_ROLES as roles, projectImageGraph, renderRoles, ROLE_PASSWORDS } from '../helpers/project.ts';

const horizon = roles.find((r) => r.service === 'horizon')!;
// Quotes, backslashes, a line break and non-ASCII: each would end or bend a Python literal placed raw.
const HOSTILE_KEY = `k'e"y\\x\n'''é$#{}`;
const PASSWORDS = { ...ROLE_PASSWORDS, horizon_secret_key: HOSTILE_KEY };

function horizonState() {
  const { state, globals } = renderRoles({ globals: 'kolla_external_vip_address: 203.0.113.10\n', passwords: PASSWORDS, services: ['horizon'] });
  expect(globals.enable_horizon).toBe(true);
  return state.services.find((s) => s.role.service === 'horizon')!;
}

/** The settings Django would see from local_settings.py alone (the file imports nothing). */
function pythonSettings(source: string): Record<string, unknown> {
  const script = [
    'import json, sys',
    'names = {}',
    'exec(compile(sys.stdin.read(), "local_settings.py", "exec"), names)',
    'print(json.dumps({k: v for k, v in names.items() if k.isupper()}))',
  ].join('\n');
  return JSON.parse(execFileSync('python3', ['-c', script], { input: source, encoding: 'utf8' })) as Record<string, unknown>;
}

describe('the horizon role', () => {
  it('runs horizon on control, after keystone and memcached, on horizon_port with no steps but its start', () => {
    expect(horizon.groups).toEqual(['control']);
    expect(horizon.requires).toEqual(['keystone', 'memcached']);
    expect(horizon.passwords).toEqual(['horizon_secret_key']);
    expect(horizon.containers.map((c) => [c.name, c.image, c.ports])).toEqual([['horizon', 'horizon', ['horizon_port']]]);
    expect(horizon.steps.map((s) => s.kind)).toEqual(['start']);
    const [container] = horizonState().containers;
    expect(container!.ports).toEqual([80]);
    expect(container!.definition.healthcheck).toEqual(['healthcheck_curl', 'http://198.51.100.1:80/auth/login/']);
  });

  it('renders local_settings.py that Python reads back as written: keystone, memcached sessions, hosts, the key', () => {
    const [container] = horizonState().containers;
    const file = container!.configFiles.find((f) => f.name === 'local_settings.py')!;
    expect(file.mode).toBe(0o600);
    const settings = pythonSettings(file.content);
    expect(settings).toMatchObject({
      DEBUG: false,
      SECRET_KEY: HOSTILE_KEY,
      TIME_ZONE: 'UTC',
      OPENSTACK_HOST: '198.51.100.10',
      OPENSTACK_KEYSTONE_URL: 'http://198.51.100.10:5000/v3',
      SESSION_ENGINE: 'django.contrib.sessions.backends.cache',
      CACHES: { default: { BACKEND: 'django.core.cache.backends.memcached.PyMemcacheCache', LOCATION: '198.51.100.10:11211' } },
    });
    expect(settings.ALLOWED_HOSTS).toEqual(expect.arrayContaining(['203.0.113.10', '198.51.100.10', '198.51.100.1', 'ctl1']));
    const visible = JSON.stringify([container!.spec.environment, container!.spec.labels, container!.definition, container!.spec.volumes]);
    expect(visible).not.toContain(HOSTILE_KEY);
  });

  it('serves the dashboard from Apache on the host address, static files outside Django, settings readable by horizon only', () => {
    const [container] = horizonState().containers;
    const site = container!.configFiles.find((f) => f.name === 'horizon-wsgi.conf')!.content;
    expect(site).toContain('Listen 198.51.100.1:80\n');
    expect(site).toMatch(/user=horizon group=horizon/);
    expect(site.indexOf('Alias /static ')).toBeLessThan(site.indexOf('WSGIScriptAlias / '));
    const config = JSON.parse(container!.configFiles.find((f) => f.name === 'config.json')!.content);
    expect(config.command).toBe('/usr/sbin/apache2 -DFOREGROUND');
    expect(config.config_files).toContainEqual(
      expect.objectContaining({ dest: '/etc/openstack-dashboard/local_settings.py', owner: 'horizon', perm: '0600' }),
    );
  });

  it('is built by the main and default profiles', () => {
    const profiles = loadProfiles([join(ROOT, 'images', 'profiles.yml')]);
    const graph = projectImageGraph('kolla-ts-horizon-work');
    expect(graph.get('horizon')!.parent).toBe('openstack-base');
    for (const name of ['main', 'default']) {
      const selected = selectImages(graph, [], { name, patterns: profiles.get(name)! }).selected;
      expect(selected.has('horizon'), name).toBe(true);
    }
  });
});
