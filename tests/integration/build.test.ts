/**
 * The build against a real Docker engine and a real registry: the keystone
 * chain from images/, pushed, run with config.json in both strategies; and
 * the import of a Debian root directory.
 * Needs dockerd and a registry (scripts/engine-up.sh starts both).
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { PassThrough } from 'node:stream';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importRootDirectory } from '../../src/build/base-rootfs.ts';
import { BUILD_KEY_LABEL } from '../../src/build/key.ts';
import { DockerodeImageEngine } from '../../src/engine/docker.ts';
import { RegistryClient } from '../../src/engine/registry.ts';
import { BuildFailedError } from '../../src/errors.ts';
import { runCli, REGISTRY, requireEngine } from '../helpers/environment.ts';

const docker = new Docker();
const NAMESPACE = 'kolla';
const TAG = 'zed';
const CHAIN = ['base', 'keystone', 'keystone-base', 'openstack-base'];
const ref = (name: string): string => `${REGISTRY}/${NAMESPACE}/${name}:${TAG}`;

interface Summary {
  built: string[];
  failed: { name: string; status: string }[];
  skipped: { name: string }[];
  unmatched: string[];
}

const work = mkdtempSync(join(tmpdir(), 'kolla-ts-build-it-'));
// Own build contexts: the default work dir is shared with any other build on this machine.
const common = ['--registry', REGISTRY, '--namespace', NAMESPACE, '--tag', TAG, '--logs-dir', join(work, 'logs'), '--work-dir', join(work, 'contexts'), '--threads', '2'];
/** A label no earlier run gave the leaf, so the first build must build and push it. */
const RUN_LABEL = 'org.kolla-ts.test-run';
const RUN_ID = `${Date.now()}-${process.pid}`;
const runOverride = join(work, 'run.yml');

async function build(extra: string[], name: string): Promise<{ code: number; summary: Summary; output: string }> {
  const summaryFile = join(work, `${name}.json`);
  const result = await runCli(['build', '^keystone$', ...common, '--summary-json', summaryFile, ...extra]);
  return { code: result.code, summary: JSON.parse(readFileSync(summaryFile, 'utf8')) as Summary, output: result.stdout + result.stderr };
}

function buildSections(): number {
  return CHAIN.reduce((count, name) => {
    try {
      return count + (readFileSync(join(work, 'logs', `${name}.log`), 'utf8').match(/^--- build /gm)?.length ?? 0);
    } catch {
      return count;
    }
  }, 0);
}

async function imageId(name: string): Promise<string> {
  return (await docker.getImage(ref(name)).inspect()).Id;
}

describe('kolla-ts build on a real engine', () => {
  beforeAll(async () => {
    await requireEngine();
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('builds the keystone chain with its ancestors and pushes it', { timeout: 30 * 60_000 }, async () => {
    writeFileSync(runOverride, `keystone:\n  blocks:\n    footer: "LABEL ${RUN_LABEL}=${RUN_ID}"\n`);
    const first = await build(['--push', '--retries', '1', '--template-override', runOverride], 'first');
    expect(first.code, first.output).toBe(0);
    expect(first.summary.built).toContain('keystone');
    expect([...first.summary.built, ...first.summary.skipped.map((s) => s.name)].sort()).toEqual(CHAIN);
    expect(first.summary.failed).toEqual([]);
    expect(first.summary.unmatched).toContain('nova-compute');
    const registry = new RegistryClient(REGISTRY);
    for (const name of CHAIN) {
      const local = (await docker.getImage(ref(name)).inspect()).Config.Labels[BUILD_KEY_LABEL];
      expect(local, name).toMatch(/^sha256:/);
      expect((await registry.imageLabels(`${NAMESPACE}/${name}`, TAG))?.[BUILD_KEY_LABEL], name).toBe(local);
    }
    // The registry's manifest is the one the engine pushed for this run's leaf.
    expect((await registry.imageLabels(`${NAMESPACE}/keystone`, TAG))?.[RUN_LABEL]).toBe(RUN_ID);
    const manifest = await fetch(`http://${REGISTRY}/v2/${NAMESPACE}/keystone/manifests/${TAG}`, {
      headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    expect(manifest.status).toBe(200);
    const pushedDigest = `${REGISTRY}/${NAMESPACE}/keystone@${manifest.headers.get('docker-content-digest')}`;
    expect((await docker.getImage(ref('keystone')).inspect()).RepoDigests).toContain(pushedDigest);
  });

  it('rebuilds only the leaf whose Dockerfile changed, then nothing when nothing changed', { timeout: 20 * 60_000 }, async () => {
    const parentsBefore = await Promise.all(['base', 'openstack-base', 'keystone-base'].map(imageId));
    const override = join(work, 'leaf.yml');
    writeFileSync(override, `keystone:\n  blocks:\n    footer: "LABEL test.marker=${Date.now()}"\n`);
    const changed = await build(['--template-override', override], 'leaf');
    expect(changed.code, changed.output).toBe(0);
    expect(changed.summary.built).toEqual(['keystone']);
    expect(changed.summary.skipped.map((s) => s.name).sort()).toEqual(['base', 'keystone-base', 'openstack-base']);

    // With the first test's override the key is the one pushed then: taken from the registry, not rebuilt.
    const back = await build(['--template-override', runOverride], 'back');
    expect(back.code, back.output).toBe(0);
    expect(back.summary.built).toEqual([]);
    expect(back.summary.skipped.find((s) => s.name === 'keystone')).toEqual({ name: 'keystone', reason: 'up to date (build key present in the registry)' });

    const keystoneBefore = await imageId('keystone');
    const buildsBefore = buildSections();
    const again = await build(['--template-override', runOverride], 'again');
    expect(again.code, again.output).toBe(0);
    expect(again.summary.built).toEqual([]);
    expect(again.summary.skipped).toHaveLength(4);
    expect(await imageId('keystone')).toBe(keystoneBefore);
    expect(await Promise.all(['base', 'openstack-base', 'keystone-base'].map(imageId))).toEqual(parentsBefore);
    // No docker build ran: no image log got a new build section.
    expect(buildSections()).toBe(buildsBefore);
  });

  it('marks descendants of a failed image parent_error and exits non-zero', { timeout: 10 * 60_000 }, async () => {
    const override = join(work, 'broken.yml');
    writeFileSync(override, 'keystone-base:\n  blocks:\n    header: "RUN echo this step fails && false"\n');
    const broken = await build(['--template-override', override], 'broken');
    expect(broken.code).toBe(4);
    expect(broken.summary.failed).toEqual([
      { name: 'keystone', status: 'parent_error', reason: 'parent keystone-base failed' },
      expect.objectContaining({ name: 'keystone-base', status: 'error' }),
    ]);
    expect(broken.summary.skipped.map((s) => s.name).sort()).toEqual(['base', 'openstack-base']);
    expect(readFileSync(join(work, 'logs', 'keystone-base.log'), 'utf8')).toContain('this step fails');
  });

  it('starts base from a registry image with --base-image, pulling it first', { timeout: 15 * 60_000 }, async () => {
    const upstream = `${REGISTRY}/library/debian:bookworm`;
    await docker.getImage('kolla-ts/debian-rootfs:bookworm').tag({ repo: `${REGISTRY}/library/debian`, tag: 'bookworm' });
    await new Promise<void>((resolve, reject) =>
      docker.getImage(upstream).push({ authconfig: {} } as Docker.ImagePushOptions, (error, stream) => {
        if (error || !stream) return reject(error);
        docker.modem.followProgress(stream, (e: Error | null) => (e ? reject(e) : resolve()));
      }),
    );
    await docker.getImage(upstream).remove();
    const result = await runCli(['build', '^base$', '--base-image', upstream, '--namespace', 'kolla-ts-it-upstream', '--tag', TAG, '--work-dir', join(work, 'contexts-upstream')]);
    expect(result.code, result.stderr).toBe(0);
    expect((await docker.getImage(upstream).inspect()).Id).toBeTruthy();
    const built = await docker.getImage(`kolla-ts-it-upstream/base:${TAG}`).inspect();
    expect(built.Config.Labels[BUILD_KEY_LABEL]).toMatch(/^sha256:/);
  });

  it('names an unreachable registry before building anything', async () => {
    const result = await runCli(['build', '^base$', '--registry', '127.0.0.1:1', '--push', '--namespace', NAMESPACE, '--tag', TAG]);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('registry 127.0.0.1:1 is unreachable');
  });

  it('says which regex matched nothing and exits 2', async () => {
    const result = await runCli(['build', 'no-such-image', ...common]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('regex "no-such-image" matches no image');
  });

  describe('importing a Debian root directory', () => {
    const engine = new DockerodeImageEngine();
    const repo = 'kollatest-priv/rootfs-import';
    const tag = `it-${RUN_ID}`;
    const root = join(work, 'rootfs');
    beforeAll(() => {
      mkdirSync(join(root, 'etc'), { recursive: true });
      writeFileSync(join(root, 'etc', 'os-release'), 'ID=test\n');
    });
    afterAll(async () => {
      await docker.getImage(`${repo}:${tag}`).remove().catch(() => {});
    });

    it('fails naming tar and its message when tar fails, and tags nothing', async () => {
      // GNU tar goes on past an unreadable file and exits 2 at the end, its archive otherwise whole.
      const failingTar = join(work, 'failing-tar');
      writeFileSync(failingTar, '#!/bin/sh\ntar "$@"\necho "tar: ./etc/shadow: Cannot open: Permission denied" >&2\nexit 2\n', { mode: 0o755 });
      const attempt = importRootDirectory(engine, root, { repo, tag }, () => {}, failingTar);
      await expect(attempt).rejects.toThrow(BuildFailedError);
      await expect(attempt).rejects.toThrow(`archiving ${root} with tar failed (exit status 2): tar: ./etc/shadow: Cannot open: Permission denied; ${repo}:${tag} was not imported`);
      expect(await engine.inspectImage(`${repo}:${tag}`)).toBeNull();
    });

    it('imports the directory when tar succeeds', async () => {
      await importRootDirectory(engine, root, { repo, tag }, () => {});
      expect(await engine.inspectImage(`${repo}:${tag}`)).not.toBeNull();
    });
  });

  describe('the start contract in the built image', () => {
    const configDir = join(work, 'config');
    const containers: string[] = [];

    const run = async (strategy: string): Promise<Docker.Container> => {
      const name = `kolla-ts-it-${strategy.toLowerCase()}-${process.pid}`;
      containers.push(name);
      const container = await docker.createContainer({
        name,
        Image: ref('keystone'),
        Env: [`KOLLA_CONFIG_STRATEGY=${strategy}`],
        HostConfig: { Binds: [`${configDir}:/var/lib/kolla/config_files:ro`], NetworkMode: 'none' },
      });
      await container.start();
      return container;
    };
    const exec = async (container: Docker.Container, cmd: string[], user = 'root'): Promise<{ code: number; output: string }> => {
      const execution = await container.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true, User: user });
      const stream = await execution.start({});
      const chunks: Buffer[] = [];
      const sink = new PassThrough();
      sink.on('data', (c: Buffer) => chunks.push(c));
      docker.modem.demuxStream(stream, sink, sink);
      await new Promise((resolve) => stream.on('end', resolve));
      return { code: (await execution.inspect()).ExitCode ?? -1, output: Buffer.concat(chunks).toString('utf8') };
    };
    const setSource = (text: string): void => {
      writeFileSync(join(configDir, 'test.conf'), text);
      chmodSync(join(configDir, 'test.conf'), 0o600);
    };
    const waitForFile = async (container: Docker.Container, expected: string): Promise<string> => {
      let content = '';
      for (let i = 0; i < 30; i++) {
        content = (await exec(container, ['cat', '/etc/keystone/test.conf'])).output;
        if (content.includes(expected)) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      return content;
    };

    beforeAll(() => {
      mkdirSync(configDir, { recursive: true });
      writeFileSync(
        join(configDir, 'config.json'),
        JSON.stringify({
          command: 'sleep infinity',
          config_files: [{ source: '/var/lib/kolla/config_files/test.conf', dest: '/etc/keystone/test.conf', owner: 'keystone', perm: '0600' }],
        }),
      );
    });
    afterAll(async () => {
      for (const name of containers) await docker.getContainer(name).remove({ force: true }).catch(() => {});
    });

    it('COPY_ALWAYS copies again on restart; the check mode catches a changed file', { timeout: 120_000 }, async () => {
      setSource('version = 1\n');
      const container = await run('COPY_ALWAYS');
      expect(await waitForFile(container, 'version = 1')).toContain('version = 1');
      const stat = await exec(container, ['stat', '-c', '%U %a', '/etc/keystone/test.conf']);
      expect(stat.output.trim()).toBe('keystone 600');
      expect((await exec(container, ['kolla_set_configs', '--check'])).code).toBe(0);

      setSource('version = 2\n');
      await container.restart({ t: 1 });
      expect(await waitForFile(container, 'version = 2')).toContain('version = 2');

      await exec(container, ['sh', '-c', 'echo tampered > /etc/keystone/test.conf']);
      const check = await exec(container, ['kolla_set_configs', '--check']);
      expect(check.code).toBe(1);
      expect(check.output).toContain('/etc/keystone/test.conf');
      expect(check.output).not.toContain('tampered');
    });

    it('COPY_ONCE keeps the first copy across a restart', { timeout: 120_000 }, async () => {
      setSource('version = 1\n');
      const container = await run('COPY_ONCE');
      expect(await waitForFile(container, 'version = 1')).toContain('version = 1');
      setSource('version = 2\n');
      await container.restart({ t: 1 });
      await new Promise((r) => setTimeout(r, 2000));
      expect((await container.inspect()).State.Running).toBe(true);
      expect((await exec(container, ['cat', '/etc/keystone/test.conf'])).output).toContain('version = 1');
    });
  });
});

