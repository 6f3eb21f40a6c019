import { join } from 'node:path';
import type { HostFacts } from '../config/context.ts';
import { loadGlobals, type Globals } from '../config/globals.ts';
import { loadPasswords, type Passwords } from '../config/passwords.ts';
import { ConfigRenderer } from '../config/templates.ts';
import { DockerodeContainerEngine, type ContainerEngine } from '../engine/containers.ts';
import { pingEngine } from '../engine/docker.ts';
import { InputError, UnreachableError } from '../errors.ts';
import { loadInventory, type HostSpec, type Inventory } from '../inventory/inventory.ts';
import { computeDesiredState, enabledRoles, type DesiredState } from '../plan/desired.ts';
import { loadRoles, type Role } from '../plan/roles.ts';
import type { HostConnection } from '../transport/host.ts';
import { LocalHost } from '../transport/local.ts';
import { SshHost } from '../transport/ssh.ts';
import { ownerPath } from '../transport/state-files.ts';

export interface DeploymentPaths {
  projectRoot: string;
  inventoryFile: string;
  configDir: string;
}

export interface ConnectedHost {
  connection: HostConnection;
  engine: ContainerEngine;
}

/** Everything one command needs: inputs read and checked, desired state computed, hosts connected. */
export interface Deployment {
  roles: Role[];
  globals: Globals;
  passwords: Passwords;
  inventory: Inventory;
  desired: DesiredState;
  hosts: Map<string, ConnectedHost>;
  /** The deploy-side config directory (globals.yml, passwords.yml, config/). */
  configDir: string;
  /** Replaces every password value in a text; applied to all output that comes from hosts. */
  redact(text: string): string;
  close(): Promise<void>;
}

export function loadRoleSet(projectRoot: string): Role[] {
  return loadRoles(join(projectRoot, 'roles'));
}

/** Every passwords.yml key any role needs (genpwd fills them all, enabled or not). */
export function requiredPasswords(roles: readonly Role[]): string[] {
  return [...new Set(roles.flatMap((r) => r.passwords))].sort();
}

export async function openDeployment(paths: DeploymentPaths, options: { services?: string[] } = {}): Promise<Deployment> {
  const roles = loadRoleSet(paths.projectRoot);
  const inventory = loadInventory(paths.inventoryFile);
  const { values: globals, doc: globalsDoc } = loadGlobals(join(paths.configDir, 'globals.yml'), paths.configDir, {
    services: roles.map((r) => ({ name: r.service, enabledByDefault: true })),
    containers: roles.flatMap((r) => r.containers.map((c) => ({ name: c.name, service: r.service }))),
  });
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

  const usedHosts = new Set([...inventory.groups.values()].flat());
  const hosts = new Map<string, ConnectedHost>();
  const close = async (): Promise<void> => {
    await Promise.all([...hosts.values()].map((h) => h.connection.close()));
  };
  try {
    await Promise.all(
      [...usedHosts].map(async (name) => {
        const connection = await connect(inventory.hosts.get(name)!);
        hosts.set(name, { connection, engine: new DockerodeContainerEngine(connection.docker) });
        await pingEngine(connection.docker, name, connection.engineAddress);
      }),
    );
    await Promise.all([...hosts].map(([name, host]) => checkOwner(name, host.connection, String(globals.node_config_directory), paths.configDir)));
    const facts = new Map<string, HostFacts>();
    for (const name of usedHosts) {
      const spec = inventory.hosts.get(name)!;
      const apiAddress = spec.apiAddress ?? (await hosts.get(name)!.connection.interfaceAddress(String(globals.api_interface)));
      if (!apiAddress) {
        throw new InputError(`host ${name} has no IPv4 address on api_interface "${globals.api_interface}"`, {
          file: globalsDoc?.file ?? join(paths.configDir, 'globals.yml'),
          ...(globalsDoc?.lineOf(['api_interface']) ? { line: globalsDoc.lineOf(['api_interface'])! } : {}),
          key: 'api_interface',
        });
      }
      facts.set(name, { apiAddress });
    }
    const desired = computeDesiredState({
      roles,
      globals,
      passwords,
      inventory,
      facts,
      renderer: new ConfigRenderer(join(paths.projectRoot, 'config-templates')),
      customDir: String(globals.node_custom_config),
      ...(options.services ? { services: options.services } : {}),
    });
    const secrets = Object.values(passwords).filter((p) => p.length >= 4).sort((a, b) => b.length - a.length);
    return {
      roles,
      globals,
      passwords,
      inventory,
      desired,
      hosts,
      configDir: paths.configDir,
      redact: (text) => secrets.reduce((out, secret) => out.split(secret).join('****'), text),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

async function connect(spec: HostSpec): Promise<HostConnection> {
  if (spec.connection === 'local') return new LocalHost(spec.name);
  try {
    return await SshHost.connect(spec);
  } catch (error) {
    throw new UnreachableError(`cannot connect to host ${spec.name} (${spec.address}:${spec.port}): ${(error as Error).message}`);
  }
}

/**
 * Two config directories deploying to one host would share its
 * node_config_directory and its container names, each undoing the other.
 * The first deploy records its config directory there; any other is refused.
 */
async function checkOwner(host: string, connection: HostConnection, configRoot: string, configDir: string): Promise<void> {
  const path = ownerPath(configRoot);
  const content = await connection.readFile(path);
  if (!content) return;
  let owner: string | undefined;
  try {
    owner = (JSON.parse(content.toString('utf8')) as { configDir?: string }).configDir;
  } catch {
    owner = undefined;
  }
  if (owner === undefined || owner === configDir) return;
  throw new InputError(
    `host ${host}: ${configRoot} is managed from config directory ${owner}, not ${configDir}; ` +
      `use --configdir ${owner}, or deploy this one elsewhere (another host, or destroy the other cloud first). ` +
      `If the config directory was moved, remove ${path} on ${host}`,
    { file: join(configDir, 'globals.yml'), key: 'node_config_directory' },
  );
}
