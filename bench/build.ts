/**
 * Build benchmark (not a test): prints, in one run,
 *   1. kolla-ts cold build of the whole tree (no layer cache, no images);
 *   2. kolla-ts rebuild with nothing changed (target: under 3 s);
 *   3. kolla-ts rebuild after one leaf's Dockerfile changed (only that leaf);
 * and side by side the baseline, plain `docker build` of the same rendered
 * tree in dependency order: 4. cold (--no-cache), 5. with the layer cache.
 * Run as root with dockerd up: `npm run bench:build` (about 40 minutes on 2 cores).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'bin', 'kolla-ts.mjs');
const work = mkdtempSync(join(tmpdir(), 'kolla-ts-bench-build-'));
const LEAF = 'nova-novncproxy';

function timed(label: string, command: string, args: string[]): number {
  const started = process.hrtime.bigint();
  const result = spawnSync(command, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CI: 'true' }, maxBuffer: 256 * 1024 * 1024 });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.status !== 0) throw new Error(`${label} failed (exit ${result.status}): ${result.stderr.toString().slice(-2000)}`);
  console.log(`${label.padEnd(58)} ${seconds.toFixed(1).padStart(8)} s`);
  return seconds;
}

function kollaTs(label: string, namespace: string, extra: string[] = []): { seconds: number; built: string[] } {
  const summary = join(work, `${label.replace(/\W+/g, '-')}.json`);
  const seconds = timed(label, process.execPath, [CLI, 'build', '--namespace', namespace, '--tag', 'bench', '--threads', '2', '--summary-json', summary, ...extra]);
  return { seconds, built: (JSON.parse(readFileSync(summary, 'utf8')) as { built: string[] }).built };
}

function removeNamespace(namespace: string): void {
  const list = spawnSync('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}', '--filter', `reference=${namespace}/*`]).stdout.toString().trim();
  if (list) spawnSync('docker', ['image', 'rm', '-f', ...list.split('\n')], { stdio: 'ignore' });
}

console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${new Date().toISOString()}`);
const images = spawnSync(process.execPath, [CLI, 'build', '--list-images'], { cwd: ROOT }).stdout.toString().trim().split('\n');
console.log(`tree: ${images.length} images\n`);

removeNamespace('bench');
const cold = kollaTs('kolla-ts: cold build, whole tree (--no-cache)', 'bench', ['--no-cache']);
const noop = kollaTs('kolla-ts: rebuild, nothing changed', 'bench');
const override = join(work, 'leaf.yml');
writeFileSync(override, `${LEAF}:\n  blocks:\n    footer: "LABEL bench.changed=${Date.now()}"\n`);
const leaf = kollaTs(`kolla-ts: rebuild after changing ${LEAF}'s Dockerfile`, 'bench', ['--template-override', override]);

// Baseline: the same rendered contexts, built one after another with plain docker build.
const contexts = join(work, 'plain');
spawnSync(process.execPath, [CLI, 'build', '--namespace', 'plain', '--tag', 'bench', '--template-only', '--work-dir', contexts], { cwd: ROOT, stdio: 'ignore' });
removeNamespace('plain');
const plainBuild = (label: string, noCache: boolean): number => {
  const started = process.hrtime.bigint();
  for (const name of images) {
    const args = ['build', '--network', 'host', '-q', '-t', `plain/${name}:bench`, ...(noCache ? ['--no-cache'] : []), join(contexts, name)];
    const result = spawnSync('docker', args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, DOCKER_BUILDKIT: '0' } });
    if (result.status !== 0) throw new Error(`docker build ${name} failed: ${result.stderr.toString().slice(-1000)}`);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(`${label.padEnd(58)} ${seconds.toFixed(1).padStart(8)} s`);
  return seconds;
};
const plainCold = plainBuild('docker build in order: cold (--no-cache)', true);
const plainCached = plainBuild('docker build in order: nothing changed (layer cache)', false);

console.log('\nsummary');
console.log(`  cold:            kolla-ts ${cold.seconds.toFixed(1)} s vs plain docker build ${plainCold.toFixed(1)} s (${cold.built.length} images)`);
console.log(`  nothing changed: kolla-ts ${noop.seconds.toFixed(2)} s (${noop.built.length} built; target < 3 s) vs plain docker build with cache ${plainCached.toFixed(1)} s`);
console.log(`  one leaf:        kolla-ts ${leaf.seconds.toFixed(1)} s, rebuilt: ${leaf.built.join(', ') || 'none'}`);
removeNamespace('plain');
