import { join } from 'node:path';
import type { HostFacts } from '../config/context.ts';
import { loadGlobals, type Globals, type GlobalsSchemaInput, type LoadedGlobals } from '../config/globals.ts';
import { loadPasswords, type Passwords } from '../config/passwords.ts';
import { ConfigRenderer } from '../config/templates.ts';
import { InputError } from '../errors.ts';
import { gatherFacts } from '../facts/facts.ts';
import { HostPool } from '../fleet/hosts.ts';
import { acquireLock, currentHolder, releaseLock } from '../fleet/locks.ts';
import { DEFAULT_FORKS, Recap, type RunPolicy } from '../fleet/runner.ts';
import { loadInventory, type Inventory } from '../inventory/inventory.ts';
import { matchHosts } from '../inventory/limit.ts';
import { computeDesiredState, enabledRoles, type DesiredState } from '../plan/desired.ts';
import { loadRoles, type Role } from '../plan/roles.ts';
import { limitToHosts, withoutDownHosts } from '../plan/scope.ts';
import type { HostConnection } from '../transport/host.ts';
import { ownerPath } from '../transport/state-files.ts';

export interface DeploymentPaths {
  projectRoot: string;
  inventoryFile: string;
  configDir: string;
}

export interface DeploymentOptions {
  services?: string[];
  /** Ansible-style host pattern (--limit): only these hosts are touched. */
  limit?: string;
  forks?: number;
  maxFailPercentage?: number;
  /** The command, for commands that change hosts: each host is locked for the run. */
  lockFor?: string;
}

/** Everything one command needs: inputs read and checked, facts gathered, desired state computed. */
export interface Deployment {
  roles: Role[];
  globals: Globals;
  passwords: Passwords;
  inventory: Inventory;
  /** What the command's hosts should run: limited to --limit, without hosts that do not answer. */
  desired: DesiredState;
  /** Services that cannot run this time, and why (a host they need is down). */
  blocked: Map<string, string>;
  /** One lazily opened connection per host. */
  pool: HostPool;
  policy: RunPolicy;
  /** Per-host outcomes of this command. */
  recap: Recap;
  /** Hosts no config directory has claimed yet: the first change there records ours (see checkOwner). */
  unclaimed: Set<string>;
  /** The deploy-side config directory (globals.yml, passwords.yml, config/). */
  configDir: string;
  /** Replaces every password value in a text; applied to all output that comes from hosts. */
  redact(text: string): string;
  /**
   * Runs a short stretch that must not be cut in the middle (between
   * stopping a container and starting its replacement): an interrupted
   * command waits for these before it exits (see settle).
   */
  critical<T>(work: () => Promise<T>): Promise<T>;
  /** Resolves once no critical stretch is running. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

export function loadRoleSet(projectRoot: string): Role[] {
  return loadRoles(join(projectRoot, 'roles'));
}

/** Every passwords.yml key any role needs (genpwd fills them all, enabled or not). */
export function requiredPasswords(roles: readonly Role[]): string[] {
  return [...new Set(roles.flatMap((r) => r.passwords))].sort();
}

/** The keys every role adds to globals.yml: enable_<service> (defaulting to the role's enabled_by_default), <service>_tag, <container>_tag. */
export function globalsInputFor(roles: readonly Role[]): GlobalsSchemaInput {
  return {
    services: roles.map((r) => ({ name: r.service, enabledByDefault: r.enabledByDefault })),
    containers: roles.flatMap((r) => r.containers.map((c) => ({ name: c.name, service: r.service }))),
  };
}

/** globals.yml, with the keys every role adds. */
export function loadGlobalsFor(roles: readonly Role[], configDir: string): LoadedGlobals {
  return loadGlobals(join(configDir, 'globals.yml'), configDir, globalsInputFor(roles));
}

function runPolicy(options: DeploymentOptions): RunPolicy {
  return { forks: options.forks ?? DEFAULT_FORKS, ...(options.maxFailPercentage !== undefined ? { maxFailPercentage: options.maxFailPercentage } : {}) };
}

/** What a command that only prepares hosts needs: inventory, globals, connections; no passwords, no desired state. */
export interface Fleet {
  inventory: Inventory;
  globals: Globals;
  pool: HostPool;
  hosts: string[];
  policy: RunPolicy;
  recap: Recap;
}

export function openFleet(paths: DeploymentPaths, options: DeploymentOptions = {}): Fleet {
  const roles = loadRoleSet(paths.projectRoot);
  const inventory = loadInventory(paths.inventoryFile);
  const { values: globals } = loadGlobalsFor(roles, paths.configDir);
  const grouped = [...new Set([...inventory.groups.values()].flat())];
  const limited = options.limit ? new Set(matchHosts(inventory, options.limit)) : undefined;
  const hosts = limited ? grouped.filter((h) => limited.has(h)) : grouped;
  const policy = runPolicy(options);
  const pool = new HostPool(inventory.hosts);
  return { inventory, globals, pool, hosts, policy, recap: new Recap(hosts, (host) => pool.lost(host)) };
}

export async function openDeployment(paths: DeploymentPaths, options: DeploymentOptions = {}): Promise<Deployment> {
  const roles = loadRoleSet(paths.projectRoot);
  const inventory = loadInventory(paths.inventoryFile);
  const { values: globals, doc: globalsDoc } = loadGlobalsFor(roles, paths.configDir);
  const enabled = enabledRoles(roles, globals);
  const passwords = loadPasswords(join(paths.configDir, 'passwords.yml'), requiredPasswords(enabled));
  if (!globals.kolla_internal_vip_address) {
    throw new InputError('kolla_internal_vip_address is required (the address every internal endpoint uses)', {
      file: join(paths.configDir, 'globals.yml'),
      key: 'kolla_internal_vip_address',
    });
  }
  if (enabled.some((r) => r.service === 'neutron') && !globals.neutron_external_interface) {
    throw new InputError('neutron is enabled but neutron_external_interface is not set', {
      file: join(paths.configDir, 'globals.yml'),
      key: 'neutron_external_interface',
    });
  }

  const globalsFile = join(paths.configDir, 'globals.yml');
  const globalsLocation = (key: string): { file: string; line?: number; key: string } => {
    const line = globalsDoc?.lineOf([key]);
    return { file: globalsDoc?.file ?? globalsFile, ...(line ? { line } : {}), key };
  };
  const renderer = new ConfigRenderer(join(paths.projectRoot, 'config-templates'));
  const customDir = String(globals.node_custom_config);
  // Placement and rendering problems are input errors: found before any host is contacted.
  const placed = computeDesiredState({ roles, globals, passwords, inventory, facts: placeholderFacts(inventory), renderer, customDir, ...(options.services ? { services: options.services } : {}) });
  const targets = new Set(options.limit ? matchHosts(inventory, options.limit) : placed.hosts);
  const policy = runPolicy(options);
  const pool = new HostPool(inventory.hosts);
  const recap = new Recap(
    placed.hosts.filter((h) => targets.has(h)),
    (host) => pool.lost(host),
  );
  const holder = currentHolder(options.lockFor ?? '');
  const unclaimed = new Set<string>();
  const locked: HostConnection[] = [];
  const configRoot = String(globals.node_config_directory);
  const unlock = async (): Promise<void> => {
    await Promise.all(locked.map((connection) => releaseLock(connection, configRoot, holder).catch(() => undefined)));
  };
  try {
    const { facts, down } = await gatherFacts({
      inventory,
      pool,
      hosts: placed.hosts,
      targets,
      interfaces: {
        api: { name: String(globals.api_interface), location: globalsLocation('api_interface') },
        tunnel: { name: String(globals.tunnel_interface), location: globalsLocation('tunnel_interface') },
      },
      cacheFile: join(paths.configDir, 'facts.json'),
      forks: policy.forks,
      recap,
      // Each host this command may touch: its engine answering, its config directory ours, and (for changes) locked.
      // One that does not answer is down for this run; a refusal (another config dir, another run) stops it all.
      visit: async (name) => {
        // The engine's ping and the owner file's read go out together; an engine that does not answer makes the host down, whoever owns it.
        const [engine, claimed] = await Promise.allSettled([pool.get(name), pool.connection(name).then((connection) => checkOwner(name, connection, configRoot, paths.configDir))]);
        if (engine.status === 'rejected') throw engine.reason;
        if (claimed.status === 'rejected') throw claimed.reason;
        if (!claimed.value) unclaimed.add(name);
        if (!options.lockFor) return;
        const { connection } = engine.value;
        await acquireLock(name, connection, configRoot, holder);
        locked.push(connection);
      },
    });
    const full = computeDesiredState({ roles, globals, passwords, inventory, facts, renderer, customDir, ...(options.services ? { services: options.services } : {}) });
    const { desired, blocked } = withoutDownHosts(limitToHosts(full, targets), down);
    const running = new Set<Promise<unknown>>();
    const secrets = Object.values(passwords).filter((p) => p.length >= 4).sort((a, b) => b.length - a.length);
    return {
      roles,
      globals,
      passwords,
      inventory,
      desired,
      blocked,
      pool,
      policy,
      recap,
      unclaimed,
      configDir: paths.configDir,
      redact: (text) => secrets.reduce((out, secret) => out.split(secret).join('****'), text),
      critical: (work) => {
        const promise = work();
        running.add(promise);
        void promise.finally(() => running.delete(promise)).catch(() => undefined);
        return promise;
      },
      settle: async () => {
        while (running.size > 0) await Promise.allSettled([...running]);
      },
      close: async () => {
        await unlock();
        await pool.close();
      },
    };
  } catch (error) {
    await unlock();
    await pool.close();
    throw error;
  }
}

/**
 * Stand-in addresses, so placement and templates are checked before any
 * host is contacted; the real facts replace them before anything is used.
 */
function placeholderFacts(inventory: Inventory): Map<string, HostFacts> {
  return new Map([...inventory.hosts.keys()].map((name) => [name, { apiAddress: '192.0.2.1' }]));
}

/**
 * Two config directories deploying to one host would share its
 * node_config_directory and its container names, each undoing the other.
 * The first deploy records its config directory there; any other is refused.
 * Returns whether the host is claimed already.
 */
async function checkOwner(host: string, connection: HostConnection, configRoot: string, configDir: string): Promise<boolean> {
  const path = ownerPath(configRoot);
  const content = await connection.readFile(path);
  if (!content) return false;
  let owner: string | undefined;
  try {
    owner = (JSON.parse(content.toString('utf8')) as { configDir?: string }).configDir;
  } catch {
    owner = undefined;
  }
  if (owner === undefined || owner === configDir) return true;
  throw new InputError(
    `host ${host}: ${configRoot} is managed from config directory ${owner}, not ${configDir}; ` +
      `use --configdir ${owner}, or deploy this one elsewhere (another host, or destroy the other cloud first). ` +
      `If the config directory was moved, remove ${path} on ${host}`,
    { file: join(configDir, 'globals.yml'), key: 'node_config_directory' },
  );
}
