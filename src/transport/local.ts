import { execFile } from 'node:child_process';
import { chmod, link, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import { localDocker, localEngineAddress } from '../engine/docker.ts';
import type { CommandResult, HostConnection } from './host.ts';

/** The deploy host itself: files through the local file system, the engine through its socket. */
export class LocalHost implements HostConnection {
  readonly docker: Docker = localDocker();
  readonly engineAddress = localEngineAddress();
  readonly lost = false;

  constructor(readonly name: string) {}

  async readFile(path: string): Promise<Buffer | null> {
    try {
      return await readFile(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  async writeFileAtomic(path: string, content: string | Buffer, mode: number): Promise<void> {
    const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
    // Created with its final mode, so a secret is never readable by others even for a moment.
    await writeFile(temp, content, { mode });
    await chmod(temp, mode);
    await rename(temp, path);
  }

  async createExclusive(path: string, content: string, mode: number): Promise<boolean> {
    const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
    await writeFile(temp, content, { mode });
    try {
      // link(2) refuses an existing target: whoever links first holds it.
      await link(temp, path);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    } finally {
      await rm(temp, { force: true });
    }
  }

  async ensureDir(path: string, mode: number): Promise<void> {
    await mkdir(path, { recursive: true, mode });
    await chmod(path, mode);
  }

  async listDir(path: string): Promise<string[]> {
    try {
      return await readdir(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }

  async remove(path: string): Promise<void> {
    await rm(path, { recursive: true, force: true });
  }

  exec(argv: readonly string[]): Promise<CommandResult> {
    return new Promise((resolve, reject) => {
      execFile(argv[0]!, argv.slice(1), { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') return reject(error);
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
      });
    });
  }

  async interfaceAddress(name: string): Promise<string | undefined> {
    return networkInterfaces()[name]?.find((address) => address.family === 'IPv4')?.address;
  }

  async close(): Promise<void> {}
}
