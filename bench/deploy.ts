/**
 * Deploy benchmark (not a test): prints, in one run,
 *   1. cold deploy of the all-in-one (after destroy --include-data);
 *   2. deploy with nothing changed (target: under 3 s);
 *   3. reconfigure after one override, and the part of it beyond the
 *      affected container's own start-to-healthy time;
 *   4. peak memory (max RSS) of the CLI in each run.
 * It replaces whatever all-in-one cloud runs here. Needs root, dockerd, the
 * registry and the images (scripts/all-in-one.sh or `kolla-ts build --push`).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'bin', 'kolla-ts.mjs');
const configDir = mkdtempSync(join(tmpdir(), 'kolla-ts-bench-deploy-'));
const common = ['-i', join(ROOT, 'inventory', 'all-in-one.yml'), '--configdir', configDir];

if (spawnSync('sh', ['-c', 'command -v /usr/bin/time']).status !== 0) {
  spawnSync('apt-get', ['install', '-y', '-qq', 'time'], { stdio: 'ignore' });
}

/** Runs the CLI under GNU time; returns wall seconds and max RSS in MiB. */
function measure(label: string, args: string[]): { seconds: number; rssMiB: number } {
  const rssFile = join(configDir, 'rss');
  const started = process.hrtime.bigint();
  const result = spawnSync('/usr/bin/time', ['-f', '%M', '-o', rssFile, process.execPath, CLI, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, CI: 'true' },
    maxBuffer: 64 * 1024 * 1024,
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.status !== 0) throw new Error(`${label} failed (exit ${result.status}): ${result.stderr.toString().slice(-3000)}`);
  const rssMiB = Number(spawnSync('cat', [rssFile]).stdout.toString().trim()) / 1024;
  console.log(`${label.padEnd(52)} ${seconds.toFixed(2).padStart(8)} s   max RSS ${rssMiB.toFixed(0).padStart(4)} MiB`);
  return { seconds, rssMiB };
}

/** Seconds from a container's start to its first passing health check. */
async function startToHealthy(name: string): Promise<number> {
  const info = await new Docker().getContainer(name).inspect();
  const started = Date.parse(info.State.StartedAt);
  const healthy = info.State.Health?.Log?.find((entry) => entry.ExitCode === 0 && Date.parse(entry.Start) >= started);
  return healthy ? (Date.parse(healthy.End) - started) / 1000 : Number.NaN;
}

console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${new Date().toISOString()}\n`);
copyFileSync(join(ROOT, 'inventory', 'globals.all-in-one.yml'), join(configDir, 'globals.yml'));
spawnSync('bash', [join(ROOT, 'scripts', 'provider-interface.sh'), 'kolla-ext0'], { stdio: 'ignore' });
spawnSync(process.execPath, [CLI, 'genpwd', '--configdir', configDir], { stdio: 'ignore' });
spawnSync(process.execPath, [CLI, 'destroy', ...common, '--yes-i-really-really-mean-it', '--include-data'], { stdio: 'ignore' });

const cold = measure('cold deploy (all-in-one, empty host)', ['deploy', ...common]);
const noop = measure('deploy, nothing changed', ['deploy', ...common]);
mkdirSync(join(configDir, 'config'), { recursive: true });
writeFileSync(join(configDir, 'config', 'glance.conf'), '[DEFAULT]\ndebug = True\n');
const reconfigure = measure('reconfigure after one override (glance.conf)', ['reconfigure', ...common]);
const own = await startToHealthy('glance_api');
console.log('\nsummary');
console.log(`  cold deploy:      ${cold.seconds.toFixed(1)} s`);
console.log(`  nothing changed:  ${noop.seconds.toFixed(2)} s (target < 3 s)`);
console.log(`  reconfigure:      ${reconfigure.seconds.toFixed(1)} s, of which glance_api's own start-to-healthy ${own.toFixed(1)} s: ${(reconfigure.seconds - own).toFixed(1)} s beyond it`);
console.log(`  CLI peak memory:  ${Math.max(cold.rssMiB, noop.rssMiB, reconfigure.rssMiB).toFixed(0)} MiB`);
