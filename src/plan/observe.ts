import type { ContainerEngine } from '../engine/containers.ts';
import type { HostConnection } from '../transport/host.ts';
import { appliedConfigPath, readConfigDir, readStateFile, stepStampsPath } from '../transport/state-files.ts';
import { LABEL, type DesiredState } from './desired.ts';
import type { ObservedHost } from './diff.ts';

/** Reads what one host has: one container listing, the config files we manage, its images, and step stamps. */
export async function observeHost(desired: DesiredState, name: string, host: { connection: HostConnection; engine: ContainerEngine }, configRoot: string): Promise<ObservedHost> {
  const { connection, engine } = host;
  const mine = desired.services.flatMap((s) => s.containers.filter((c) => c.host === name));
  // None of these reads needs another's answer: sent at once, they share the connection's round trips instead of queueing.
  const [containers, configFiles, images, stepStamps, appliedConfig] = await Promise.all([
    engine.listByLabel(`${LABEL.managed}=true`),
    Promise.all(mine.map(async (container) => [container.name, await readConfigDir(connection, container.configDir)] as const)),
    Promise.all([...new Set(mine.map((c) => c.spec.image))].map((ref) => observeImage(engine, ref))),
    readStateFile<string>(connection, stepStampsPath(configRoot)),
    readStateFile<{ id: string; configHash: string }>(connection, appliedConfigPath(configRoot)),
  ]);
  return {
    containers: new Map(containers.map((c) => [c.name, c])),
    configFiles: new Map(configFiles),
    stepStamps,
    appliedConfig,
    imageIds: new Map(images.map((image) => [image.ref, image.id])),
    staleImages: new Set(images.filter((image) => image.stale).map((image) => image.ref)),
  };
}

/**
 * The local image's id, and whether the tag was re-pushed since it was
 * pulled (the registry's digest is not among the local image's): a re-pushed
 * tag must reach every host.
 */
async function observeImage(engine: ContainerEngine, ref: string): Promise<{ ref: string; id: string | null; stale: boolean }> {
  const [local, remote] = await Promise.all([engine.image(ref), fromRegistry(ref) ? engine.registryDigest(ref) : null]);
  return { ref, id: local?.id ?? null, stale: Boolean(local && remote && !local.digests.some((digest) => digest.endsWith(`@${remote}`))) };
}

/** A reference that names a registry (`host:port/...`, `host.domain/...`, `localhost/...`), as Docker decides it. */
function fromRegistry(ref: string): boolean {
  const first = ref.split('/')[0]!;
  return ref.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
}
