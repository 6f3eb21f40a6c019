/**
 * Build benchmark (not a test). In one run, on one machine, one after another:
 *   1. cold builds of the same image set, each with `--no-cache` and none of
 *      its images present (the debootstrapped root is shared by all three):
 *      kolla-ts --threads 2, kolla-ts --threads 1, and plain `docker build`
 *      of the same rendered contexts in dependency order. threads 1 vs 2 is
 *      the gain of parallelism; docker build vs threads 1 that of the builder;
 *   2. --rounds times (default 5), kolla-ts --threads 2 and docker build with
 *      its layer cache, interleaved: a rebuild with nothing changed, and a
 *      rebuild after one leaf's Dockerfile changed (a new LABEL each round).
 * Every sample goes to bench/results/<date>-build.json; `npm run bench:report`
 * turns the results into bench/RESULTS.md.
 *
 * Run as root with dockerd up and nothing else building:
 *   npm run bench:build [-- --images REGEX --leaf NAME --rounds N]
 * --images narrows the set (e.g. '^data-volume$' with --leaf data-volume for
 * a check that the bench works: base and one leaf, a few minutes).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { describeMachine, ROOT, startRecord, writeRecord, type RunRecord } from './common.ts';

export interface BuildSettings {
  /** The selection regex given to kolla-ts, null for its default (every image). */
  selection: string | null;
  images: string[];
  leaf: string;
  rounds: number;
}

export interface KollaRun {
  seconds: number;
  built: string[];
}

export interface BuildSamples {
  /** In the order they ran. */
  cold: { threads2: KollaRun; threads1: KollaRun; dockerBuild: number };
  noop: { kollaTs: KollaRun[]; dockerBuild: number[] };
  leaf: { kollaTs: KollaRun[]; dockerBuild: number[] };
}

export type BuildRecord = RunRecord<BuildSettings, BuildSamples>;

const { values: flags } = parseArgs({
  options: {
    images: { type: 'string' },
    leaf: { type: 'string', default: 'nova-novncproxy' },
    rounds: { type: 'string', default: '5' },
  },
});
const rounds = Number(flags.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds ${flags.rounds}: expected a positive integer`);
const selection = flags.images ? [flags.images] : [];

const CLI = join(ROOT, 'bin', 'kolla-ts.mjs');
const work = mkdtempSync(join(tmpdir(), 'kolla-ts-bench-build-'));
const contexts = join(work, 'plain');

function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  const result = spawnSync(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: 'true', ...env }, maxBuffer: 256 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (exit ${result.status}): ${result.stderr.toString().slice(-2000)}`);
  return result.stdout.toString();
}

function report(label: string, seconds: number, note = ''): void {
  console.log(`${label.padEnd(52)} ${seconds.toFixed(2).padStart(8)} s${note ? `  ${note}` : ''}`);
}

function kollaTs(label: string, threads: number, extra: string[]): KollaRun {
  const summary = join(work, 'summary.json');
  const started = process.hrtime.bigint();
  run(process.execPath, [CLI, 'build', ...selection, '--namespace', 'bench', '--tag', 'bench', '--threads', String(threads), '--summary-json', summary, ...extra]);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const { built } = JSON.parse(readFileSync(summary, 'utf8')) as { built: string[] };
  report(label, seconds, `built ${built.length}`);
  return { seconds, built };
}

/** Builds every selected image's context in dependency order, as a user of plain docker would. */
function dockerBuild(label: string, noCache: boolean): number {
  const started = process.hrtime.bigint();
  for (const name of images) {
    // The legacy builder, as kolla-ts's engine API calls use; host network, as kolla-ts asks for.
    run('docker', ['build', '--network', 'host', '-q', '-t', `plain/${name}:bench`, ...(noCache ? ['--no-cache'] : []), join(contexts, name)], { DOCKER_BUILDKIT: '0' });
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  report(label, seconds);
  return seconds;
}

function renderContexts(overrides: string[]): void {
  run(process.execPath, [CLI, 'build', ...selection, '--namespace', 'plain', '--tag', 'bench', '--template-only', '--work-dir', contexts, ...overrides]);
}

function removeNamespace(namespace: string): void {
  const list = run('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}', '--filter', `reference=${namespace}/*`]).trim();
  if (list) run('docker', ['image', 'rm', '-f', ...list.split('\n')]);
}

const header = startRecord('build');
const images = run(process.execPath, [CLI, 'build', ...selection, '--list-images']).trim().split('\n');
if (!images.includes(flags.leaf)) throw new Error(`--leaf ${flags.leaf} is not among the selected images: ${images.join(', ')}`);
console.log(`machine: ${describeMachine(header.machine)}`);
console.log(`commit ${header.git.commit}${header.git.dirty ? ' (tree dirty)' : ''}; ${images.length} images; leaf ${flags.leaf}; ${rounds} rounds\n`);

removeNamespace('bench');
const threads2 = kollaTs('cold: kolla-ts --threads 2 (--no-cache)', 2, ['--no-cache']);
removeNamespace('bench');
const threads1 = kollaTs('cold: kolla-ts --threads 1 (--no-cache)', 1, ['--no-cache']);
renderContexts([]);
removeNamespace('plain');
const dockerCold = dockerBuild('cold: docker build in order (--no-cache)', true);

// Each build, and the rendered contexts, carry the previous leaf round's override, so that "nothing changed" holds.
let override: string[] = [];
const noop: BuildSamples['noop'] = { kollaTs: [], dockerBuild: [] };
const leaf: BuildSamples['leaf'] = { kollaTs: [], dockerBuild: [] };
for (let round = 1; round <= rounds; round++) {
  console.log(`\nround ${round}/${rounds}`);
  noop.kollaTs.push(kollaTs('kolla-ts: nothing changed', 2, override));
  const file = join(work, `leaf-${round}.yml`);
  writeFileSync(file, `${flags.leaf}:\n  blocks:\n    footer: "LABEL bench.round=${round}-${Date.now()}"\n`);
  override = ['--template-override', file];
  leaf.kollaTs.push(kollaTs(`kolla-ts: ${flags.leaf}'s Dockerfile changed`, 2, override));
  noop.dockerBuild.push(dockerBuild('docker build: nothing changed (layer cache)', false));
  renderContexts(override);
  leaf.dockerBuild.push(dockerBuild(`docker build: ${flags.leaf}'s Dockerfile changed`, false));
}

const record: BuildRecord = {
  ...header,
  settings: { selection: flags.images ?? null, images, leaf: flags.leaf, rounds },
  samples: { cold: { threads2, threads1, dockerBuild: dockerCold }, noop, leaf },
};
const written = writeRecord(record);
removeNamespace('bench');
removeNamespace('plain');
rmSync(work, { recursive: true, force: true });
console.log(`\nraw figures: ${written}; \`npm run bench:report\` writes bench/RESULTS.md from bench/results/`);
