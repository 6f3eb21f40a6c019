import type { ContainerEngine } from '../engine/containers.ts';
import type { HostConnection } from '../transport/host.ts';
import { appliedConfigPath, readConfigDir, readStateFile, stepStampsPath } from '../transport/state-files.ts';
import { LABEL, type DesiredState } from './desired.ts';
import type { ObservedHost } from './diff.ts';

/** Reads what one host has: one container listing, the config files we manage, and step stamps. */
export async function observeHost(desired: DesiredState, name: string, host: { connection: HostConnection; engine: ContainerEngine }, configRoot: string): Promise<ObservedHost> {
  const { connection, engine } = host;
  const containers = new Map((await engine.listByLabel(`${LABEL.managed}=true`)).map((c) => [c.name, c]));
  const configFiles = new Map<string, Map<string, string>>();
  const dirs = desired.services.flatMap((s) => s.containers.filter((c) => c.host === name));
  await Promise.all(
    dirs.map(async (container) => {
      configFiles.set(container.name, await readConfigDir(connection, container.configDir));
    }),
  );
  const refs = new Set(desired.services.flatMap((s) => s.containers.filter((c) => c.host === name).map((c) => c.spec.image)));
  const imageIds = new Map<string, string | null>();
  // A tag re-pushed to the registry must reach every host: compare the registry's digest with the local image's.
  const staleImages = new Set<string>();
  await Promise.all(
    [...refs].map(async (ref) => {
      const [local, remote] = await Promise.all([engine.image(ref), fromRegistry(ref) ? engine.registryDigest(ref) : null]);
      imageIds.set(ref, local?.id ?? null);
      if (local && remote && !local.digests.some((digest) => digest.endsWith(`@${remote}`))) staleImages.add(ref);
    }),
  );
  const [stepStamps, appliedConfig] = await Promise.all([
    readStateFile<string>(connection, stepStampsPath(configRoot)),
    readStateFile<{ id: string; configHash: string }>(connection, appliedConfigPath(configRoot)),
  ]);
  return { containers, configFiles, stepStamps, appliedConfig, imageIds, staleImages };
}

/** A reference that names a registry (`host:port/...`, `host.domain/...`, `localhost/...`), as Docker decides it. */
function fromRegistry(ref: string): boolean {
  const first = ref.split('/')[0]!;
  return ref.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
}
