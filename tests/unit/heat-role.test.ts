// The project's own heat role, images and templates, read and rendered as
// deploy and build would: what it registers, what heat.conf says, and that
// secrets stay in the config files.
import { describe, expect, it } from 'vitest';
import { PROJECT_ROLES as roles, profileImages, renderRoles, ROLE_PASSWORDS as PASSWORDS } from '../helpers/project.ts';

const heat = roles.find((r) => r.service === 'heat')!;

function heatState() {
  const { state, globals } = renderRoles({ services: ['heat'] });
  expect(globals.enable_heat).toBe(true);
  return state.services.find((s) => s.role.service === 'heat')!;
}

describe('the heat role', () => {
  it('runs heat_api, heat_api_cfn and heat_engine on control after what it requires', () => {
    expect(heat.groups).toEqual(['control']);
    expect(heat.requires).toEqual(['mariadb', 'rabbitmq', 'memcached', 'keystone', 'kolla-toolbox']);
    expect(heat.containers.map((c) => [c.name, c.image, c.ports])).toEqual([
      ['heat_api', 'heat-api', ['heat_api_port']],
      ['heat_api_cfn', 'heat-api-cfn', ['heat_api_cfn_port']],
      ['heat_engine', 'heat-engine', []],
    ]);
    expect(heat.steps.map((s) => s.kind)).toEqual(['database', 'bootstrap', 'register', 'start', 'start', 'start']);
    expect(heat.upgrade.before).toEqual([{ kind: 'oneshot', container: 'heat_api', environment: { KOLLA_UPGRADE: '' }, okExitCodes: [0] }]);
  });

  it('registers both APIs, the stack roles, and the heat domain with its admin; passwords only on stdin', () => {
    const step = heatState().steps.find((s) => s.step.kind === 'register')!;
    const doc = JSON.parse(step.stdin!);
    expect(doc.roles).toEqual(['admin', 'heat_stack_owner', 'heat_stack_user']);
    expect(doc.services.map((s: { name: string; type: string }) => `${s.name}:${s.type}`)).toEqual(['heat:orchestration', 'heat-cfn:cloudformation']);
    const urls = new Set(doc.endpoints.map((e: { service: string; url: string }) => `${e.service} ${e.url}`));
    expect([...urls]).toEqual(['heat http://198.51.100.10:8004/v1/%(tenant_id)s', 'heat-cfn http://198.51.100.10:8000/v1']);
    expect(doc.domains).toEqual([expect.objectContaining({ name: 'heat' })]);
    expect(doc.users).toEqual([
      { name: 'heat', password: PASSWORDS.heat_keystone_password, project: 'service', role: 'admin' },
      { name: 'heat_domain_admin', password: PASSWORDS.heat_domain_admin_password, domain: 'heat', role: 'admin' },
    ]);
    expect(step.description).not.toContain(PASSWORDS.heat_domain_admin_password);
  });

  it('renders heat.conf with the stack domain, the CFN URLs and a 32-character encryption key; secrets only in 0600 files', () => {
    const service = heatState();
    for (const container of service.containers) {
      const conf = container.configFiles.find((f) => f.name === 'heat.conf')!;
      expect(conf.mode).toBe(0o600);
      expect(conf.content).toContain('heat_metadata_server_url = http://198.51.100.10:8000\n');
      expect(conf.content).toContain('heat_waitcondition_server_url = http://198.51.100.10:8000/v1/waitcondition\n');
      expect(conf.content).toContain('stack_user_domain_name = heat\nstack_domain_admin = heat_domain_admin\n');
      expect(conf.content).toContain(`stack_domain_admin_password = ${PASSWORDS.heat_domain_admin_password}\n`);
      expect(conf.content).toContain(`auth_encryption_key = ${PASSWORDS.heat_auth_encryption_key!.slice(0, 32)}\n`);
      expect(conf.content).toMatch(/^transport_url = rabbit:\/\/openstack:.*@198\.51\.100\.10:5672\/\/$/m);
      expect(conf.content).toContain('[trustee]');
      expect(conf.content).toContain('[clients_keystone]\nauth_uri = http://198.51.100.10:5000\n');
      const visible = JSON.stringify([container.spec.environment, container.spec.labels, container.definition, container.spec.volumes]);
      for (const secret of Object.values(PASSWORDS)) expect(visible).not.toContain(secret);
    }
    const api = service.containers.find((c) => c.name === 'heat_api')!;
    expect(api.definition.healthcheck).toEqual(['healthcheck_curl', 'http://198.51.100.1:8004']);
    expect(JSON.parse(api.configFiles.find((f) => f.name === 'config.json')!.content).command).toBe('heat-api --config-file /etc/heat/heat.conf');
  });

  it('is built by the main and default profiles', () => {
    for (const name of ['main', 'default']) expect(profileImages(name, 'heat'), name).toEqual(['heat-api', 'heat-api-cfn', 'heat-base', 'heat-engine']);
  });
});
