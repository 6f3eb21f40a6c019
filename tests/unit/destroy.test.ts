/**
 * destroy against an in-memory engine and host: what it does to each
 * container, in which order. The real thing runs in the all-in-one e2e
 * (a machine taken over from another config directory) and the benches.
 */
import { describe, expect, it } from 'vitest';
import type { ContainerSpec } from '../../src/engine/containers.ts';
import { destroy } from '../../src/deploy/operations.ts';
import type { Deployment } from '../../src/deploy/session.ts';
import { Recap } from '../../src/fleet/runner.ts';
import type { DesiredContainer } from '../../src/plan/desired.ts';
import type { Role } from '../../src/plan/roles.ts';
import { MemoryEngine, MemoryHost } from '../helpers/memory-host.ts';

const role = { service: 'nova', enable: 'enable_nova', containers: [{ name: 'nova_libvirt', volumes: ['libvirtd:/var/lib/libvirt'] }], dataContainers: [{ name: 'nova_compute_data', volumes: ['nova_compute_instances:/var/lib/nova/instances'] }] } as unknown as Role;

function container(name: string, kind: 'service' | 'data', volumes: string[]): DesiredContainer {
  const spec = { name, image: `nova:${name}`, labels: {}, environment: {}, volumes, volumesFrom: [], privileged: true, networkMode: 'host', capAdd: [], restart: kind === 'service' } as ContainerSpec;
  return { host: 'node1', service: 'nova', name, kind, spec, definition: { volumes }, configDir: `/etc/kolla/${name}` } as unknown as DesiredContainer;
}

async function destroyed(includeData: boolean): Promise<string[]> {
  const engine = new MemoryEngine();
  const host = new MemoryHost('node1');
  const libvirt = container('nova_libvirt', 'service', ['libvirtd:/var/lib/libvirt']);
  const data = container('nova_compute_data', 'data', ['nova_compute_instances:/var/lib/nova/instances']);
  await engine.create(data.spec);
  await engine.create(libvirt.spec);
  await engine.start('nova_libvirt');
  engine.calls.length = 0;
  const deployment = {
    globals: { node_config_directory: '/etc/kolla', enable_nova: true },
    roles: [role],
    desired: { hosts: ['node1'], services: [{ role, containers: [libvirt], dataContainers: [data], steps: [], upgrade: { before: [], after: [] }, after: [] }] },
    policy: { forks: 1 },
    pool: { get: async () => ({ engine, connection: host }) },
    recap: new Recap(['node1']),
    redact: (text: string) => text,
  } as unknown as Deployment;
  await destroy(deployment, { includeData, includeImages: false }, () => {});
  return engine.calls;
}

describe('destroy', () => {
  it('stops a service container before removing it: a forced removal kills only dumb-init, and libvirtd, out of the container\'s cgroups, would run on', async () => {
    expect(await destroyed(false)).toEqual(['stop nova_libvirt', 'remove nova_libvirt']);
  });

  it('removes data containers only when asked, without a stop (they never run)', async () => {
    expect(await destroyed(true)).toEqual(['stop nova_libvirt', 'remove nova_libvirt', 'remove nova_compute_data']);
  });
});
