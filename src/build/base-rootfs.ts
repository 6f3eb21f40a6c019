import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { $ } from 'zx';
import { InputError, UnreachableError } from '../errors.ts';
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
    const tar = spawn('tar', ['-C', join(dir, 'root'), '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await engine.importRootfs(tar.stdout, ROOTFS_REPO, options.suite);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const imported = await engine.inspectImage(ref);
  if (!imported) throw new Error(`imported ${ref} but the engine does not show it`);
  log(`imported ${ref}`);
  return { ref, id: imported.id };
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
