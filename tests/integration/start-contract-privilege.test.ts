/**
 * The start contract's one root step, attacked from inside a container built
 * from images/base: a member of group kolla may run `sudo kolla_set_configs`,
 * and nothing it passes (variables through sudo, a planted Python module)
 * may make that root run write a file of its choosing. The legitimate path,
 * a service user's container started with kolla_start, keeps working.
 * Needs dockerd (scripts/engine-up.sh); builds `base` once (the layer cache
 * makes that quick when build.test.ts has built it already).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireEngine, runCli } from '../helpers/environment.ts';

const docker = new Docker();
const NAMESPACE = 'kollatest-priv';
const TAG = 'it';
const IMAGE = `${NAMESPACE}/base:${TAG}`;
/** A service user of images/users.yml, in group kolla. */
const SERVICE_USER = 'keystone';

const work = mkdtempSync(join(tmpdir(), 'kolla-ts-privilege-it-'));
const configDir = join(work, 'config_files');
const containerName = `${NAMESPACE}-${process.pid}`;
let container: Docker.Container;

interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function exec(cmd: string[], options: { user?: string; env?: string[]; target?: Docker.Container } = {}): Promise<ExecResult> {
  const execution = await (options.target ?? container).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true, User: options.user ?? SERVICE_USER, Env: options.env ?? [] });
  const stream = await execution.start({});
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (chunk: Buffer) => out.push(chunk));
  stderr.on('data', (chunk: Buffer) => err.push(chunk));
  docker.modem.demuxStream(stream, stdout, stderr);
  await new Promise((resolve) => stream.on('end', resolve));
  return { code: (await execution.inspect()).ExitCode ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

const asRoot = (script: string): Promise<ExecResult> => exec(['sh', '-c', script], { user: 'root' });

async function waitFor(script: string): Promise<void> {
  for (let i = 0; i < 60; i++) {
    if ((await asRoot(script)).code === 0) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for: ${script}\n${(await container.logs({ stdout: true, stderr: true })).toString()}`);
}

function setSource(text: string): void {
  writeFileSync(join(configDir, 'service.conf'), text, { mode: 0o644 });
}

/** What the attacks would write as root, if one got through. */
const TARGETS = ['/etc/sudoers.d/evil', '/etc/cron.d/x', '/tmp/imported'];

/** An evil config.json and Python modules, planted by the service user. */
const PLANT = [
  'set -e',
  'mkdir -p /tmp/evil',
  `echo '${SERVICE_USER} ALL=(ALL) NOPASSWD: ALL' > /tmp/evil/payload`,
  `echo '${JSON.stringify({ command: 'sleep infinity', config_files: [{ source: '/tmp/evil/payload', dest: '/etc/sudoers.d/evil', owner: 'root', perm: '0440' }] })}' > /tmp/evil.json`,
  'cp /tmp/evil.json /tmp/config.json',
  `for module in sitecustomize json; do printf '%s\\n' "open('/etc/sudoers.d/evil', 'w').write('${SERVICE_USER} ALL=(ALL) NOPASSWD: ALL')" "open('/tmp/imported', 'w').write('$module')" > /tmp/evil/$module.py; done`,
].join('\n');

/** Each way a caller could try to steer the root run; each names a strategy,
 * without which the tool stopped before the fix too. */
const ATTEMPTS: { name: string; cmd: string[]; env?: string[] }[] = [
  { name: 'KOLLA_CONFIG_FILE on the sudo line', cmd: ['sudo', 'KOLLA_CONFIG_STRATEGY=COPY_ALWAYS', 'KOLLA_CONFIG_FILE=/tmp/evil.json', 'kolla_set_configs'] },
  { name: 'sudo -E', cmd: ['sudo', '-E', 'kolla_set_configs'], env: ['KOLLA_CONFIG_STRATEGY=COPY_ONCE', 'KOLLA_CONFIG_FILE=/tmp/evil.json'] },
  { name: 'PYTHONPATH with planted modules', cmd: ['sudo', 'KOLLA_CONFIG_STRATEGY=COPY_ALWAYS', 'PYTHONPATH=/tmp/evil', 'kolla_set_configs'] },
  { name: 'KOLLA_CONFIG_DIR', cmd: ['sudo', 'KOLLA_CONFIG_STRATEGY=COPY_ALWAYS', 'KOLLA_CONFIG_DIR=/tmp', 'kolla_set_configs'] },
  { name: 'KOLLA_RUN_COMMAND_FILE', cmd: ['sudo', 'KOLLA_CONFIG_STRATEGY=COPY_ALWAYS', 'KOLLA_RUN_COMMAND_FILE=/etc/cron.d/x', 'kolla_set_configs'] },
  { name: 'SUDO_UID=0', cmd: ['sudo', 'SUDO_UID=0', 'KOLLA_CONFIG_STRATEGY=COPY_ALWAYS', 'KOLLA_CONFIG_FILE=/tmp/evil.json', 'kolla_set_configs'] },
];

async function expectNoTargetWritten(): Promise<void> {
  for (const target of TARGETS) expect((await asRoot(`test ! -e ${target}`)).code, `${target} exists`).toBe(0);
  expect((await asRoot('cat /run_command')).stdout).toBe('sleep infinity\n');
  expect((await asRoot('test ! -e /configured')).code, 'COPY_ONCE marker written').toBe(0);
}

describe('kolla_set_configs through sudo in a container of the real base image', () => {
  beforeAll(async () => {
    await requireEngine();
    const build = await runCli(['build', '^base$', '--namespace', NAMESPACE, '--tag', TAG, '--work-dir', join(work, 'contexts'), '--logs-dir', join(work, 'logs')]);
    expect(build.code, build.stdout + build.stderr).toBe(0);

    mkdirSync(configDir);
    setSource('version = 1\n');
    writeFileSync(
      join(configDir, 'config.json'),
      JSON.stringify({
        command: 'sleep infinity',
        config_files: [
          { source: '/var/lib/kolla/config_files/service.conf', dest: `/etc/${SERVICE_USER}/service.conf`, owner: SERVICE_USER, perm: '0600' },
          { source: '/var/lib/kolla/config_files/service.conf', dest: '/etc/kollatest/root-only.conf', owner: 'root', perm: '0600' },
        ],
      }),
    );
    container = await docker.createContainer({
      name: containerName,
      Image: IMAGE,
      User: SERVICE_USER,
      Env: ['KOLLA_CONFIG_STRATEGY=COPY_ALWAYS'],
      HostConfig: { Binds: [`${configDir}:/var/lib/kolla/config_files:ro`], NetworkMode: 'none' },
    });
    await container.start();
    await waitFor(`grep -q 'version = 1' /etc/${SERVICE_USER}/service.conf`);
  });

  afterAll(async () => {
    await docker.getContainer(containerName).remove({ force: true }).catch(() => {});
    rmSync(work, { recursive: true, force: true });
  });

  it('a service user container starts through kolla_start: files installed as root, the command run as the user', { timeout: 60_000 }, async () => {
    const files = await asRoot(`stat -c '%n %U %a' /etc/${SERVICE_USER}/service.conf /etc/kollatest/root-only.conf`);
    expect(files.stdout.trim().split('\n')).toEqual([`/etc/${SERVICE_USER}/service.conf ${SERVICE_USER} 600`, '/etc/kollatest/root-only.conf root 600']);
    const processes = await asRoot('ps -o user=,args= -p 1 && pgrep -a -u keystone -x sleep');
    expect(processes.stdout).toContain('dumb-init --single-child -- kolla_start');
    expect(processes.stdout).toContain('sleep infinity');

    setSource('version = 2\n');
    await container.restart({ t: 1 });
    await waitFor(`grep -q 'version = 2' /etc/${SERVICE_USER}/service.conf`);
  });

  it('refuses every attempt to pass the caller environment through sudo, and nothing gets written', { timeout: 60_000 }, async () => {
    expect((await exec(['sh', '-c', PLANT])).code).toBe(0);
    for (const attempt of ATTEMPTS) {
      const result = await exec(attempt.cmd, { env: attempt.env ?? [] });
      expect(result.code, attempt.name).not.toBe(0);
      expect(result.stderr, attempt.name).toMatch(/sudo: sorry, you are not allowed to (set the following environment variables|preserve the environment)/);
    }
    await expectNoTargetWritten();
  });

  it('ignores the caller environment itself, even where a sudoers rule lets it through', { timeout: 60_000 }, async () => {
    expect((await exec(['sh', '-c', PLANT])).code).toBe(0);
    // A later rule granting SETENV, as a careless image might add.
    const rule = '/etc/sudoers.d/zz-kollatest-setenv';
    expect((await asRoot(`echo '%kolla ALL=(root) NOPASSWD:SETENV: /usr/local/bin/kolla_set_configs' > ${rule} && chmod 0440 ${rule} && visudo -c -q`)).code).toBe(0);
    try {
      for (const attempt of ATTEMPTS) {
        const result = await exec(attempt.cmd, { env: attempt.env ?? [] });
        // sudo lets it run now; it installs the container's own config.json only.
        expect(result.code, `${attempt.name}: ${result.stderr}`).toBe(0);
        expect(result.stdout, attempt.name).toContain('copying /var/lib/kolla/config_files/service.conf');
      }
      await expectNoTargetWritten();
    } finally {
      await asRoot(`rm -f ${rule}`);
    }
  });

  it('without a strategy at container creation, the sudo path fails and says so', { timeout: 60_000 }, async () => {
    const bare = await docker.createContainer({
      name: `${containerName}-bare`,
      Image: IMAGE,
      User: SERVICE_USER,
      Cmd: ['sleep', 'infinity'],
      HostConfig: { Binds: [`${configDir}:/var/lib/kolla/config_files:ro`], NetworkMode: 'none' },
    });
    try {
      await bare.start();
      const attempt = await exec(['sudo', 'kolla_set_configs'], { target: bare });
      expect(attempt.code).toBe(1);
      expect(attempt.stderr).toContain('kolla_set_configs: ERROR: KOLLA_CONFIG_STRATEGY must be set at container creation');
    } finally {
      await bare.remove({ force: true });
    }
  });
});
