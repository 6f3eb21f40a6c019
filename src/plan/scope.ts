import type { DesiredService, DesiredState } from './desired.ts';

/**
 * Narrows a desired state (computed for the whole fleet, so templates can
 * name every host) to the hosts a command may touch. Pure.
 */
export function limitToHosts(desired: DesiredState, hosts: ReadonlySet<string>): DesiredState {
  const services = desired.services.map((service) => ({
    ...service,
    containers: service.containers.filter((c) => hosts.has(c.host)),
    dataContainers: service.dataContainers.filter((c) => hosts.has(c.host)),
    // A one-shot step on a host outside the limit is not this command's to run.
    steps: service.steps.filter((step) => step.step.kind === 'start' || hosts.has(step.host)),
    // Restarts reach the service's hosts within the limit; the rest run on one host each.
    upgrade: {
      before: service.upgrade.before.filter((step) => hosts.has(step.host)),
      after: service.upgrade.after.filter((step) => step.step.kind === 'restart' || hosts.has(step.host)),
    },
  }));
  return { services: services.filter((s) => s.containers.length + s.dataContainers.length + s.steps.length > 0), hosts: desired.hosts.filter((h) => hosts.has(h)) };
}

/**
 * Services that cannot run because a host they need is down: one whose
 * one-shot steps (databases, registrations, migrations) run on a down host
 * is stopped everywhere, and so is every service that requires it. The
 * rest keep going on the hosts that answer. Pure.
 */
export function withoutDownHosts(desired: DesiredState, down: ReadonlySet<string>): { desired: DesiredState; blocked: Map<string, string> } {
  const blocked = new Map<string, string>();
  for (const service of desired.services) {
    const name = service.role.service;
    const oneShots = [...service.steps, ...service.upgrade.before, ...service.upgrade.after].filter((step) => step.step.kind !== 'start' && step.step.kind !== 'restart');
    const stepHost = oneShots.find((step) => down.has(step.host))?.host;
    if (stepHost) {
      blocked.set(name, `its one-shot steps run on ${stepHost}, which is unreachable`);
      continue;
    }
    const required = service.role.requires.find((r) => blocked.has(r));
    if (required) blocked.set(name, `it requires ${required}, which cannot run`);
  }
  const up = new Set(desired.hosts.filter((h) => !down.has(h)));
  const kept: DesiredService[] = desired.services.filter((s) => !blocked.has(s.role.service));
  return { desired: limitToHosts({ services: kept, hosts: desired.hosts }, up), blocked };
}
