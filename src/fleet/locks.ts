import { hostname } from 'node:os';
import { HostLockedError } from '../errors.ts';
import type { HostConnection } from '../transport/host.ts';

/**
 * One kolla-ts run changes a host at a time: a lock file beside the config
 * it manages, naming its holder. A second run is refused with that name;
 * a lock whose holder died (same deploy host, process gone) is taken over.
 */
export interface LockHolder {
  deployHost: string;
  pid: number;
  command: string;
  since: string;
}

export function lockPath(configRoot: string): string {
  return `${configRoot}/.kolla-ts/lock.json`;
}

export function currentHolder(command: string): LockHolder {
  return { deployHost: hostname(), pid: process.pid, command, since: new Date().toISOString() };
}

/** Takes the host's lock or throws HostLockedError naming who holds it. */
export async function acquireLock(host: string, connection: HostConnection, configRoot: string, holder: LockHolder): Promise<void> {
  const path = lockPath(configRoot);
  await connection.ensureDir(`${configRoot}/.kolla-ts`, 0o700);
  for (let attempt = 0; attempt < 2; attempt++) {
    if (await connection.createExclusive(path, JSON.stringify(holder), 0o600)) return;
    const current = parseHolder((await connection.readFile(path))?.toString('utf8'));
    if (!current) throw new HostLockedError(`host ${host}: cannot take ${path} and it names no holder; remove it if no kolla-ts run is going on`);
    if (!isStale(current)) {
      throw new HostLockedError(
        `host ${host} is being changed by another kolla-ts run: ${current.command} (pid ${current.pid} on ${current.deployHost}, since ${current.since}). ` +
          `Wait for it to end; if it is gone, remove ${path} on ${host}`,
      );
    }
    // The holder died without releasing (killed): its lock means nothing now.
    await connection.remove(path);
  }
  throw new HostLockedError(`host ${host}: another run took ${path} while a stale lock was being cleared; try again`);
}

/** Releases the lock if it is still ours. */
export async function releaseLock(connection: HostConnection, configRoot: string, holder: LockHolder): Promise<void> {
  const path = lockPath(configRoot);
  const current = parseHolder((await connection.readFile(path))?.toString('utf8'));
  if (current && current.deployHost === holder.deployHost && current.pid === holder.pid) await connection.remove(path);
}

function parseHolder(text: string | undefined): LockHolder | undefined {
  if (!text) return undefined;
  try {
    const value = JSON.parse(text) as Partial<LockHolder>;
    return typeof value.pid === 'number' && typeof value.deployHost === 'string' ? (value as LockHolder) : undefined;
  } catch {
    return undefined;
  }
}

/** Only a holder on this deploy host can be known dead; elsewhere, the operator decides. */
function isStale(holder: LockHolder): boolean {
  if (holder.deployHost !== hostname()) return false;
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
