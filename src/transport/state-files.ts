import { dirname } from 'node:path';
import type { HostConnection } from './host.ts';

/**
 * kolla-ts's own state on each host, beside the config it manages:
 * step stamps, and the config each restarted container runs with.
 */
export function stepStampsPath(configRoot: string): string {
  return `${configRoot}/.kolla-ts/steps.json`;
}

/** Which deploy-side config directory manages this host's node_config_directory. */
export function ownerPath(configRoot: string): string {
  return `${configRoot}/.kolla-ts/owner.json`;
}

export function appliedConfigPath(configRoot: string): string {
  return `${configRoot}/.kolla-ts/applied-config.json`;
}

/** A small JSON state file; absent or unreadable means empty. */
export async function readStateFile<T>(connection: HostConnection, path: string): Promise<Record<string, T>> {
  const content = await connection.readFile(path);
  try {
    return content ? (JSON.parse(content.toString('utf8')) as Record<string, T>) : {};
  } catch {
    return {};
  }
}

/** Updates of one state file on one connection, in order: services record their steps at the same time. */
const pendingUpdates = new WeakMap<HostConnection, Map<string, Promise<void>>>();

export async function updateStateFile<T>(connection: HostConnection, path: string, key: string, value: T): Promise<void> {
  let byPath = pendingUpdates.get(connection);
  if (!byPath) pendingUpdates.set(connection, (byPath = new Map()));
  const update = (byPath.get(path) ?? Promise.resolve()).catch(() => undefined).then(async () => {
    const state = await readStateFile<T>(connection, path);
    state[key] = value;
    await writeStateFile(connection, path, state);
  });
  byPath.set(path, update);
  await update;
}

export async function writeStateFile<T>(connection: HostConnection, path: string, state: Record<string, T>): Promise<void> {
  await connection.ensureDir(dirname(path), 0o700);
  await connection.writeFileAtomic(path, JSON.stringify(state, null, 2), 0o600);
}

/** The config files in a container's directory now (name → content). */
export async function readConfigDir(connection: HostConnection, dir: string): Promise<Map<string, string>> {
  const names = (await connection.listDir(dir)).filter((name) => !name.startsWith('.')); // dot files: temp files of an interrupted write
  // All read at once: one wait for the answers, not one per file.
  const contents = await Promise.all(names.map((name) => connection.readFile(`${dir}/${name}`)));
  return new Map(names.flatMap((name, i) => (contents[i] ? [[name, contents[i].toString('utf8')] as const] : [])));
}

/** Makes a container's directory hold exactly these files, writing only what differs. */
export async function writeConfigDir(connection: HostConnection, dir: string, files: readonly { name: string; content: string; mode: number }[], present: ReadonlyMap<string, string>): Promise<void> {
  await connection.ensureDir(dir, 0o700);
  for (const file of files) if (present.get(file.name) !== file.content) await connection.writeFileAtomic(`${dir}/${file.name}`, file.content, file.mode);
  const wanted = new Set(files.map((f) => f.name));
  for (const name of present.keys()) if (!wanted.has(name)) await connection.remove(`${dir}/${name}`);
}

/** Database dumps taken before schema migrations, on the database host. */
export function backupsDir(configRoot: string): string {
  return `${configRoot}/.kolla-ts/backups`;
}
