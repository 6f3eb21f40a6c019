import { STOP_TIMEOUT_SECONDS, type ContainerEngine, type ContainerSpec, type ContainerState } from '../engine/containers.ts';
import { LABEL } from '../plan/desired.ts';
import { failure } from '../deploy/failures.ts';
import { waitHealthy } from '../deploy/health.ts';
import type { Deployment } from '../deploy/session.ts';
import { candidateName, HostJournal, imageFacts, keptName, type ConfigFileContent, type Revision } from '../state/revisions.ts';
import type { HostConnection } from '../transport/host.ts';
import { readConfigDir, writeConfigDir } from '../transport/state-files.ts';

/** What a container is to become on one host. */
export interface Replacement {
  host: string;
  service: string;
  container: string;
  /** The container to run (its name is `container`). */
  spec: ContainerSpec;
  files: ConfigFileContent[];
  configDir: string;
  configHash: string;
  definitionHash: string;
  healthcheck: string[] | null;
  /** Bring back the kept container instead of creating one (a rollback to the revision it ran). */
  useKept?: boolean;
  /** Create from this image id rather than spec.image (a rollback: a re-pushed tag cannot change what it restores). */
  pinnedImage?: string;
  /** For a rollback: the revision it returns to. */
  restores?: number;
}

export interface SwapOptions {
  command: string;
  healthTimeoutSeconds: number;
  log(line: string): void;
}

/**
 * Replaces a container on its host, gated on health:
 * the new one is created (as `<name>_next`) while the old one still runs;
 * then, in one stretch an interrupt waits for, the config is written, the
 * old container is stopped and kept as `<name>_previous`, and the new one
 * takes the name and starts. Healthy within the timeout: it stays, and the
 * kept one is the host's rollback point. Not: the old container and its
 * config are put back and started, and the failure (with the new one's log
 * tail) is thrown. Volumes and data containers are never touched: the new
 * container mounts the same ones.
 */
export async function replaceContainer(deployment: Deployment, replacement: Replacement, options: SwapOptions): Promise<Revision> {
  const { host, container: name } = replacement;
  const { engine, connection } = await deployment.pool.get(host);
  const journal = new HostJournal(connection, String(deployment.globals.node_config_directory), deployment.configDir);
  const next = candidateName(name);
  const kept = keptName(name);
  const before = await engine.inspect(name);
  const oldFiles = await readConfigDir(connection, replacement.configDir);

  // A container made before the journal (or by another tool's deploy) is recorded first, so a rollback can return to it.
  if (before && !(await journal.list(name)).some((r) => r.containerId === before.id)) await adopt(engine, journal, replacement, before, oldFiles);
  await engine.remove(next); // left by an interrupted run
  if (replacement.useKept) await engine.rename(kept, next);
  else await engine.create({ ...replacement.spec, name: next, ...(replacement.pinnedImage ? { image: replacement.pinnedImage } : {}) });
  const candidate = (await engine.inspect(next))!;
  const revision = await journal.add(
    {
      host,
      service: replacement.service,
      container: name,
      at: new Date().toISOString(),
      command: options.command,
      outcome: 'pending',
      ...(replacement.restores !== undefined ? { restores: replacement.restores } : {}),
      containerId: candidate.id,
      ...(await imageFacts(engine, replacement.spec.image, candidate.imageId)),
      configHash: replacement.configHash,
      definitionHash: replacement.definitionHash,
      spec: replacement.spec,
    },
    replacement.files,
  );

  await deployment.critical(async () => {
    await writeConfigDir(connection, replacement.configDir, replacement.files, oldFiles);
    if (before) {
      await engine.stop(name, STOP_TIMEOUT_SECONDS);
      await engine.remove(kept);
      await engine.rename(name, kept);
    }
    await engine.rename(next, name);
    await engine.start(name);
  });
  options.log(`${host}: ${name}: ${before ? `replaced (the old one kept as ${kept})` : 'created'}, waiting for health`);

  const started = Date.now();
  try {
    await waitHealthy(deployment, { host, name, definition: { healthcheck: replacement.healthcheck } }, options.healthTimeoutSeconds);
  } catch (error) {
    const restored = before ? await putBack(deployment, engine, connection, replacement, oldFiles, before.id) : null;
    await journal.finish(revision, before ? 'rolled back' : 'failed', { detail: deployment.redact((error as Error).message) });
    if (restored) (error as Error).message += `; ${restored}`;
    throw error;
  }
  options.log(`${host}: ${name}: healthy after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return journal.finish(revision, 'healthy');
}

async function adopt(engine: ContainerEngine, journal: HostJournal, replacement: Replacement, before: ContainerState, files: ReadonlyMap<string, string>): Promise<void> {
  const spec = (await engine.specOf(before.name))!;
  await journal.add(
    {
      host: replacement.host,
      service: replacement.service,
      container: before.name,
      at: before.createdAt,
      command: 'adopted',
      outcome: before.running && (before.health === undefined || before.health === 'healthy') ? 'healthy' : 'failed',
      containerId: before.id,
      ...(await imageFacts(engine, spec.image, before.imageId)),
      configHash: before.labels[LABEL.configHash] ?? '',
      definitionHash: before.labels[LABEL.definitionHash] ?? '',
      spec,
    },
    [...files].map(([name, content]) => ({ name, content, mode: 0o600 })),
  );
}

/** Puts the kept container and its config back after a failed replacement; says what became of it. */
async function putBack(
  deployment: Deployment,
  engine: ContainerEngine,
  connection: HostConnection,
  replacement: Replacement,
  oldFiles: ReadonlyMap<string, string>,
  oldId: string,
): Promise<string> {
  const { host, container: name } = replacement;
  const kept = keptName(name);
  const next = candidateName(name);
  await deployment.critical(async () => {
    await engine.stop(name, STOP_TIMEOUT_SECONDS);
    await engine.rename(name, next);
    await engine.rename(kept, name);
    const files = [...oldFiles].map(([file, content]) => ({ name: file, content, mode: 0o600 }));
    // The directory holds the replacement's files now: written just before the swap.
    await writeConfigDir(connection, replacement.configDir, files, new Map(replacement.files.map((f) => [f.name, f.content])));
    await engine.start(name);
  });
  // A kept container that failed to come back stays the rollback point; a new one that failed goes.
  if (replacement.useKept) await engine.rename(next, kept);
  else await engine.remove(next);
  try {
    await waitHealthy(deployment, { host, name, definition: { healthcheck: replacement.healthcheck } });
    return `the previous container (${oldId.slice(0, 12)}) and its config are back and healthy`;
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    return `the previous container (${oldId.slice(0, 12)}) and its config are back, but it is not healthy either: ${(await failure(deployment, host, name, 'restore', why)).message}`;
  }
}

