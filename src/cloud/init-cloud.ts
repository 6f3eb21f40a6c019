import { CloudApiError } from '../errors.ts';
import type { CloudApi } from './openstack-api.ts';

/**
 * What `kolla-ts init-cloud` makes in a new cloud, in the spirit of
 * kolla-ansible's init-runonce: an external flat network on physnet1, a
 * self-service demo network behind a router, a keypair, flavors, a default
 * security group that lets ICMP, SSH and HTTP in, and a guest image.
 * Every resource is found by name first: a second run changes nothing.
 */
export interface CloudLayout {
  external: { name: string; physicalNetwork: string; cidr: string; gateway: string; poolStart: string; poolEnd: string };
  demo: { name: string; cidr: string; gateway: string };
  router: string;
  keypair: { name: string; publicKey: string };
  flavors: { name: string; vcpus: number; ramMiB: number; diskGiB: number }[];
  /** Ingress rules added to the admin project's default security group. */
  ingress: { protocol: 'icmp' | 'tcp'; port?: number }[];
  guest?: GuestImage;
}

/** A kernel and initramfs booted directly by nova (an AKI/ARI pair), and the small root disk that names them. */
export interface GuestImage {
  name: string;
  kernel: Uint8Array;
  ramdisk: Uint8Array;
  disk: Uint8Array;
  /** The build's fingerprint, kept as an image property: a different build is reported, not replaced. */
  buildId: string;
  commandLine: string;
}

export interface CloudChange {
  kind: string;
  name: string;
  outcome: 'created' | 'kept' | 'updated';
  id: string;
  note?: string;
}

interface Named {
  id: string;
  name: string;
}

export const DEFAULT_INGRESS: CloudLayout['ingress'] = [{ protocol: 'icmp' }, { protocol: 'tcp', port: 22 }, { protocol: 'tcp', port: 80 }];

export const DEFAULT_FLAVORS: CloudLayout['flavors'] = [
  { name: 'm1.tiny', vcpus: 1, ramMiB: 512, diskGiB: 1 },
  { name: 'm1.small', vcpus: 1, ramMiB: 2048, diskGiB: 20 },
];

export async function initCloud(api: CloudApi, layout: CloudLayout, report: (change: CloudChange) => void): Promise<CloudChange[]> {
  const changes: CloudChange[] = [];
  const note = (change: CloudChange): void => {
    changes.push(change);
    report(change);
  };

  const external = await ensureNetwork(api, note, layout.external.name, {
    'router:external': true,
    'provider:network_type': 'flat',
    'provider:physical_network': layout.external.physicalNetwork,
  });
  await ensureSubnet(api, note, `${layout.external.name}-subnet`, {
    network_id: external.id,
    ip_version: 4,
    cidr: layout.external.cidr,
    gateway_ip: layout.external.gateway,
    // Addresses on the external network belong to routers and floating IPs, not to DHCP.
    enable_dhcp: false,
    allocation_pools: [{ start: layout.external.poolStart, end: layout.external.poolEnd }],
  });
  // The network type is the cloud's tenant default (VXLAN): what a project's own network gets.
  const demo = await ensureNetwork(api, note, layout.demo.name, {});
  const demoSubnet = await ensureSubnet(api, note, `${layout.demo.name.replace(/-net$/, '')}-subnet`, {
    network_id: demo.id,
    ip_version: 4,
    cidr: layout.demo.cidr,
    gateway_ip: layout.demo.gateway,
    enable_dhcp: true,
    dns_nameservers: [],
  });
  await ensureRouter(api, note, layout.router, external.id, demo.id, demoSubnet.id);
  await ensureSecurityGroupRules(api, note, layout.ingress);
  await ensureKeypair(api, note, layout.keypair);
  // One listing serves every flavor.
  const { flavors } = await api.get<{ flavors: Named[] }>('compute', '/flavors/detail?is_public=None');
  for (const flavor of layout.flavors) await ensureFlavor(api, note, flavor, flavors);
  if (layout.guest) await ensureGuestImage(api, note, layout.guest);
  return changes;
}

async function findByName<T extends Named>(api: CloudApi, service: 'network', collection: string, name: string): Promise<T | undefined> {
  const listed = await api.get<Record<string, T[]>>(service, `/v2.0/${collection}?name=${encodeURIComponent(name)}&project_id=${api.projectId}`);
  const found = listed[collection]!.filter((item) => item.name === name);
  return found[0];
}

async function ensureNetwork(api: CloudApi, note: (c: CloudChange) => void, name: string, attributes: Record<string, unknown>): Promise<Named> {
  const existing = await findByName<Named>(api, 'network', 'networks', name);
  if (existing) {
    note({ kind: 'network', name, outcome: 'kept', id: existing.id });
    return existing;
  }
  const { network } = await api.send<{ network: Named }>('network', 'POST', '/v2.0/networks', { network: { name, ...attributes } });
  note({ kind: 'network', name, outcome: 'created', id: network.id });
  return network;
}

async function ensureSubnet(api: CloudApi, note: (c: CloudChange) => void, name: string, attributes: Record<string, unknown> & { network_id: string; cidr: string }): Promise<Named> {
  const existing = await findByName<Named & { cidr: string; network_id: string }>(api, 'network', 'subnets', name);
  if (existing) {
    const differs = existing.cidr !== attributes.cidr || existing.network_id !== attributes.network_id;
    note({ kind: 'subnet', name, outcome: 'kept', id: existing.id, ...(differs ? { note: `it has ${existing.cidr}, not ${attributes.cidr}: delete it to make it again` } : {}) });
    return existing;
  }
  const { subnet } = await api.send<{ subnet: Named }>('network', 'POST', '/v2.0/subnets', { subnet: { name, ...attributes } });
  note({ kind: 'subnet', name, outcome: 'created', id: subnet.id });
  return subnet;
}

async function ensureRouter(api: CloudApi, note: (c: CloudChange) => void, name: string, externalId: string, demoId: string, demoSubnetId: string): Promise<void> {
  type Router = Named & { external_gateway_info: { network_id: string } | null };
  let router = await findByName<Router>(api, 'network', 'routers', name);
  if (!router) {
    ({ router } = await api.send<{ router: Router }>('network', 'POST', '/v2.0/routers', { router: { name, external_gateway_info: { network_id: externalId } } }));
    note({ kind: 'router', name, outcome: 'created', id: router.id });
  } else if (router.external_gateway_info?.network_id !== externalId) {
    await api.send('network', 'PUT', `/v2.0/routers/${router.id}`, { router: { external_gateway_info: { network_id: externalId } } });
    note({ kind: 'router', name, outcome: 'updated', id: router.id, note: 'gateway set to the external network' });
  } else {
    note({ kind: 'router', name, outcome: 'kept', id: router.id });
  }
  const { ports } = await api.get<{ ports: { id: string }[] }>('network', `/v2.0/ports?device_id=${router.id}&network_id=${demoId}`);
  if (ports.length > 0) {
    note({ kind: 'router interface', name: `${name} on the demo subnet`, outcome: 'kept', id: ports[0]!.id });
    return;
  }
  const added = await api.send<{ port_id: string }>('network', 'PUT', `/v2.0/routers/${router.id}/add_router_interface`, { subnet_id: demoSubnetId });
  note({ kind: 'router interface', name: `${name} on the demo subnet`, outcome: 'created', id: added.port_id });
}

async function ensureSecurityGroupRules(api: CloudApi, note: (c: CloudChange) => void, ingress: CloudLayout['ingress']): Promise<void> {
  type Rule = { id: string; direction: string; ethertype: string; protocol: string | null; port_range_min: number | null; port_range_max: number | null; remote_ip_prefix: string | null; remote_group_id: string | null };
  // Listing its security groups makes neutron create the project's default group when it has none yet.
  const { security_groups: groups } = await api.get<{ security_groups: (Named & { security_group_rules: Rule[] })[] }>(
    'network',
    `/v2.0/security-groups?name=default&project_id=${api.projectId}`,
  );
  const group = groups[0];
  if (!group) throw new CloudApiError(`neutron lists no default security group for project ${api.projectId}`);
  for (const wanted of ingress) {
    const name = `default: ingress ${wanted.protocol}${wanted.port ? ` ${wanted.port}` : ''}`;
    const present = group.security_group_rules.find(
      (rule) =>
        rule.direction === 'ingress' &&
        rule.ethertype === 'IPv4' &&
        rule.protocol === wanted.protocol &&
        (wanted.port === undefined || (rule.port_range_min === wanted.port && rule.port_range_max === wanted.port)) &&
        rule.remote_group_id === null &&
        (rule.remote_ip_prefix === null || rule.remote_ip_prefix === '0.0.0.0/0'),
    );
    if (present) {
      note({ kind: 'security group rule', name, outcome: 'kept', id: present.id });
      continue;
    }
    const { security_group_rule: rule } = await api.send<{ security_group_rule: { id: string } }>('network', 'POST', '/v2.0/security-group-rules', {
      security_group_rule: {
        security_group_id: group.id,
        direction: 'ingress',
        ethertype: 'IPv4',
        protocol: wanted.protocol,
        remote_ip_prefix: '0.0.0.0/0',
        ...(wanted.port !== undefined ? { port_range_min: wanted.port, port_range_max: wanted.port } : {}),
      },
    });
    note({ kind: 'security group rule', name, outcome: 'created', id: rule.id });
  }
}

async function ensureKeypair(api: CloudApi, note: (c: CloudChange) => void, keypair: CloudLayout['keypair']): Promise<void> {
  const existing = await api.find<{ keypair: { name: string; public_key: string } }>('compute', `/os-keypairs/${encodeURIComponent(keypair.name)}`);
  if (existing) {
    const same = existing.keypair.public_key.split(/\s+/)[1] === keypair.publicKey.split(/\s+/)[1];
    note({ kind: 'keypair', name: keypair.name, outcome: 'kept', id: keypair.name, ...(same ? {} : { note: 'it holds another public key' }) });
    return;
  }
  await api.send('compute', 'POST', '/os-keypairs', { keypair: { name: keypair.name, public_key: keypair.publicKey } });
  note({ kind: 'keypair', name: keypair.name, outcome: 'created', id: keypair.name });
}

async function ensureFlavor(api: CloudApi, note: (c: CloudChange) => void, flavor: CloudLayout['flavors'][number], flavors: readonly Named[]): Promise<void> {
  const existing = flavors.find((f) => f.name === flavor.name);
  if (existing) {
    note({ kind: 'flavor', name: flavor.name, outcome: 'kept', id: existing.id });
    return;
  }
  const created = await api.send<{ flavor: Named }>('compute', 'POST', '/flavors', {
    flavor: { name: flavor.name, vcpus: flavor.vcpus, ram: flavor.ramMiB, disk: flavor.diskGiB },
  });
  note({ kind: 'flavor', name: flavor.name, outcome: 'created', id: created.flavor.id });
}

async function ensureGuestImage(api: CloudApi, note: (c: CloudChange) => void, guest: GuestImage): Promise<void> {
  const kernel = await ensureImage(api, note, `${guest.name}-kernel`, 'aki', guest.kernel, guest.buildId, {});
  const ramdisk = await ensureImage(api, note, `${guest.name}-ramdisk`, 'ari', guest.ramdisk, guest.buildId, {});
  await ensureImage(api, note, guest.name, 'raw', guest.disk, guest.buildId, { kernel_id: kernel, ramdisk_id: ramdisk, os_command_line: guest.commandLine });
}

type GlanceImage = Named & { status: string; kolla_ts_build?: string };

/** Finds an active image by name, or uploads one; returns its id. An upload cut short (not active) is deleted and made again. */
async function ensureImage(
  api: CloudApi,
  note: (c: CloudChange) => void,
  name: string,
  format: 'aki' | 'ari' | 'raw',
  data: Uint8Array,
  buildId: string,
  properties: Record<string, string>,
): Promise<string> {
  const { images } = await api.get<{ images: GlanceImage[] }>('image', `/v2/images?name=${encodeURIComponent(name)}`);
  const active = images.find((image) => image.status === 'active');
  if (active) {
    const other = active.kolla_ts_build !== buildId;
    note({ kind: 'image', name, outcome: 'kept', id: active.id, ...(other ? { note: 'from another guest build: delete it to upload this one' } : {}) });
    return active.id;
  }
  for (const stale of images) await api.send('image', 'DELETE', `/v2/images/${stale.id}`);
  const container = format === 'raw' ? 'bare' : format;
  const image = await api.send<GlanceImage>('image', 'POST', '/v2/images', {
    name,
    disk_format: format,
    container_format: container,
    visibility: 'public',
    kolla_ts_build: buildId,
    ...properties,
  });
  await api.upload('image', `/v2/images/${image.id}/file`, data);
  note({ kind: 'image', name, outcome: 'created', id: image.id });
  return image.id;
}
