// Runs the real kolla_register (images/kolla-toolbox) against an in-memory
// Keystone: what it creates, grants and updates, that a second run changes
// nothing, and that no password reaches its output. Python's standard
// library only: the Keystone client is replaced, never imported.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const REGISTER = fileURLToPath(new URL('../../images/kolla-toolbox/kolla_register', import.meta.url));

/**
 * Loads kolla_register as a module and runs each document in turn on one
 * fake Keystone; `mutate` changes objects (by kind and name) before a run.
 */
const HARNESS = String.raw`
import contextlib, importlib.util, io, json, sys
from importlib.machinery import SourceFileLoader
loader = SourceFileLoader('kolla_register', sys.argv[1])
reg = importlib.util.module_from_spec(importlib.util.spec_from_loader('kolla_register', loader))
loader.exec_module(reg)

class Response:
    def __init__(self, status): self.status_code = status

class FakeKeystone:
    """Keystone's v3 collections as dicts; the default domain exists."""
    def __init__(self):
        self.store = {'domains': {'default': {'id': 'default', 'name': 'Default', 'enabled': True}},
                      'projects': {}, 'roles': {}, 'users': {}, 'services': {},
                      'endpoints': {}, 'regions': {}}
        self.grants = set()
        self.next_id = 0
    def list(self, path, key, **params):
        return [dict(o) for o in self.store[key].values()
                if all(o.get(k) == v for k, v in params.items())]
    def create(self, path, key, fields):
        self.next_id += 1
        obj = dict(fields, id=fields.get('id', f'{key}-{self.next_id}'))
        self.store[path.strip('/')][obj['id']] = obj
        return dict(obj)
    def update(self, path, key, fields):
        _, kind, ident = path.split('/')
        self.store[kind][ident].update(fields)
        return dict(self.store[kind][ident])
    def call(self, method, path, body=None, params=None, expect=(), tolerate=()):
        parts = path.strip('/').split('/')
        if parts[0] == 'regions':
            return Response(200 if parts[1] in self.store['regions'] else 404)
        grant = tuple(parts)
        if method == 'HEAD':
            return Response(204 if grant in self.grants else 404)
        if method == 'PUT':
            self.grants.add(grant)
            return Response(204)
        raise AssertionError(f'unexpected {method} {path}')

ks = FakeKeystone()
# kolla_register checks a password by authenticating as the user.
reg.Registrar.password_works = lambda self, name, password, domain_id: any(
    u['name'] == name and u['domain_id'] == domain_id and u['password'] == password
    for u in ks.store['users'].values())
results = []
for step in json.load(sys.stdin):
    for kind, name, fields in step.get('mutate', []):
        for obj in ks.store[kind].values():
            if obj['name'] == name:
                obj.update(fields)
    out = io.StringIO()
    error = None
    try:
        with contextlib.redirect_stdout(out):
            reg.Registrar(ks, 'RegionOne', 'http://keystone.invalid:5000').apply(reg.parse_request(json.dumps(step['document'])))
    except reg.RegisterError as e:
        error = f'{type(e).__name__}: {e}'
    results.append({'stdout': out.getvalue(), 'error': error})
print(json.dumps({'results': results, 'store': ks.store, 'grants': sorted('/'.join(g) for g in ks.grants)}))
`;

interface Outcome {
  results: { stdout: string; error: string | null }[];
  store: Record<string, Record<string, Record<string, unknown>>>;
  grants: string[];
}

function register(steps: { document: unknown; mutate?: [string, string, Record<string, unknown>][] }[]): Outcome {
  const result = spawnSync('python3', ['-c', HARNESS, REGISTER], { input: JSON.stringify(steps), encoding: 'utf8', timeout: 20_000 });
  if (result.status !== 0) throw new Error(`harness failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as Outcome;
}

const HEAT = {
  projects: ['service'],
  roles: ['admin', 'heat_stack_owner', 'heat_stack_user'],
  domains: [{ name: 'heat', description: 'Users heat makes for stacks' }],
  users: [
    { name: 'heat', password: 'project-user-secret-1', project: 'service', role: 'admin' },
    { name: 'heat_domain_admin', password: 'domain-admin-secret-2', domain: 'heat', role: 'admin' },
  ],
};

const byName = (outcome: Outcome, kind: string, name: string) => Object.values(outcome.store[kind]!).filter((o) => o.name === name);

describe('kolla_register: domains and domain-scoped users', () => {
  it('creates the domain, a user in it with the role on the domain, and a second run changes nothing', () => {
    const outcome = register([{ document: HEAT }, { document: HEAT }]);
    const [first, second] = outcome.results;
    expect(first!.error).toBeNull();
    expect(first!.stdout.split('\n').filter(Boolean)).toEqual([
      'created project service',
      'created role admin',
      'created role heat_stack_owner',
      'created role heat_stack_user',
      'created domain heat',
      'created user heat',
      'granted role admin on project service to user heat',
      'created user heat_domain_admin in domain heat',
      'granted role admin on domain heat to user heat_domain_admin in domain heat',
    ]);
    expect(second).toEqual({ stdout: '', error: null });

    const [domain] = byName(outcome, 'domains', 'heat');
    const [admin] = byName(outcome, 'users', 'heat_domain_admin');
    const [heat] = byName(outcome, 'users', 'heat');
    const [role] = byName(outcome, 'roles', 'admin');
    const [service] = byName(outcome, 'projects', 'service');
    expect(domain).toMatchObject({ description: 'Users heat makes for stacks', enabled: true });
    // A domain's user has no default project; a project's user lives in the default domain.
    expect(admin).toMatchObject({ domain_id: domain!.id, enabled: true });
    expect(admin).not.toHaveProperty('default_project_id');
    expect(heat).toMatchObject({ domain_id: 'default', default_project_id: service!.id });
    expect(outcome.grants).toEqual([`domains/${domain!.id}/users/${admin!.id}/roles/${role!.id}`, `projects/${service!.id}/users/${heat!.id}/roles/${role!.id}`].sort());
  });

  it('updates a changed password, description and a disabled domain or user, printing no password', () => {
    const changed = { ...HEAT, domains: [{ name: 'heat', description: 'Stack users' }], users: [HEAT.users[0], { ...HEAT.users[1], password: 'rotated-secret-3' }] };
    const outcome = register([{ document: HEAT }, { document: changed, mutate: [['domains', 'heat', { enabled: false }], ['users', 'heat', { enabled: false }]] }]);
    const second = outcome.results[1]!;
    expect(second.error).toBeNull();
    expect(second.stdout.split('\n').filter(Boolean)).toEqual([
      'updated domain heat: description, enabled',
      'enabled user heat',
      'updated password of user heat_domain_admin in domain heat',
    ]);
    expect(byName(outcome, 'users', 'heat_domain_admin')[0]).toMatchObject({ password: 'rotated-secret-3' });
    const printed = outcome.results.map((r) => r.stdout).join('');
    for (const secret of ['project-user-secret-1', 'domain-admin-secret-2', 'rotated-secret-3']) expect(printed).not.toContain(secret);
  });

  it('keeps a user of one name in the default domain and in another domain apart', () => {
    const document = { domains: [{ name: 'heat' }], users: [{ name: 'twin', password: 'a-secret-4', project: 'service', role: 'admin' }, { name: 'twin', password: 'b-secret-5', domain: 'heat', role: 'admin' }] };
    const outcome = register([{ document }, { document }]);
    expect(outcome.results.map((r) => r.error)).toEqual([null, null]);
    expect(byName(outcome, 'users', 'twin').map((u) => u.domain_id).sort()).toEqual(['default', byName(outcome, 'domains', 'heat')[0]!.id].sort());
    expect(outcome.results[1]!.stdout).toBe('');
  });

  it('refuses a user with both a project and a domain, an unknown domain key, and a domain that does not exist', () => {
    const both = register([{ document: { users: [{ name: 'x', password: 'p', project: 'service', domain: 'heat', role: 'admin' }] } }]).results[0]!;
    expect(both.error).toBe("InputError: users[0]: expected either 'project' or 'domain'");
    const extra = register([{ document: { domains: [{ name: 'heat', enabled: false }] } }]).results[0]!;
    expect(extra.error).toBe("InputError: domains[0]: unknown key 'enabled'");
    const missing = register([{ document: { users: [{ name: 'x', password: 'never-printed-6', domain: 'nowhere', role: 'admin' }] } }]).results[0]!;
    expect(missing.error).toBe('RegisterError: no domain named nowhere in Keystone');
  });
});
