/**
 * What the benches share: the record of a run (machine, commit, command,
 * raw samples) written as JSON under bench/results/, and the statistics the
 * report draws from those samples.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import Docker from 'dockerode';
import type { FleetNode } from '../tests/helpers/fleet.ts';

export const ROOT = join(import.meta.dirname, '..');
export const RESULTS_DIR = join(ROOT, 'bench', 'results');

export interface Machine {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  os: string;
  kernel: string;
  docker: string;
  dockerStorageDriver: string;
}

export interface GitState {
  commit: string;
  /** Other engineers share this tree, so say which files differed from the commit. */
  dirty: boolean;
  changedFiles: string[];
}

export interface RunRecord<Settings, Samples> {
  bench: string;
  date: string;
  command: string;
  machine: Machine;
  git: GitState;
  settings: Settings;
  samples: Samples;
}

export interface Stats {
  n: number;
  min: number;
  median: number;
  max: number;
}

export function stats(values: readonly number[]): Stats {
  if (values.length === 0) throw new Error('no samples');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { n: sorted.length, min: sorted[0]!, median, max: sorted.at(-1)! };
}

function output(command: string, args: string[]): string {
  const result = spawnSync(command, args, { cwd: ROOT });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr?.toString() ?? result.error}`);
  return result.stdout.toString();
}

export function machine(): Machine {
  const osRelease = readFileSync('/etc/os-release', 'utf8').match(/^PRETTY_NAME="?([^"\n]*)"?$/m);
  return {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Number((totalmem() / 2 ** 30).toFixed(1)),
    os: osRelease?.[1] ?? 'unknown',
    kernel: release(),
    docker: output('docker', ['version', '--format', '{{.Server.Version}}']).trim(),
    dockerStorageDriver: output('docker', ['info', '--format', '{{.Driver}}']).trim(),
  };
}

export function gitState(): GitState {
  // Each entry is "XY path": -z keeps paths verbatim, --no-renames one path per entry; no trimming, X is often a space.
  const changedFiles = output('git', ['status', '--porcelain', '-z', '--no-renames'])
    .split('\0')
    .filter(Boolean)
    .map((entry) => entry.slice(3));
  return { commit: output('git', ['rev-parse', 'HEAD']).trim(), dirty: changedFiles.length > 0, changedFiles };
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** The command line as the user typed it, so the report can say how to repeat the run. */
function commandLine(): string {
  const args = process.argv.slice(2).map(shellQuote).join(' ');
  const script = process.env.npm_lifecycle_event;
  if (script?.startsWith('bench:')) return `npm run ${script}${args ? ` -- ${args}` : ''}`;
  return `tsx ${relative(ROOT, process.argv[1] ?? '')}${args ? ` ${args}` : ''}`;
}

/** Taken when the run starts, so the commit and tree state are those the figures came from. */
export function startRecord(bench: string): Omit<RunRecord<never, never>, 'settings' | 'samples'> {
  return { bench, date: new Date().toISOString(), command: commandLine(), machine: machine(), git: gitState() };
}

/** Writes bench/results/<date>-<bench>.json; returns its path relative to the project. */
export function writeRecord<Settings, Samples>(record: RunRecord<Settings, Samples>): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${record.date.replace(/:/g, '').replace(/\.\d+Z$/, 'Z')}-${record.bench}.json`);
  writeFileSync(file, JSON.stringify(record, null, 2) + '\n');
  return relative(ROOT, file);
}

export function describeMachine(m: Machine): string {
  return `${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, ${m.os}, kernel ${m.kernel}, Docker ${m.docker} (${m.dockerStorageDriver})`;
}

const CLI = join(ROOT, 'bin', 'kolla-ts.mjs');
export const ALL_IN_ONE_INVENTORY = join(ROOT, 'inventory', 'all-in-one.yml');

/** A new config directory under /tmp for the all-in-one: its globals, new passwords, and the provider interface neutron bridges. */
export function allInOneConfigDir(prefix: string): string {
  const configDir = mkdtempSync(join(tmpdir(), prefix));
  copyFileSync(join(ROOT, 'inventory', 'globals.all-in-one.yml'), join(configDir, 'globals.yml'));
  spawnSync('bash', [join(ROOT, 'scripts', 'provider-interface.sh'), 'kolla-ext0'], { stdio: 'ignore' });
  spawnSync(process.execPath, [CLI, 'genpwd', '--configdir', configDir], { stdio: 'ignore' });
  return configDir;
}

/**
 * Destroys the all-in-one cloud and its data, leaving an empty host. The
 * cloud belongs to the config directory that deployed it
 * (/etc/kolla/.kolla-ts/owner.json), so it is destroyed with that one;
 * `configDir` when no cloud claims the host.
 */
export function destroyAllInOne(configDir: string): void {
  const ownerFile = '/etc/kolla/.kolla-ts/owner.json';
  const owner = existsSync(ownerFile) ? (JSON.parse(readFileSync(ownerFile, 'utf8')) as { configDir?: string }).configDir : undefined;
  const args = ['destroy', '-i', ALL_IN_ONE_INVENTORY, '--configdir', owner ?? configDir, '--yes-i-really-really-mean-it', '--include-data'];
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT });
  if (result.status !== 0) throw new Error(`destroy of the all-in-one failed (exit ${result.status}): ${result.stderr?.toString().slice(-3000) ?? result.error}`);
}

export interface CliRun {
  seconds: number;
  /** User plus system CPU of the CLI process. */
  cpuSeconds: number;
  rssMiB: number;
  stdout: string;
}

export interface CliOutcome extends CliRun {
  /** The exit status; null when a signal ended it. */
  status: number | null;
  stderr: string;
}

/**
 * Runs the CLI under GNU time (installed from Debian when missing): wall
 * seconds, CPU seconds, peak memory, exit status and what it printed,
 * whatever the exit status. Asynchronous, so a bench can probe while it runs.
 */
export async function runTimedCli(args: readonly string[]): Promise<CliOutcome> {
  if (spawnSync('sh', ['-c', 'command -v /usr/bin/time']).status !== 0) spawnSync('apt-get', ['install', '-y', '-qq', 'time'], { stdio: 'ignore' });
  const timeFile = join(mkdtempSync(join(tmpdir(), 'kolla-ts-bench-time-')), 'time');
  const started = process.hrtime.bigint();
  const child = spawn('/usr/bin/time', ['-f', '%U %S %M', '-o', timeFile, process.execPath, CLI, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CI: 'true' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const status = await new Promise<number | null>((resolve, reject) => child.on('error', reject).on('close', resolve));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  // After a non-zero exit, GNU time writes "Command exited with non-zero status N" before the format's line.
  const [user, system, rssKiB] = readFileSync(timeFile, 'utf8').trim().split('\n').at(-1)!.split(/\s+/).map(Number);
  return { seconds, cpuSeconds: user! + system!, rssMiB: rssKiB! / 1024, stdout, stderr, status };
}

/** runTimedCli for a run that must succeed: a non-zero exit throws, with the end of stderr. */
export async function timedCli(label: string, args: readonly string[]): Promise<CliRun> {
  const { status, stderr, ...run } = await runTimedCli(args);
  if (status !== 0) throw new Error(`${label} failed (exit ${status}): ${stderr.slice(-3000)}`);
  return run;
}

/** Removes the nodes and their engine volumes (as each container mounts them), by id. */
export async function removeFleetNodes(nodes: readonly FleetNode[]): Promise<void> {
  const docker = new Docker();
  for (const node of nodes) {
    const container = docker.getContainer(node.container);
    const { Mounts } = await container.inspect();
    await container.remove({ force: true });
    for (const mount of Mounts) if (mount.Type === 'volume' && mount.Name) await docker.getVolume(mount.Name).remove();
  }
  console.log(`removed nodes ${nodes.map((n) => n.name).join(', ')} and their volumes`);
}
