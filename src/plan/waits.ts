import type { Role, Step } from './roles.ts';

/**
 * What each part of a service's deploy waits for. A service does not wait
 * for everything it requires before it begins: each step waits only for the
 * required services it uses (nova's migrations need its database, not
 * keystone or placement), so a long chain of services overlaps. Pure: the
 * deployer (src/deploy/apply.ts) gives the work and the outcomes.
 */

/** The container `database` and `register` steps run in: runStep execs `mariadb` and `kolla_register` there. */
export const TOOLBOX_CONTAINER = 'kolla_toolbox';

/** The service kolla_register talks to (the toolbox's clouds.yaml): nothing a role declares says so. */
export const IDENTITY_SERVICE = 'keystone';

/** The services behind the toolbox, as the loaded roles declare them. */
export interface ToolboxServices {
  /** The service that runs the toolbox container (none when no role declares one). */
  toolbox: string[];
  /** What the toolbox requires: the database its SQL client reaches. */
  database: string[];
}

export function toolboxServices(roles: readonly Role[]): ToolboxServices {
  const role = roles.find((r) => r.containers.some((c) => c.name === TOOLBOX_CONTAINER));
  return { toolbox: role ? [role.service] : [], database: role ? role.requires : [] };
}

/**
 * The services a step of `role` waits for: of those the role requires
 * (never more, so no wait can go round in a circle, and never the role
 * itself), the ones the step uses. In the order of `requires`.
 */
export function awaitedBy(role: Role, step: Step, toolbox: ToolboxServices): string[] {
  let uses: readonly string[];
  switch (step.kind) {
    case 'database':
      uses = [...toolbox.toolbox, ...toolbox.database];
      break;
    case 'register':
      uses = [...toolbox.toolbox, IDENTITY_SERVICE];
      break;
    case 'bootstrap':
    case 'oneshot':
    case 'exec':
      uses = step.needs ?? role.requires;
      break;
    case 'start':
    case 'restart':
      uses = role.requires;
      break;
  }
  return role.requires.filter((name) => uses.includes(name));
}

/**
 * The parts of a service's deploy, in order: `prepare` (pull images, place
 * config, create data containers) when its first step may run and not
 * before, since a service whose requirement failed must not touch its
 * hosts; each step given (those that will run); then `rest`, the
 * containers no start step named. Starting containers waits for every
 * required service.
 */
export type Stage<S> = { part: 'prepare'; awaits: string[] } | { part: 'step'; step: S; awaits: string[] } | { part: 'rest'; awaits: string[] };

export function serviceStages<S extends { step: Step }>(role: Role, steps: readonly S[], toolbox: ToolboxServices): Stage<S>[] {
  const stepStages = steps.map((step): Stage<S> => ({ part: 'step', step, awaits: awaitedBy(role, step.step, toolbox) }));
  const rest: Stage<S> = { part: 'rest', awaits: [...role.requires] };
  return [{ part: 'prepare', awaits: [...(stepStages[0] ?? rest).awaits] }, ...stepStages, rest];
}

/** A service's outcome, settled once it is done: true when it completed. */
export type ServiceOutcome = (service: string) => Promise<boolean>;

/** Waits until every one of `services` is done; the first of them (in the order given) that did not complete, if any. */
export async function firstIncomplete(outcome: ServiceOutcome, services: readonly string[]): Promise<string | undefined> {
  const completed = await Promise.all(services.map(outcome));
  return services.find((_, i) => !completed[i]);
}

/** How a service's stages ended: all ran, one stopped the service, or a service waited for did not complete. */
export type StagesResult = { ok: true } | { ok: false; incomplete?: string };

/** Runs stages in order, each once what it awaits is done; `run` returns false when its stage stopped the service. */
export async function runStages<T extends { awaits: readonly string[] }>(stages: readonly T[], outcome: ServiceOutcome, run: (stage: T) => Promise<boolean>): Promise<StagesResult> {
  for (const stage of stages) {
    const incomplete = await firstIncomplete(outcome, stage.awaits);
    if (incomplete) return { ok: false, incomplete };
    if (!(await run(stage))) return { ok: false };
  }
  return { ok: true };
}
