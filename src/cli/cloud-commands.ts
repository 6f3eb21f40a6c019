import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { initCloud, type CloudChange } from '../cloud/init-cloud.ts';
import { cloudLayout } from '../cloud/layout.ts';
import { OpenStackApi } from '../cloud/openstack-api.ts';
import { loadPasswords } from '../config/passwords.ts';
import { InputError } from '../errors.ts';
import { loadGlobalsFor, loadRoleSet } from '../deploy/session.ts';
import { PROJECT_ROOT } from './shared.ts';

interface InitCloudFlags {
  configdir: string;
  extNetCidr: string;
  extNetGateway?: string;
  extNetRange?: string;
  demoNetCidr: string;
  guestImage: string | false;
  publicKey?: string;
  json?: boolean;
}

export function registerCloudCommands(program: Command): void {
  program
    .command('init-cloud')
    .description('make a new cloud usable: external and demo networks, a router, a keypair, flavors, security group rules, a guest image; idempotent')
    .option('--configdir <dir>', 'directory with globals.yml and passwords.yml', '/etc/kolla')
    .option('--ext-net-cidr <cidr>', 'the external (provider, flat on physnet1) network', '198.18.64.0/24')
    .option('--ext-net-gateway <address>', 'its gateway (default: the first address)')
    .option('--ext-net-range <first-last>', 'addresses for routers and floating IPs (default: the upper half)')
    .option('--demo-net-cidr <cidr>', 'the demo self-service network behind the router', '198.51.100.0/24')
    .option('--guest-image <dir>', 'a guest built by scripts/guest-image.sh (default: <configdir>/guest-image)')
    .option('--no-guest-image', 'upload no guest image')
    .option('--public-key <file>', 'the keypair "mykey" (default: ~/.ssh/id_*.pub, else one made in the config dir)')
    .option('--json', 'machine-readable output on stdout')
    .action(async (flags: InitCloudFlags) => {
      const configDir = resolve(flags.configdir);
      const layout = cloudLayout({
        configDir,
        extNetCidr: flags.extNetCidr,
        demoNetCidr: flags.demoNetCidr,
        ...(flags.extNetGateway ? { extNetGateway: flags.extNetGateway } : {}),
        ...(flags.extNetRange ? { extNetRange: flags.extNetRange } : {}),
        ...(flags.publicKey ? { publicKey: resolve(flags.publicKey) } : {}),
        ...(flags.guestImage !== false ? { guestImage: resolve(typeof flags.guestImage === 'string' ? flags.guestImage : join(configDir, 'guest-image')) } : {}),
      });
      const { values: globals } = loadGlobalsFor(loadRoleSet(PROJECT_ROOT), configDir);
      if (!globals.kolla_internal_vip_address) {
        throw new InputError('kolla_internal_vip_address is required (the address keystone is reached at)', { file: join(configDir, 'globals.yml'), key: 'kolla_internal_vip_address' });
      }
      const passwords = loadPasswords(join(configDir, 'passwords.yml'), ['keystone_admin_password']);
      const api = await OpenStackApi.login({
        authUrl: `http://${globals.kolla_internal_vip_address}:5000/v3`,
        username: 'admin',
        password: passwords.keystone_admin_password!,
        projectName: 'admin',
        region: String(globals.openstack_region_name),
        interface: 'internal',
      });
      const print = (change: CloudChange): void => {
        if (!flags.json) console.error(`${change.outcome.padEnd(7)} ${change.kind} ${change.name}${change.note ? ` (${change.note})` : ''}`);
      };
      const changes = await initCloud(api, layout, print);
      if (flags.json) console.log(JSON.stringify({ resources: changes }, null, 2));
      const made = changes.filter((c) => c.outcome !== 'kept').length;
      if (!flags.json) console.error(`init-cloud: ${made} created or updated, ${changes.length - made} kept`);
    });
}
