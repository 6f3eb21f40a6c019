/**
 * Self-service networking and init-cloud, as pure logic: the layout init-cloud
 * derives from its flags, its find-or-create rules against an in-memory API
 * (the real cloud is driven in the all-in-one e2e), the tunnel address facts
 * and the neutron config the real roles render from them.
 */
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initCloud, type CloudChange, type CloudLayout } from '../../src/cloud/init-cloud.ts';
import { cloudLayout } from '../../src/cloud/layout.ts';
import { OpenStackApi, type CloudApi, type ServiceType } from '../../src/cloud/openstack-api.ts';
import { CloudApiError, exitCodeFor, InputError } from '../../src/errors.ts';
import { gatherFacts } from '../../src/facts/facts.ts';
import type { HostPool } from '../../src/fleet/hosts.ts';
import { Recap } from '../../src/fleet/runner.ts';
import { loadInventory } from '../../src/inventory/inventory.ts';
import { renderRoles } from '../helpers/project.ts';

const tempDir = (): string => mkdtempSync(join(tmpdir(), 'kolla-ts-cloud-'));

function layoutWith(overrides: Partial<Parameters<typeof cloudLayout>[0]> = {}): CloudLayout {
  const configDir = tempDir();
  const publicKey = join(configDir, 'key.pub');
  writeFileSync(publicKey, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKq4 test@example\n');
  return cloudLayout({ configDir, extNetCidr: '203.0.113.0/24', demoNetCidr: '198.51.100.0/24', publicKey, ...overrides });
}

describe('init-cloud layout', () => {
  it('puts the gateway first and floating IPs in the upper half by default', () => {
    const layout = layoutWith();
    expect(layout.external).toMatchObject({ cidr: '203.0.113.0/24', gateway: '203.0.113.1', poolStart: '203.0.113.128', poolEnd: '203.0.113.254' });
    expect(layout.demo).toMatchObject({ cidr: '198.51.100.0/24', gateway: '198.51.100.1' });
    expect(layout.keypair.publicKey).toMatch(/^ssh-ed25519 /);
  });

  it.each([
    [{ extNetCidr: '203.0.113.5/24' }, '--ext-net-cidr: 203.0.113.5/24 has host bits set'],
    [{ extNetCidr: '203.0.113.0/33' }, '--ext-net-cidr: expected an IPv4 network'],
    [{ extNetGateway: '198.51.100.1' }, '--ext-net-gateway: 198.51.100.1 is not a host address of 203.0.113.0/24'],
    [{ extNetRange: '203.0.113.200-203.0.113.100' }, '--ext-net-range: 203.0.113.200 comes after 203.0.113.100'],
    [{ extNetRange: '203.0.113.1-203.0.113.50' }, '--ext-net-gateway 203.0.113.1 lies inside --ext-net-range'],
    [{ demoNetCidr: '203.0.113.128/25' }, '--demo-net-cidr 203.0.113.128/25 overlaps --ext-net-cidr 203.0.113.0/24'],
    [{ guestImage: '/nonexistent/guest' }, 'no guest image in /nonexistent/guest'],
  ])('refuses %j before it asks anything of the cloud', (overrides, message) => {
    expect(() => layoutWith(overrides)).toThrow(InputError);
    expect(() => layoutWith(overrides)).toThrow(message);
  });

  it('makes a key in the config directory when the user has none, once, private', () => {
    const configDir = tempDir();
    const home = process.env.HOME;
    process.env.HOME = tempDir(); // a user without ~/.ssh keys
    try {
      const first = cloudLayout({ configDir, extNetCidr: '203.0.113.0/24', demoNetCidr: '198.51.100.0/24' });
      expect(first.keypair.publicKey).toMatch(/^ssh-ed25519 \S+ kolla-ts init-cloud$/);
      expect(statSync(join(configDir, 'id_ed25519')).mode & 0o777).toBe(0o600);
      const again = cloudLayout({ configDir, extNetCidr: '203.0.113.0/24', demoNetCidr: '198.51.100.0/24' });
      expect(again.keypair.publicKey).toBe(first.keypair.publicKey);
    } finally {
      process.env.HOME = home;
    }
  });
});

/** Neutron, nova and glance as collections in memory: enough REST for init-cloud's find-or-create. */
class MemoryCloud implements CloudApi {
  readonly projectId = 'project-admin';
  readonly calls: string[] = [];
  private nextId = 1;
  readonly store: Record<string, Record<string, unknown>[]> = { networks: [], subnets: [], routers: [], ports: [], 'security-group-rules': [], keypairs: [], flavors: [], images: [] };
  readonly group = { id: 'sg-default', name: 'default', security_group_rules: this.store['security-group-rules']! };

  async find<T>(_service: ServiceType, path: string): Promise<T | undefined> {
    this.calls.push(`GET ${path}`);
    const keypair = /^\/os-keypairs\/(.+)$/.exec(path);
    const found = keypair ? this.store.keypairs!.find((k) => k.name === decodeURIComponent(keypair[1]!)) : undefined;
    return found ? ({ keypair: found } as T) : undefined;
  }

  async get<T>(_service: ServiceType, path: string): Promise<T> {
    this.calls.push(`GET ${path}`);
    const [route, query = ''] = path.split('?');
    const params = new URLSearchParams(query);
    const matching = (items: Record<string, unknown>[]): Record<string, unknown>[] =>
      items.filter((item) => [...params].every(([key, value]) => key === 'project_id' || key === 'is_public' || String(item[key]) === value));
    if (route === '/v2.0/security-groups') return { security_groups: [this.group] } as T;
    if (route === '/flavors/detail') return { flavors: this.store.flavors } as T;
    if (route === '/v2/images') return { images: matching(this.store.images!) } as T;
    const collection = /^\/v2\.0\/([a-z-]+)$/.exec(route!)![1]!;
    return { [collection]: matching(this.store[collection]!) } as T;
  }

  async send<T>(_service: ServiceType, method: string, path: string, body?: unknown): Promise<T> {
    this.calls.push(`${method} ${path}`);
    const id = `id-${this.nextId++}`;
    const add = (collection: string, item: Record<string, unknown>): Record<string, unknown> => {
      const made = { id, ...item };
      this.store[collection]!.push(made);
      return made;
    };
    const data = body as Record<string, Record<string, unknown>>;
    if (method === 'POST' && path === '/v2.0/networks') return { network: add('networks', data.network!) } as T;
    if (method === 'POST' && path === '/v2.0/subnets') return { subnet: add('subnets', data.subnet!) } as T;
    if (method === 'POST' && path === '/v2.0/routers') return { router: add('routers', data.router!) } as T;
    if (method === 'POST' && path === '/v2.0/security-group-rules') return { security_group_rule: add('security-group-rules', { remote_group_id: null, ...data.security_group_rule! }) } as T;
    if (method === 'POST' && path === '/os-keypairs') return { keypair: add('keypairs', data.keypair!) } as T;
    if (method === 'POST' && path === '/flavors') return { flavor: add('flavors', data.flavor!) } as T;
    if (method === 'POST' && path === '/v2/images') return add('images', { ...(body as object), status: 'queued' }) as T;
    const interfaceOf = /^\/v2\.0\/routers\/([^/]+)\/add_router_interface$/.exec(path);
    if (method === 'PUT' && interfaceOf) {
      const subnet = this.store.subnets!.find((s) => s.id === (body as { subnet_id: string }).subnet_id)!;
      return { port_id: add('ports', { device_id: interfaceOf[1], network_id: subnet.network_id }).id } as T;
    }
    const router = /^\/v2\.0\/routers\/([^/]+)$/.exec(path);
    if (method === 'PUT' && router) {
      Object.assign(this.store.routers!.find((r) => r.id === router[1])!, data.router);
      return {} as T;
    }
    throw new Error(`the memory cloud has no ${method} ${path}`);
  }

  async upload(_service: ServiceType, path: string): Promise<void> {
    this.calls.push(`PUT ${path}`);
    const id = /^\/v2\/images\/([^/]+)\/file$/.exec(path)![1];
    this.store.images!.find((image) => image.id === id)!.status = 'active';
  }
}

const GUEST = { name: 'kolla-ts-guest', kernel: new Uint8Array([1]), ramdisk: new Uint8Array([2]), disk: new Uint8Array(8), buildId: 'build-1', commandLine: 'console=ttyS0' };

describe('init-cloud against an API', () => {
  it('makes every resource once, then keeps them all', async () => {
    const cloud = new MemoryCloud();
    const layout = { ...layoutWith(), guest: GUEST };
    const first = await initCloud(cloud, layout, () => {});
    expect(first.filter((c) => c.outcome === 'created').map((c) => `${c.kind} ${c.name}`)).toEqual([
      'network public1',
      'subnet public1-subnet',
      'network demo-net',
      'subnet demo-subnet',
      'router demo-router',
      'router interface demo-router on the demo subnet',
      'security group rule default: ingress icmp',
      'security group rule default: ingress tcp 22',
      'security group rule default: ingress tcp 80',
      'keypair mykey',
      'flavor m1.tiny',
      'flavor m1.small',
      'image kolla-ts-guest-kernel',
      'image kolla-ts-guest-ramdisk',
      'image kolla-ts-guest',
    ]);
    // The external network is flat on physnet1 and routed; the demo network takes the cloud's tenant type.
    expect(cloud.store.networks![0]).toMatchObject({ 'router:external': true, 'provider:network_type': 'flat', 'provider:physical_network': 'physnet1' });
    expect(cloud.store.networks![1]).not.toHaveProperty('provider:network_type');
    expect(cloud.store.subnets![0]).toMatchObject({ enable_dhcp: false, allocation_pools: [{ start: '203.0.113.128', end: '203.0.113.254' }] });
    // The disk image boots the kernel and ramdisk uploaded before it.
    const [kernel, ramdisk, disk] = cloud.store.images!;
    expect(disk).toMatchObject({ disk_format: 'raw', kernel_id: kernel!.id, ramdisk_id: ramdisk!.id, os_command_line: 'console=ttyS0', status: 'active' });

    cloud.calls.length = 0;
    const second = await initCloud(cloud, layout, () => {});
    expect(second.every((c) => c.outcome === 'kept')).toBe(true);
    expect(second).toHaveLength(first.length);
    expect(cloud.calls.filter((c) => !c.startsWith('GET '))).toEqual([]);
  });

  it('gives a router without a gateway the external network, and says when an image is from another build', async () => {
    const cloud = new MemoryCloud();
    const layout = { ...layoutWith(), guest: GUEST };
    await initCloud(cloud, layout, () => {});
    cloud.store.routers![0]!.external_gateway_info = null;
    const seen: CloudChange[] = [];
    await initCloud(cloud, { ...layout, guest: { ...GUEST, buildId: 'build-2' } }, (c) => seen.push(c));
    expect(seen.find((c) => c.kind === 'router')).toMatchObject({ outcome: 'updated' });
    expect(seen.find((c) => c.name === 'kolla-ts-guest')).toMatchObject({ outcome: 'kept', note: expect.stringContaining('another guest build') });
  });

  it('uploads again an image whose upload was cut short', async () => {
    const cloud = new MemoryCloud();
    const layout = { ...layoutWith(), guest: GUEST };
    await initCloud(cloud, layout, () => {});
    cloud.store.images![2]!.status = 'queued';
    cloud.send = (async (service: ServiceType, method: string, path: string, body?: unknown) => {
      if (method === 'DELETE') {
        cloud.calls.push(`DELETE ${path}`);
        cloud.store.images!.splice(cloud.store.images!.findIndex((i) => path.endsWith(String(i.id))), 1);
        return undefined;
      }
      return MemoryCloud.prototype.send.call(cloud, service, method, path, body);
    }) as CloudApi['send'];
    const changes = await initCloud(cloud, layout, () => {});
    expect(cloud.calls).toContain('DELETE /v2/images/id-15');
    expect(changes.find((c) => c.name === 'kolla-ts-guest')).toMatchObject({ outcome: 'created' });
  });
});

describe('the OpenStack API client', () => {
  const credentials = { authUrl: 'http://198.51.100.10:5000/v3', username: 'admin', password: 'pa$$-secret-value', projectName: 'admin', region: 'RegionOne', interface: 'internal' as const };
  const catalog = [{ type: 'network', endpoints: [{ interface: 'internal', region_id: 'RegionOne', url: 'http://198.51.100.10:9696/' }, { interface: 'public', region_id: 'RegionOne', url: 'http://203.0.113.9:9696' }] }];

  function fakeFetch(answer: (url: string, init: RequestInit) => Response): { fetch: typeof fetch; seen: string[] } {
    const seen: string[] = [];
    return {
      seen,
      fetch: (async (url: string, init: RequestInit) => {
        seen.push(`${init.method} ${url}`);
        if (url.endsWith('/auth/tokens')) return new Response(JSON.stringify({ token: { project: { id: 'p1' }, catalog } }), { status: 201, headers: { 'x-subject-token': 'tok' } });
        return answer(url, init);
      }) as typeof fetch,
    };
  }

  it('calls the catalog URL of the chosen interface with the token', async () => {
    const { fetch, seen } = fakeFetch(() => new Response(JSON.stringify({ networks: [] })));
    const api = await OpenStackApi.login(credentials, fetch);
    expect(api.projectId).toBe('p1');
    await api.get('network', '/v2.0/networks');
    expect(seen).toEqual(['POST http://198.51.100.10:5000/v3/auth/tokens', 'GET http://198.51.100.10:9696/v2.0/networks']);
  });

  it("carries the API's own message, names the call, and is exit 8", async () => {
    const { fetch } = fakeFetch(() => new Response(JSON.stringify({ NeutronError: { type: 'NoNetworkAvailable', message: 'Unable to create the network. No tenant network is available for allocation.' } }), { status: 503 }));
    const api = await OpenStackApi.login(credentials, fetch);
    const failing = api.send('network', 'POST', '/v2.0/networks', { network: { name: 'demo-net' } });
    await expect(failing).rejects.toThrow(CloudApiError);
    await expect(failing).rejects.toThrow('POST network /v2.0/networks failed (503): Unable to create the network. No tenant network is available for allocation.');
    expect(exitCodeFor(await failing.catch((e: unknown) => e))).toBe(8);
  });

  it('names a refused login without the password, and a missing service', async () => {
    const refusing = (async () => new Response('{"error": {"message": "The request you have made requires authentication."}}', { status: 401 })) as unknown as typeof fetch;
    const error = (await OpenStackApi.login(credentials, refusing).catch((e: unknown) => e)) as Error;
    expect(error.message).toContain('refused the admin credentials from passwords.yml (keystone_admin_password)');
    expect(error.message).not.toContain(credentials.password);
    const { fetch } = fakeFetch(() => new Response('{}'));
    const api = await OpenStackApi.login(credentials, fetch);
    await expect(api.get('image', '/v2/images')).rejects.toThrow('the catalog has no image endpoint');
  });
});

describe('self-service networking config', () => {
  function linuxbridgeIni(globals: string, facts: { apiAddress: string; tunnelAddress?: string }): { agent: string; ml2: string } {
    const { state } = renderRoles({ globals, facts: new Map([['ctl1', facts]]), services: ['neutron'] });
    const files = (container: string) => state.services.flatMap((s) => s.containers).find((c) => c.name === container)!.configFiles;
    return {
      agent: files('neutron_linuxbridge_agent').find((f) => f.name === 'linuxbridge_agent.ini')!.content,
      ml2: files('neutron_server').find((f) => f.name === 'ml2_conf.ini')!.content,
    };
  }

  it('gives projects VXLAN networks by default, tunnelled from the tunnel interface address', () => {
    const { agent, ml2 } = linuxbridgeIni('', { apiAddress: '198.51.100.1', tunnelAddress: '198.18.7.1' });
    expect(ml2).toMatch(/^tenant_network_types = vxlan$/m);
    expect(ml2).toMatch(/^mechanism_drivers = linuxbridge,l2population$/m);
    expect(agent).toMatch(/^enable_vxlan = true$/m);
    expect(agent).toMatch(/^local_ip = 198\.18\.7\.1$/m);
    expect(agent).toMatch(/^l2_population = true$/m);
  });

  it('tunnels from the API address when tunnel_interface is the API interface', () => {
    expect(linuxbridgeIni('', { apiAddress: '198.51.100.1' }).agent).toMatch(/^local_ip = 198\.51\.100\.1$/m);
  });

  it('turns VXLAN off when projects get no self-service networks', () => {
    const { agent, ml2 } = linuxbridgeIni('neutron_tenant_network_types: ""\n', { apiAddress: '198.51.100.1' });
    expect(ml2).toMatch(/^tenant_network_types = $/m);
    expect(agent).toMatch(/^enable_vxlan = false$/m);
    expect(agent).not.toMatch(/local_ip/);
  });
});

describe('facts: the tunnel address', () => {
  function pool(addresses: Record<string, Record<string, string | undefined>>): HostPool {
    return { connection: async (host: string) => ({ interfaceAddress: async (name: string) => addresses[host]![name] }) } as unknown as HostPool;
  }

  async function gather(inventoryText: string, addresses: Record<string, Record<string, string | undefined>>) {
    const dir = tempDir();
    writeFileSync(join(dir, 'inventory.yml'), inventoryText);
    const inventory = loadInventory(join(dir, 'inventory.yml'));
    const hosts = [...inventory.hosts.keys()];
    const where = (key: string) => ({ file: join(dir, 'globals.yml'), line: 3, key });
    return gatherFacts({
      inventory,
      pool: pool(addresses),
      hosts,
      targets: new Set(hosts),
      interfaces: { api: { name: 'eth0', location: where('api_interface') }, tunnel: { name: 'eth0', location: where('tunnel_interface') } },
      cacheFile: join(dir, 'facts.json'),
      forks: 5,
      recap: new Recap(hosts),
    });
  }

  it('asks a host for its tunnel_interface address only when that is another interface', async () => {
    const { facts } = await gather('hosts:\n  a: {connection: local}\n  b: {connection: local, vars: {tunnel_interface: eth2}}\ngroups:\n  control: [a, b]\n', {
      a: { eth0: '198.51.100.1' },
      b: { eth0: '198.51.100.2', eth2: '198.18.9.2' },
    });
    expect(facts.get('a')).toEqual({ apiAddress: '198.51.100.1' });
    expect(facts.get('b')).toEqual({ apiAddress: '198.51.100.2', tunnelAddress: '198.18.9.2' });
  });

  it('names the host, the interface and where tunnel_interface is set when it has no address', async () => {
    const gathering = gather('hosts:\n  b: {connection: local, vars: {tunnel_interface: eth2}}\ngroups:\n  control: [b]\n', { b: { eth0: '198.51.100.2' } });
    await expect(gathering).rejects.toThrow(InputError);
    await expect(gathering).rejects.toThrow(/globals\.yml:3 \(key tunnel_interface\): host b has no IPv4 address on tunnel_interface "eth2"/);
  });
});
