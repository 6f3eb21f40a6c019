import type { ContainerEngine } from '../engine/containers.ts';
import type { HostConnection } from '../transport/host.ts';
import { LABEL, type DesiredState } from './desired.ts';
import type { ObservedHost } from './diff.ts';

export function stepStampsPath(configRoot: string): string {
  return `${configRoot}/.kolla-ts/steps.json`;
}

export function appliedConfigPath(configRoot: string): string {
  return `${configRoot}/.kolla-ts/applied-config.json`;
}

/** A small JSON state file of ours on a host; absent or unreadable means empty. */
export async function readStateFile<T>(connection: HostConnection, path: string): Promise<Record<string, T>> {
  const content = await connection.readFile(path);
  try {
    return content ? (JSON.parse(content.toString('utf8')) as Record<string, T>) : {};
  } catch {
    return {};
  }
}

export async function updateStateFile<T>(connection: HostConnection, configRoot: string, path: string, key: string, value: T): Promise<void> {
  const state = await readStateFile<T>(connection, path);
  state[key] = value;
  await connection.ensureDir(`${configRoot}/.kolla-ts`, 0o700);
  await connection.writeFileAtomic(path, JSON.stringify(state, null, 2), 0o600);
}

/** Reads what each host has: one container listing, the config files we manage, and step stamps. */
export async function observeHosts(
  desired: DesiredState,
  hosts: ReadonlyMap<string, { connection: HostConnection; engine: ContainerEngine }>,
  configRoot: string,
): Promise<Map<string, ObservedHost>> {
  const observed = new Map<string, ObservedHost>();
  await Promise.all(
    desired.hosts.map(async (name) => {
      const { connection, engine } = hosts.get(name)!;
      const containers = new Map((await engine.listByLabel(`${LABEL.managed}=true`)).map((c) => [c.name, c]));
      const configFiles = new Map<string, Map<string, string>>();
      const dirs = desired.services.flatMap((s) => s.containers.filter((c) => c.host === name));
      await Promise.all(
        dirs.map(async (container) => {
          const files = new Map<string, string>();
          for (const file of await connection.listDir(container.configDir)) {
            if (file.startsWith('.')) continue; // temp files of an interrupted write
            const content = await connection.readFile(`${container.configDir}/${file}`);
            if (content) files.set(file, content.toString('utf8'));
          }
          configFiles.set(container.name, files);
        }),
      );
      const refs = new Set(desired.services.flatMap((s) => s.containers.filter((c) => c.host === name).map((c) => c.spec.image)));
      const imageIds = new Map(await Promise.all([...refs].map(async (ref) => [ref, await engine.imageId(ref)] as const)));
      const [stepStamps, appliedConfig] = await Promise.all([
        readStateFile<string>(connection, stepStampsPath(configRoot)),
        readStateFile<{ id: string; configHash: string }>(connection, appliedConfigPath(configRoot)),
      ]);
      observed.set(name, { containers, configFiles, stepStamps, appliedConfig, imageIds });
    }),
  );
  return observed;
}
