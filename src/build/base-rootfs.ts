import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { $ } from 'zx';
import { BuildFailedError, InputError, UnreachableError } from '../errors.ts';
import type { ImageEngine, LogSink } from '../engine/docker.ts';

export const DEFAULT_MIRROR = 'http://deb.debian.org/debian';
export const DEFAULT_SUITE = 'bookworm';
const ROOTFS_REPO = 'kolla-ts/debian-rootfs';

export interface BaseImageOptions {
  /** An image to start from (e.g. debian:bookworm); pulled when absent. */
  baseImage?: string;
  mirror: string;
  suite: string;
}

/**
 * The image `base` starts from, and its id (part of base's build key). With
 * no registry to pull from, a Debian root is made here with debootstrap and
 * imported once; later builds reuse it.
 */
export async function ensureBaseImage(engine: ImageEngine, options: BaseImageOptions, log: LogSink): Promise<{ ref: string; id: string }> {
  if (options.baseImage) {
    let found = await engine.inspectImage(options.baseImage);
    if (!found) {
      log(`pulling ${options.baseImage}`);
      try {
        await engine.pull(options.baseImage, log);
      } catch (error) {
        throw new UnreachableError(`cannot pull base image ${options.baseImage}: ${(error as Error).message}`);
      }
      found = await engine.inspectImage(options.baseImage);
    }
    if (!found) throw new UnreachableError(`base image ${options.baseImage} is not present after pulling it`);
    return { ref: options.baseImage, id: found.id };
  }

  const ref = `${ROOTFS_REPO}:${options.suite}`;
  const existing = await engine.inspectImage(ref);
  if (existing) return { ref, id: existing.id };

  await assertMirrorReachable(options.mirror, options.suite);
  if (process.getuid?.() !== 0) throw new InputError('making the Debian root with debootstrap needs root; or pass --base-image');
  const which = await $({ nothrow: true, quiet: true })`command -v debootstrap`;
  if (which.exitCode !== 0) throw new InputError('debootstrap is not installed (apt-get install debootstrap), or pass --base-image');

  const dir = mkdtempSync(join(tmpdir(), 'kolla-ts-rootfs-'));
  try {
    log(`debootstrap ${options.suite} from ${options.mirror}`);
    const bootstrap = await $({ nothrow: true, quiet: true })`debootstrap --variant=minbase ${options.suite} ${join(dir, 'root')} ${options.mirror}`;
    if (bootstrap.exitCode !== 0) {
      throw new UnreachableError(`debootstrap from ${options.mirror} failed: ${bootstrap.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    }
    await importRootDirectory(engine, join(dir, 'root'), { repo: ROOTFS_REPO, tag: options.suite }, log);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const imported = await engine.inspectImage(ref);
  if (!imported) throw new Error(`imported ${ref} but the engine does not show it`);
  log(`imported ${ref}`);
  return { ref, id: imported.id };
}

/**
 * Imports the directory `root` as repo:tag. tar writes the archive to a file
 * beside `root` first: streamed into the engine, the archive of a tar that
 * failed half-way (an unreadable file, a full disk) would still end cleanly
 * and be tagged as if it were the whole root. `tar` names the program, so a
 * test can make it fail.
 */
export async function importRootDirectory(
  engine: ImageEngine,
  root: string,
  target: { repo: string; tag: string },
  log: LogSink,
  tar = 'tar',
): Promise<void> {
  const archive = `${root}.tar`;
  try {
    const result = await $({ nothrow: true, quiet: true })`${tar} -C ${root} -c -f ${archive} .`;
    const stderr = result.stderr.trim().split('\n').filter(Boolean);
    if (result.exitCode !== 0) {
      const status = result.exitCode === null ? `killed by ${result.signal}` : `exit status ${result.exitCode}`;
      throw new BuildFailedError(`archiving ${root} with tar failed (${status}): ${stderr.slice(-3).join(' | ') || 'no message'}; ${target.repo}:${target.tag} was not imported`);
    }
    for (const line of stderr) log(`tar: ${line}`);
    await engine.importRootfs(createReadStream(archive), target.repo, target.tag);
  } finally {
    rmSync(archive, { force: true });
  }
}

async function assertMirrorReachable(mirror: string, suite: string): Promise<void> {
  const url = `${mirror.replace(/\/$/, '')}/dists/${suite}/Release`;
  try {
    const response = await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(15_000) });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
  } catch (error) {
    throw new UnreachableError(`Debian mirror ${mirror} is unreachable (${url}: ${(error as Error).message})`);
  }
}
