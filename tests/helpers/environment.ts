import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import Docker from 'dockerode';

export const PROJECT_ROOT = join(import.meta.dirname, '..', '..');
export const CLI = join(PROJECT_ROOT, 'bin', 'kolla-ts.mjs');
/** The registry scripts/engine-up.sh starts. */
export const REGISTRY = process.env.KOLLA_TS_TEST_REGISTRY ?? '127.0.0.1:4000';

/** Integration tests need a real engine: fail loudly, never skip silently. */
export async function requireEngine(): Promise<void> {
  try {
    await new Docker().ping();
  } catch (error) {
    throw new Error(`no Docker engine answers on /var/run/docker.sock (${(error as Error).message}); run scripts/engine-up.sh first`);
  }
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI as a user would, in a child process. */
export function runCli(
  args: string[],
  options: { env?: Record<string, string>; onLine?: (line: string) => void; onStart?: (child: ChildProcess) => void } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, CI: 'true', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    options.onStart?.(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (options.onLine) for (const line of chunk.toString().split('\n')) if (line) options.onLine(line);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Thrown by a probe when waiting longer cannot help. */
export class GiveUp extends Error {}

/** Polls `probe` every 5 s until it returns a value, for at most `seconds`; the last error is in the timeout's message. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, seconds: number): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      if (error instanceof GiveUp) throw error;
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 5000));
  }
}
