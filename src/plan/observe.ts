import type { ContainerEngine } from '../engine/containers.ts';
import type { HostConnection } from '../transport/host.ts';
import { appliedConfigPath, readStateFile, stepStampsPath } from '../transport/state-files.ts';
import { LABEL, type DesiredState } from './desired.ts';
import type { ObservedHost } from './diff.ts';

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
