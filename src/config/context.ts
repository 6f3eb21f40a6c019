import type { Inventory } from '../inventory/inventory.ts';
import { urlComponent } from '../util/escape.ts';
import type { Globals } from './globals.ts';
import type { Passwords } from './passwords.ts';
import type { TemplateContext } from './templates.ts';

export const PORTS = {
  keystone_public_port: 5000,
  glance_api_port: 9292,
  placement_api_port: 8780,
  nova_api_port: 8774,
  nova_metadata_port: 8775,
  nova_novncproxy_port: 6080,
  neutron_server_port: 9696,
  heat_api_port: 8004,
  heat_api_cfn_port: 8000,
  mariadb_port: 3306,
  rabbitmq_port: 5672,
  memcached_port: 11211,
  horizon_port: 80,
  cinder_api_port: 8776,
  ceph_mon_port: 6789,
  ceph_mon_msgr2_port: 3300,
} as const;

/** What was learnt about each host before planning (its addresses). */
export interface HostFacts {
  apiAddress: string;
  /** Only when tunnel_interface is not the API interface. */
  tunnelAddress?: string;
}

/**
 * The variables config templates see on one host. Until a load balancer
 * role exists, every internal endpoint is at kolla_internal_vip_address.
 */
export function templateContext(
  globals: Globals,
  passwords: Passwords,
  inventory: Inventory,
  facts: ReadonlyMap<string, HostFacts>,
  host: string,
): TemplateContext {
  const vip = String(globals.kolla_internal_vip_address);
  const url = (port: number, path = ''): string => `http://${vip}:${port}${path}`;
  const hostsIn: Record<string, { name: string; address: string }[]> = {};
  for (const [group, members] of inventory.groups) {
    // Facts are gathered for hosts that run something; a group member that runs nothing here
    // (kolla-ansible's [deployment] localhost, say) is listed only if the inventory gives its address.
    hostsIn[`hosts_in_${group}`] = members.flatMap((name) => {
      const address = facts.get(name)?.apiAddress ?? inventory.hosts.get(name)?.apiAddress;
      return address ? [{ name, address }] : [];
    });
  }
  const rabbitHosts = hostsIn.hosts_in_control ?? [];
  const cephMonitors = (hostsIn.hosts_in_storage ?? []).map(({ name, address }) => {
    const host = address.includes(':') ? `[${address}]` : address;
    return { name, addrs: `[v2:${host}:${PORTS.ceph_mon_msgr2_port},v1:${host}:${PORTS.ceph_mon_port}]` };
  });
  // A host's inventory variables (network_interface, anything unknown) override globals for its templates.
  return {
    ...globals,
    ...inventory.hosts.get(host)?.vars,
    ...passwords,
    ...PORTS,
    ...hostsIn,
    inventory_hostname: host,
    hostname: host,
    api_interface_address: facts.get(host)!.apiAddress,
    tunnel_interface_address: facts.get(host)!.tunnelAddress ?? facts.get(host)!.apiAddress,
    // Self-service networks over VXLAN: the Linux bridge agent needs a tunnel endpoint.
    neutron_vxlan: String(globals.neutron_tenant_network_types ?? '').split(',').includes('vxlan'),
    database_address: vip,
    database_port: PORTS.mariadb_port,
    database_user: 'root',
    memcached_servers: `${vip}:${PORTS.memcached_port}`,
    rabbitmq_servers: rabbitHosts.map((h) => `${h.address}:${PORTS.rabbitmq_port}`).join(','),
    transport_url: `rabbit://openstack:${urlComponent(passwords.rabbitmq_password ?? '')}@${vip}:${PORTS.rabbitmq_port}//`,
    keystone_internal_url: url(PORTS.keystone_public_port),
    keystone_public_url: url(PORTS.keystone_public_port),
    glance_internal_url: url(PORTS.glance_api_port),
    placement_internal_url: url(PORTS.placement_api_port),
    nova_internal_url: url(PORTS.nova_api_port, '/v2.1'),
    neutron_internal_url: url(PORTS.neutron_server_port),
    // Keystone fills %(tenant_id)s with the caller's project; the heat client relies on it.
    heat_internal_url: url(PORTS.heat_api_port, '/v1/%(tenant_id)s'),
    heat_cfn_internal_url: url(PORTS.heat_api_cfn_port, '/v1'),
    nova_metadata_host: vip,
    nova_novncproxy_base_url: url(PORTS.nova_novncproxy_port, '/vnc_lite.html'),
    // Keystone fills %(project_id)s with the caller's project.
    cinder_internal_url: url(PORTS.cinder_api_port, '/v3/%(project_id)s'),
    // Ceph clients: an existing cluster (files from the operator) unless kolla-ts runs its own; cephx keys
    // always with its own; cinder's RBD volumes as nova sees them; whether nova_libvirt needs Ceph at all.
    ceph_external: globals.enable_ceph !== true,
    ceph_cephx: globals.enable_ceph === true || globals.external_ceph_cephx_enabled === true,
    cinder_ceph: globals.enable_cinder === true && globals.cinder_backend_ceph === true,
    nova_libvirt_ceph: (globals.enable_cinder === true && globals.cinder_backend_ceph === true) || globals.nova_backend_ceph === true,
    // Ceph's monitors, one per storage host, each with both protocols' addresses; mon_host lists them all.
    ceph_monitors: cephMonitors,
    ceph_mon_host: cephMonitors.map((m) => m.addrs).join(','),
  };
}
