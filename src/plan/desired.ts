import { createHash } from 'node:crypto';
import { templateContext, type HostFacts } from '../config/context.ts';
import type { Globals } from '../config/globals.ts';
import { applyOverrides, customFile } from '../config/overrides.ts';
import type { Passwords } from '../config/passwords.ts';
import type { ConfigRenderer, TemplateContext } from '../config/templates.ts';
import type { ContainerSpec } from '../engine/containers.ts';
import { InputError } from '../errors.ts';
import type { Inventory } from '../inventory/inventory.ts';
import { errorAt } from '../util/yaml.ts';
import { isConfigFileName, type ContainerDef, type DataContainerDef, type HealthcheckDef, type Role, type Step } from './roles.ts';
import { TOOLBOX_CONTAINER } from './waits.ts';

export const LABEL = {
  managed: 'org.kolla-ts.managed',
  service: 'org.kolla-ts.service',
  kind: 'org.kolla-ts.kind',
  definition: 'org.kolla-ts.definition',
  definitionHash: 'org.kolla-ts.definition-hash',
  configHash: 'org.kolla-ts.config-hash',
  strategy: 'org.kolla-ts.config-strategy',
  /** On one-shot bootstrap containers: the container they bootstrap. */
  bootstrap: 'org.kolla-ts.bootstrap',
} as const;

/** The fields of a container that, when changed, mean a new container. Never secret. */
export interface ContainerDefinition {
  image: string;
  environment: Record<string, string>;
  volumes: string[];
  volumes_from: string[];
  privileged: boolean;
  network_mode: string;
  pid_mode: string | null;
  ipc_mode: string | null;
  cap_add: string[];
  user: string | null;
  /** The health test's argv, run without a shell (exec form). */
  healthcheck: string[] | null;
}

export interface ConfigFile {
  name: string;
  content: string;
  mode: number;
}

export interface DesiredContainer {
  host: string;
  service: string;
  name: string;
  kind: 'service' | 'data';
  definition: ContainerDefinition;
  definitionHash: string;
  spec: ContainerSpec;
  /** Host directory holding this container's config (mounted read-only). */
  configDir: string;
  configFiles: ConfigFile[];
  configHash: string;
  strategy: string;
  /** Ports it listens on (host network): prechecks find them free before the first deploy. */
  ports: number[];
}

export interface DesiredStep {
  service: string;
  index: number;
  host: string;
  step: Step;
  /** Rendered stdin: secret, never logged or shown. */
  stdin?: string;
  /** Changes whenever what the step does changes; an unchanged stamp means "already done". */
  stamp: string;
  /** The image the step runs; the plan adds its local id to the stamp (a rebuilt image reruns the step). */
  imageRef?: string;
  description: string;
}

export interface DesiredService {
  role: Role;
  containers: DesiredContainer[];
  dataContainers: DesiredContainer[];
  steps: DesiredStep[];
  /** The role's own upgrade sequence (see UpgradeSequence). */
  upgrade: { before: DesiredStep[]; after: DesiredStep[] };
  /** The services it is deployed after, of the role's `after` whose conditions hold. */
  after: string[];
}

export interface DesiredState {
  services: DesiredService[];
  /** Every host that runs something. */
  hosts: string[];
}

export interface DesiredInput {
  roles: Role[];
  globals: Globals;
  passwords: Passwords;
  inventory: Inventory;
  facts: ReadonlyMap<string, HostFacts>;
  renderer: ConfigRenderer;
  /** The user's config/ directory of overrides. */
  customDir: string;
  /** Limit to these services (`--services`); the rest are left alone. */
  services?: readonly string[];
}

export function enabledRoles(roles: readonly Role[], globals: Globals): Role[] {
  return roles.filter((role) => globals[role.enable] === true);
}

/**
 * Computes what every host should run, with every config file rendered,
 * without touching any host. Bad input is found here, before any change.
 */
export function computeDesiredState(input: DesiredInput): DesiredState {
  const { roles, globals, inventory } = input;
  const enabled = enabledRoles(roles, globals);
  const enabledNames = new Set(enabled.map((r) => r.service));
  for (const role of enabled) {
    for (const needed of [...role.requires, ...role.uses]) {
      if (!enabledNames.has(needed)) {
        throw new InputError(`${role.service} is enabled but needs ${needed}, which is not enabled (set enable_${needed.replace(/-/g, '_')}: true)`, {
          file: role.file,
          key: role.requires.includes(needed) ? 'requires' : 'uses',
        });
      }
    }
  }
  if (input.services) {
    for (const name of input.services) {
      if (!roles.some((r) => r.service === name)) throw new InputError(`--services: unknown service "${name}" (known: ${roles.map((r) => r.service).join(', ')})`);
      if (!enabledNames.has(name)) throw new InputError(`--services: service "${name}" is not enabled in globals.yml`);
    }
  }
  const selected = enabled.filter((r) => !input.services || input.services.includes(r.service));

  const contexts = new Map<string, TemplateContext>();
  const contextFor = (host: string): TemplateContext => {
    let context = contexts.get(host);
    if (!context) {
      context = templateContext(globals, input.passwords, inventory, input.facts, host);
      contexts.set(host, context);
    }
    return context;
  };

  const hosts = new Set<string>();
  const services = selected.map((role) => {
    const containers: DesiredContainer[] = [];
    for (const def of role.containers) {
      for (const host of hostsFor(inventory, role, def)) {
        hosts.add(host);
        containers.push(serviceContainer(input, role, def, host, contextFor(host)));
      }
    }
    const dataContainers: DesiredContainer[] = [];
    for (const def of role.dataContainers) {
      for (const host of hostsFor(inventory, role, def)) {
        hosts.add(host);
        dataContainers.push(dataContainer(input, role, def, host));
      }
    }
    const steps = role.steps.map((step, index) => desiredStep(input, role, step, index, containers, contextFor));
    const upgrade = {
      before: role.upgrade.before.map((step, index) => desiredStep(input, role, step, index, containers, contextFor, 'upgrade.before')),
      after: role.upgrade.after.map((step, index) => desiredStep(input, role, step, index, containers, contextFor, 'upgrade.after')),
    };
    return { role, containers, dataContainers, steps, upgrade, after: afterHolding(role, globals) };
  });
  return { services, hosts: [...hosts].sort() };
}

/** The role's `after` services whose globals conditions are true; a key globals.yml does not know is a mistake, not false. */
function afterHolding(role: Role, globals: Globals): string[] {
  return role.after
    .filter(({ when }, index) =>
      when.every((key, at) => {
        if (!(key in globals)) throw errorAt(role.doc, ['after', index, 'when', at], `unknown globals key "${key}"`);
        return globals[key] === true;
      }),
    )
    .map(({ service }) => service);
}

/** Hosts of every group a container runs on, each once, in inventory order. */
function hostsFor(inventory: Inventory, role: Role, def: ContainerDef | DataContainerDef): string[] {
  const moved = inventory.placement.get(def.name) ?? inventory.placement.get(role.service);
  const groups = moved ? [moved] : (def.groups ?? role.groups);
  const hosts = new Set<string>();
  for (const group of groups) {
    const members = inventory.groups.get(group);
    if (!members) throw new InputError(`${role.service}: container ${def.name} runs on group "${group}", which the inventory does not define`, { file: inventory.file });
    members.forEach((member) => hosts.add(member));
  }
  if (hosts.size === 0) throw new InputError(`${role.service} is enabled but group ${groups.map((g) => `"${g}"`).join(', ')} (for ${def.name}) has no hosts`, { file: inventory.file, key: `groups.${groups[0]}` });
  return [...hosts];
}

function imageRef(globals: Globals, role: Role, image: string, container: string): string {
  const registry = String(globals.docker_registry ?? '');
  const tag = String(globals[`${container}_tag`] ?? globals[`${role.service.replace(/-/g, '_')}_tag`] ?? globals.openstack_tag);
  return `${registry ? `${registry}/` : ''}${globals.docker_namespace}/${image}:${tag}`;
}

function serviceContainer(input: DesiredInput, role: Role, def: ContainerDef, host: string, context: TemplateContext): DesiredContainer {
  const { globals } = input;
  const configDir = `${globals.node_config_directory}/${def.name}`;
  const strategy = String(globals.config_strategy);
  const definition: ContainerDefinition = {
    image: imageRef(globals, role, def.image, def.name),
    environment: { KOLLA_CONFIG_STRATEGY: strategy, KOLLA_SERVICE_NAME: def.name, ...def.environment },
    volumes: [`${configDir}/:/var/lib/kolla/config_files/:ro`, '/etc/localtime:/etc/localtime:ro', ...def.volumes],
    volumes_from: def.volumes_from,
    privileged: def.privileged,
    network_mode: def.network_mode,
    pid_mode: def.pid_mode ?? null,
    ipc_mode: def.ipc_mode ?? null,
    cap_add: def.cap_add,
    user: def.user ?? null,
    healthcheck: def.healthcheck ? healthcheckArgv(input.renderer, def.healthcheck.test, context, `${role.file} (containers.${def.name}.healthcheck.test)`) : null,
  };
  const configFiles = containerConfigFiles(input, role, def, host, context);
  const configHash = hashOf(configFiles.map((f) => [f.name, f.mode, f.content]));
  const definitionHash = hashOf(definition);
  const labels = {
    ...managedLabels(role.service, 'service', definition, definitionHash),
    [LABEL.configHash]: configHash,
    [LABEL.strategy]: strategy,
  };
  return {
    host,
    service: role.service,
    name: def.name,
    kind: 'service',
    definition,
    definitionHash,
    spec: containerSpec(def.name, definition, labels, { ...(def.healthcheck ? { timings: def.healthcheck } : {}), restart: true }),
    configDir,
    configFiles,
    configHash,
    strategy,
    ports: def.ports.map((port) => {
      const value = context[port];
      if (typeof value !== 'number') throw new InputError(`unknown port "${port}"`, { file: role.file, key: `containers.${def.name}.ports` });
      return value;
    }),
  };
}

/**
 * A container's config files on one host: those whose `when` holds, each
 * rendered (then merged with or replaced by the operator's overrides), or
 * taken whole from the operator's config/ while its `custom_when` holds.
 * Two entries may name the same file only with the same content (nova's and
 * cinder's Ceph user are often one user, with one keyring).
 */
function containerConfigFiles(input: DesiredInput, role: Role, def: ContainerDef, host: string, context: TemplateContext): ConfigFile[] {
  const files = new Map<string, ConfigFile>();
  def.config.forEach((file, index) => {
    const at = `containers.${def.name}.config.${index}`;
    if (!file.when.every((condition) => holds(condition, context, role, `${at}.when`))) return;
    const dest = file.dest.includes('{{') ? input.renderer.renderString(file.dest, context, `${role.file} (${at}.dest)`) : file.dest;
    if (!isConfigFileName(dest)) throw new InputError(`config file name ${JSON.stringify(dest)} is not a relative path inside the config directory`, { file: role.file, key: `${at}.dest` });
    const target = { customDir: input.customDir, project: role.service, container: def.name, host, dest };
    let content: string;
    if (file.customWhen && holds(file.customWhen, context, role, `${at}.custom_when`)) {
      const custom = customFile(target);
      if (custom.content === undefined) {
        throw new InputError(`${def.name} on ${host} needs ${dest} from the operator while ${file.customWhen} holds: put it at ${custom.candidates[0]} (or ${custom.candidates.slice(1).join(', ')})`, {
          file: role.file,
          key: `${at}.custom_when`,
        });
      }
      content = custom.content;
    } else {
      content = applyOverrides(input.renderer.renderFile(file.template, context), { ...target, ini: file.ini }, file.template).content;
    }
    const same = files.get(dest);
    if (same && same.content !== content) throw new InputError(`two config files of ${def.name} are named ${dest} and differ`, { file: role.file, key: `${at}.dest` });
    files.set(dest, { name: dest, content, mode: 0o600 });
  });
  return [...files.values()];
}

/** A `when` condition: the context key is true (`!key`: is not). A key the context lacks is a mistake, not false. */
function holds(condition: string, context: TemplateContext, role: Role, key: string): boolean {
  const name = condition.replace(/^!/, '');
  if (!(name in context)) throw new InputError(`unknown variable "${name}" in a config file condition`, { file: role.file, key });
  return (context[name] === true) !== condition.startsWith('!');
}

/**
 * A health test is split into words before rendering and each word is
 * rendered on its own, so no value (an address from the inventory, say) can
 * add an argument, and none ever reaches a shell.
 */
function healthcheckArgv(renderer: ConfigRenderer, test: string, context: TemplateContext, where: string): string[] {
  return test
    .trim()
    .split(/\s+/)
    .map((word) => renderer.renderString(word, context, where));
}

function dataContainer(input: DesiredInput, role: Role, def: DataContainerDef, host: string): DesiredContainer {
  const definition: ContainerDefinition = {
    image: imageRef(input.globals, role, def.image, def.name),
    environment: {},
    volumes: def.volumes,
    volumes_from: [],
    privileged: false,
    network_mode: 'none',
    pid_mode: null,
    ipc_mode: null,
    cap_add: [],
    user: null,
    healthcheck: null,
  };
  const definitionHash = hashOf(definition);
  return {
    host,
    service: role.service,
    name: def.name,
    kind: 'data',
    definition,
    definitionHash,
    // A data container only holds volumes: created, never started.
    spec: containerSpec(def.name, definition, managedLabels(role.service, 'data', definition, definitionHash), { restart: false, command: ['true'] }),
    configDir: '',
    configFiles: [],
    configHash: '',
    strategy: '',
    ports: [],
  };
}

function managedLabels(service: string, kind: 'service' | 'data', definition: ContainerDefinition, definitionHash: string): Record<string, string> {
  return {
    [LABEL.managed]: 'true',
    [LABEL.service]: service,
    [LABEL.kind]: kind,
    [LABEL.definition]: JSON.stringify(definition),
    [LABEL.definitionHash]: definitionHash,
  };
}

function containerSpec(
  name: string,
  definition: ContainerDefinition,
  labels: Record<string, string>,
  options: { timings?: HealthcheckDef; restart: boolean; command?: string[] },
): ContainerSpec {
  return {
    name,
    image: definition.image,
    labels,
    environment: definition.environment,
    volumes: definition.volumes,
    volumesFrom: definition.volumes_from,
    privileged: definition.privileged,
    networkMode: definition.network_mode,
    ...(definition.pid_mode ? { pidMode: definition.pid_mode } : {}),
    ...(definition.ipc_mode ? { ipcMode: definition.ipc_mode } : {}),
    capAdd: definition.cap_add,
    ...(definition.user ? { user: definition.user } : {}),
    ...(options.command ? { command: options.command } : {}),
    ...(definition.healthcheck && options.timings
      ? {
          healthcheck: {
            test: definition.healthcheck,
            interval: options.timings.interval,
            timeout: options.timings.timeout,
            retries: options.timings.retries,
            startPeriod: options.timings.start_period,
          },
        }
      : {}),
    restart: options.restart,
  };
}

function desiredStep(
  input: DesiredInput,
  role: Role,
  step: Step,
  index: number,
  containers: readonly DesiredContainer[],
  contextFor: (host: string) => TemplateContext,
  list = 'steps',
): DesiredStep {
  const toolboxHost = (): string => {
    const toolbox = input.roles.find((r) => r.containers.some((c) => c.name === TOOLBOX_CONTAINER));
    const def = toolbox?.containers.find((c) => c.name === TOOLBOX_CONTAINER);
    if (!toolbox || !def || input.globals[toolbox.enable] !== true) {
      throw new InputError(`${role.service}: a ${step.kind} step needs ${TOOLBOX_CONTAINER}, which is not enabled`, { file: role.file, key: `${list}.${index}` });
    }
    return hostsFor(input.inventory, toolbox, def)[0]!;
  };
  const firstHostOf = (name: string): DesiredContainer => containers.find((c) => c.name === name)!;
  const where = `${role.file} (${list}.${index}.${step.kind})`;
  switch (step.kind) {
    case 'database': {
      const host = toolboxHost();
      if (!(step.password in input.passwords)) throw new InputError(`no password "${step.password}" in passwords.yml`, { file: role.file, key: `steps.${index}.database.password` });
      const secret = input.passwords[step.password]!;
      return { service: role.service, index, host, step, stamp: hashOf([step, secret]), description: `database ${step.name} and user ${step.user}` };
    }
    case 'register': {
      const host = toolboxHost();
      const spec = renderDeep(step.spec, (text) => input.renderer.renderString(text, contextFor(host), where));
      const stdin = JSON.stringify(resolvePasswords(spec, input.passwords, role, index));
      return { service: role.service, index, host, step, stdin, stamp: hashOf([step, stdin]), description: `register ${describeRegister(step.spec)}` };
    }
    case 'start': {
      const first = firstHostOf(step.containers[0]!);
      return { service: role.service, index, host: first.host, step, stamp: '', description: `start ${step.containers.join(', ')}` };
    }
    case 'bootstrap':
    case 'oneshot': {
      const container = firstHostOf(step.container);
      return {
        service: role.service,
        index,
        host: container.host,
        step,
        stamp: hashOf([withoutNeeds(step), container.definitionHash, container.configHash]),
        imageRef: container.spec.image,
        description: step.kind === 'bootstrap' ? `bootstrap ${step.container} (one-shot)` : `${step.container} one-shot (${Object.keys(step.environment).join(', ') || 'its command'})`,
      };
    }
    case 'restart': {
      const first = firstHostOf(step.containers[0]!);
      return { service: role.service, index, host: first.host, step, stamp: '', description: `restart ${step.containers.join(', ')}` };
    }
    case 'exec': {
      const container = firstHostOf(step.container);
      const stdin = step.stdin !== undefined ? input.renderer.renderString(step.stdin, contextFor(container.host), where) : undefined;
      return {
        service: role.service,
        index,
        host: container.host,
        step,
        ...(stdin !== undefined ? { stdin } : {}),
        stamp: hashOf([withoutNeeds(step), container.definitionHash, container.configHash, stdin ?? '']),
        imageRef: container.spec.image,
        description: `exec in ${step.container}: ${step.command.join(' ').slice(0, 80)}`,
      };
    }
  }
}

/** What a step does, for its stamp: `needs` only says when it may run, and a change of it must not run it again. */
function withoutNeeds(step: Step): Step {
  if (!('needs' in step)) return step;
  const { needs: _needs, ...rest } = step;
  return rest;
}

function describeRegister(spec: Record<string, unknown>): string {
  const services = Array.isArray(spec.services) ? spec.services.map((s) => (s as { name?: string }).name).join(', ') : '';
  return services ? `service ${services}` : 'catalog entries';
}

/** Register specs name passwords by key (`password: glance_keystone_password`); the value goes only to stdin. */
function resolvePasswords(spec: unknown, passwords: Passwords, role: Role, index: number): unknown {
  if (!spec || typeof spec !== 'object') return spec;
  if (Array.isArray(spec)) return spec.map((item) => resolvePasswords(item, passwords, role, index));
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(spec)) {
    if (key === 'password' && typeof value === 'string') {
      if (!(value in passwords)) throw new InputError(`no password "${value}" in passwords.yml`, { file: role.file, key: `steps.${index}.register` });
      result[key] = passwords[value];
    } else {
      result[key] = resolvePasswords(value, passwords, role, index);
    }
  }
  return result;
}

function renderDeep(value: unknown, render: (text: string) => string): Record<string, unknown> {
  const walk = (item: unknown): unknown => {
    if (typeof item === 'string') return render(item);
    if (Array.isArray(item)) return item.map(walk);
    if (item && typeof item === 'object') return Object.fromEntries(Object.entries(item).map(([k, v]) => [k, walk(v)]));
    return item;
  };
  return walk(value) as Record<string, unknown>;
}

export function hashOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 32);
}
