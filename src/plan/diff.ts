import type { ContainerState } from '../engine/containers.ts';
import { hashOf, LABEL, type ContainerDefinition, type DesiredContainer, type DesiredState, type DesiredStep } from './desired.ts';

/** What each host has now, as far as planning needs. */
export interface ObservedHost {
  containers: Map<string, ContainerState>;
  /** Config files per container directory: file name → content. */
  configFiles: Map<string, Map<string, string>>;
  /** Stamps of steps already done, by step id. */
  stepStamps: Record<string, string>;
  /**
   * Config a container was restarted with since its creation (labels are
   * fixed at creation): container name → {id, configHash}. Counts only for
   * the container id it names.
   */
  appliedConfig: Record<string, { id: string; configHash: string }>;
  /** Local image id of every image reference the desired state uses (null: not present). */
  imageIds: Map<string, string | null>;
  /** References present here whose tag the registry now has for another image (re-pushed). */
  staleImages: Set<string>;
}

export type ContainerActionKind = 'create' | 'recreate' | 'restart' | 'start' | 'none';

export interface ContainerAction {
  host: string;
  service: string;
  container: string;
  kind: 'service' | 'data';
  action: ContainerActionKind;
  reasons: string[];
  /** Pull the image first even though a copy is present: the registry has a newer one. */
  pull?: boolean;
}

export interface FileAction {
  host: string;
  container: string;
  path: string;
  action: 'write' | 'remove';
}

export interface StepAction {
  host: string;
  service: string;
  id: string;
  description: string;
  run: boolean;
  /** Recorded on the host once the step has run. */
  stamp: string;
}

export interface ServicePlan {
  service: string;
  files: FileAction[];
  containers: ContainerAction[];
  steps: StepAction[];
}

export interface Plan {
  services: ServicePlan[];
}

/** What a host records once a step ran: its inputs, and the local id of the image it ran (a rebuilt image reruns it). */
export function stepStamp(step: DesiredStep, imageId: string | null): string {
  return step.imageRef ? hashOf([step.stamp, imageId]) : step.stamp;
}

export function stepId(step: DesiredStep): string {
  return `${step.service}/${step.index}/${step.step.kind}`;
}

/** Compares desired with observed state: pure, so `plan` and `deploy` agree by construction. */
export function diffState(desired: DesiredState, observed: ReadonlyMap<string, ObservedHost>, options: { runSteps: boolean }): Plan {
  return {
    services: desired.services.map((service) => {
      const files: FileAction[] = [];
      const containers: ContainerAction[] = [];
      for (const data of service.dataContainers) containers.push(dataAction(data, observed.get(data.host)!));
      for (const container of service.containers) {
        const host = observed.get(container.host)!;
        files.push(...fileActions(container, host));
        containers.push(containerAction(container, host));
      }
      const steps = service.steps
        .filter((step) => step.step.kind !== 'start')
        .map((step) => {
          const id = stepId(step);
          const host = observed.get(step.host)!;
          const stamp = stepStamp(step, step.imageRef ? (host.imageIds.get(step.imageRef) ?? null) : null);
          return { host: step.host, service: service.role.service, id, description: step.description, run: options.runSteps && host.stepStamps[id] !== stamp, stamp };
        });
      return { service: service.role.service, files, containers, steps };
    }),
  };
}

function dataAction(data: DesiredContainer, host: ObservedHost): ContainerAction {
  const base = { host: data.host, service: data.service, container: data.name, kind: 'data' as const };
  const current = host.containers.get(data.name);
  if (!current) return { ...base, action: 'create', reasons: ['missing'] };
  // Data containers hold user data: never replaced, only reported.
  const reasons = current.labels[LABEL.definitionHash] !== data.definitionHash ? ['definition differs; data containers are never replaced'] : [];
  return { ...base, action: 'none', reasons };
}

function containerAction(container: DesiredContainer, host: ObservedHost): ContainerAction {
  const base = { host: container.host, service: container.service, container: container.name, kind: 'service' as const };
  const current = host.containers.get(container.name);
  const pull = host.staleImages.has(container.spec.image) ? { pull: true } : {};
  if (!current) return { ...base, action: 'create', reasons: ['missing'], ...pull };
  if (current.labels[LABEL.definitionHash] !== container.definitionHash) {
    return { ...base, action: 'recreate', reasons: changedFields(current.labels[LABEL.definition], container.definition), ...pull };
  }
  if (host.staleImages.has(container.spec.image)) {
    return { ...base, action: 'recreate', reasons: [`the registry has a new ${container.spec.image} (re-pushed)`], pull: true };
  }
  // Same reference, rebuilt or pulled since: the tag now names another image.
  const localImage = host.imageIds.get(container.spec.image);
  if (localImage && localImage !== current.imageId) return { ...base, action: 'recreate', reasons: [`${container.spec.image} now names another image (rebuilt or pulled)`] };
  const applied = host.appliedConfig[container.name];
  const runningConfig = applied && applied.id === current.id ? applied.configHash : current.labels[LABEL.configHash];
  if (runningConfig !== container.configHash) {
    return container.strategy === 'COPY_ONCE'
      ? { ...base, action: 'recreate', reasons: ['config changed under COPY_ONCE'] }
      : { ...base, action: 'restart', reasons: ['config changed under COPY_ALWAYS'] };
  }
  if (!current.running) return { ...base, action: 'start', reasons: [`container is ${current.status}`] };
  // Up to date but not working: a deploy tries again (and reports the log) rather than claim success.
  // A crash loop shows as "restarting", or between two restarts as not yet healthy after a restart.
  const crashLooping = current.status === 'restarting' || (current.restartCount > 0 && current.health === 'starting');
  if (crashLooping || current.health === 'unhealthy') {
    return { ...base, action: 'restart', reasons: [`container is ${crashLooping ? 'restarting' : 'unhealthy'}`] };
  }
  return { ...base, action: 'none', reasons: [] };
}

function changedFields(previous: string | undefined, next: ContainerDefinition): string[] {
  let old: Partial<ContainerDefinition>;
  try {
    old = previous ? (JSON.parse(previous) as Partial<ContainerDefinition>) : {};
  } catch {
    old = {};
  }
  const fields = (Object.keys(next) as (keyof ContainerDefinition)[]).filter((field) => JSON.stringify(old[field] ?? null) !== JSON.stringify(next[field]));
  return fields.length ? fields.map((f) => `${f} changed`) : ['definition changed'];
}

function fileActions(container: DesiredContainer, host: ObservedHost): FileAction[] {
  const present = host.configFiles.get(container.name) ?? new Map<string, string>();
  const actions: FileAction[] = [];
  for (const file of container.configFiles) {
    if (present.get(file.name) !== file.content) actions.push({ host: container.host, container: container.name, path: `${container.configDir}/${file.name}`, action: 'write' });
  }
  const wanted = new Set(container.configFiles.map((f) => f.name));
  for (const name of present.keys()) {
    if (!wanted.has(name)) actions.push({ host: container.host, container: container.name, path: `${container.configDir}/${name}`, action: 'remove' });
  }
  return actions;
}

export function isEmptyPlan(plan: Plan): boolean {
  return plan.services.every((s) => s.files.length === 0 && s.containers.every((c) => c.action === 'none') && s.steps.every((st) => !st.run));
}
