/**
 * Failures a user meets before anything runs: an engine that does not
 * answer, a config directory that does not exist yet. Each is a clear
 * message and an exit code, never a stack trace. No engine is needed: the
 * engine these tests name is a socket nobody listens on.
 */
import { copyFileSync, existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, runCli } from '../helpers/environment.ts';

const inventory = join(PROJECT_ROOT, 'inventory', 'all-in-one.yml');

function expectNoTrace(stderr: string): void {
  expect(stderr).not.toContain('internal error');
  expect(stderr).not.toMatch(/^\s+at /m);
}

describe('genpwd', () => {
  it('creates a missing config directory with mode 0700', async () => {
    const configDir = join(mkdtempSync(join(tmpdir(), 'kolla-ts-genpwd-')), 'new', 'etc');
    const result = await runCli(['genpwd', '--configdir', configDir]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(statSync(configDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(configDir, 'passwords.yml')).mode & 0o777).toBe(0o600);
  });
});

describe('an engine that does not answer', () => {
  const deadEngine = `unix://${join(mkdtempSync(join(tmpdir(), 'kolla-ts-noengine-')), 'docker.sock')}`;
  const configDir = mkdtempSync(join(tmpdir(), 'kolla-ts-etc-'));

  beforeAll(async () => {
    copyFileSync(join(PROJECT_ROOT, 'inventory', 'globals.all-in-one.yml'), join(configDir, 'globals.yml'));
    expect((await runCli(['genpwd', '--configdir', configDir])).code).toBe(0);
  });

  for (const command of [['plan'], ['deploy'], ['reconfigure'], ['status'], ['check'], ['stop'], ['destroy', '--yes-i-really-really-mean-it']]) {
    it(`${command[0]}: exit 3 naming the host and the engine (DOCKER_HOST is followed)`, async () => {
      const result = await runCli([...command, '-i', inventory, '--configdir', configDir], { env: { DOCKER_HOST: deadEngine } });
      expectNoTrace(result.stderr);
      // The host is reported unreachable in the recap and in the closing error, which names it and the engine.
      expect(result.stderr).toMatch(/^localhost\s+unreachable/m);
      expect(result.stderr).toContain(`kolla-ts: error: localhost unreachable (localhost: the Docker engine at ${deadEngine} does not answer (ENOENT); is dockerd running?)`);
      expect(result.code).toBe(3);
    });
  }

  it('build: exit 3 naming the engine', async () => {
    const result = await runCli(['build', 'base', '--work-dir', mkdtempSync(join(tmpdir(), 'kolla-ts-work-'))], { env: { DOCKER_HOST: deadEngine } });
    expectNoTrace(result.stderr);
    expect(result.stderr).toContain(`the Docker engine at ${deadEngine} does not answer`);
    expect(result.code).toBe(3);
    expect(existsSync(deadEngine.slice('unix://'.length))).toBe(false);
  });
});
