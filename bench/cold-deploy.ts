/**
 * Cold deploy benchmark (not a test): the all-in-one deployed onto an empty
 * host (after destroy --include-data) twice:
 *   1. serial: `deploy --services <one>` for each enabled service, in
 *      dependency order (requires and uses), each alone on the machine: its
 *      own start and migrations; the sum is the serial total;
 *   2. parallel: one `deploy` of everything, each step of a service run as
 *      soon as the required services it uses are done (a service's time in
 *      this run includes its waits between steps).
 * The longest chain through `requires`, each service weighted by its time
 * alone, is what the parallel deploy is held against: the target is within
 * that chain plus 15 %. Prints the figures, asserts nothing; every sample
 * goes to bench/results/<date>-cold-deploy.json.
 *
 * Like bench:deploy, it replaces whatever all-in-one cloud runs here and
 * leaves its own deployed (config dir under /tmp). Needs root, dockerd, the
 * registry and the images (scripts/all-in-one.sh or `kolla-ts build --push`):
 *   npm run bench:cold-deploy
 */
import { join } from 'node:path';
import { loadGlobals } from '../src/config/globals.ts';
import { loadRoleSet } from '../src/deploy/session.ts';
import { enabledRoles } from '../src/plan/desired.ts';
import { inDependencyOrder } from '../src/upgrade/rolling.ts';
import { summarise, type ColdDeployRecord, type ColdDeployRun, type ServiceDependencies } from './cold-deploy-record.ts';
import { ALL_IN_ONE_INVENTORY, allInOneConfigDir, describeMachine, destroyAllInOne, ROOT, runTimedCli, startRecord, writeRecord } from './common.ts';

const TARGET_MARGIN = 0.15;

/** The services globals.yml enables, in dependency order, each with the services it requires. */
function enabledServices(configDir: string): ServiceDependencies[] {
  const roles = loadRoleSet(ROOT);
  const { values: globals } = loadGlobals(join(configDir, 'globals.yml'), configDir, {
    services: roles.map((role) => ({ name: role.service, enabledByDefault: true })),
    containers: roles.flatMap((role) => role.containers.map((c) => ({ name: c.name, service: role.service }))),
  });
  // inDependencyOrder reads nothing but each service's role.
  const ordered = inDependencyOrder(enabledRoles(roles, globals).map((role) => ({ role, containers: [], dataContainers: [], steps: [], upgrade: { before: [], after: [] }, after: [] })));
  // What an enabled service requires is enabled too, or deploy refuses to start.
  return ordered.map(({ role }) => ({ name: role.service, requires: role.requires }));
}

/** The CLI's "[n/total] SERVICE: ok - ... (12.3s)" lines: each service's time from its first step to its end. */
function applySeconds(stderr: string, services: readonly string[]): Record<string, number> {
  const seconds: Record<string, number> = {};
  for (const [, service, value] of stderr.matchAll(/^\[\d+\/\d+\] ([\w-]+): ok\b.* \((\d+(?:\.\d+)?)s\)$/gm)) seconds[service!] = Number(value);
  const missing = services.filter((service) => seconds[service] === undefined);
  if (missing.length > 0) throw new Error(`no "ok ... (Ns)" line for ${missing.join(', ')} in the CLI's output:\n${stderr.slice(-3000)}`);
  return seconds;
}

/** A deploy that must succeed, timed, its line printed. */
async function deploy(label: string, args: string[], services: readonly string[]): Promise<ColdDeployRun & { applySeconds: Record<string, number> }> {
  const { status, stderr, seconds, rssMiB } = await runTimedCli(args);
  if (status !== 0) throw new Error(`${label} failed (exit ${status}): ${stderr.slice(-3000)}`);
  console.log(`${label.padEnd(44)} ${seconds.toFixed(2).padStart(8)} s   max RSS ${rssMiB.toFixed(0).padStart(4)} MiB`);
  return { seconds, rssMiB, applySeconds: applySeconds(stderr, services) };
}

const header = startRecord('cold-deploy');
console.log(`machine: ${describeMachine(header.machine)}`);
console.log(`commit ${header.git.commit}${header.git.dirty ? ' (tree dirty)' : ''}\n`);
const configDir = allInOneConfigDir('kolla-ts-bench-cold-deploy-');
const common = ['-i', ALL_IN_ONE_INVENTORY, '--configdir', configDir];
const services = enabledServices(configDir);
const names = services.map((s) => s.name);

destroyAllInOne(configDir);
const serial: ColdDeployRecord['samples']['serial'] = [];
for (const { name } of services) {
  const run = await deploy(`deploy --services ${name} (alone)`, ['deploy', ...common, '--services', name], [name]);
  serial.push({ service: name, seconds: run.seconds, rssMiB: run.rssMiB, applySeconds: run.applySeconds[name]! });
}
destroyAllInOne(configDir);
const parallel = await deploy('deploy, every service (parallel)', ['deploy', ...common], names);

const record: ColdDeployRecord = { ...header, settings: { services, targetMargin: TARGET_MARGIN }, samples: { serial, parallel } };
const file = writeRecord(record);
const summary = summarise(record);
const seconds = (value: number): string => `${value.toFixed(1).padStart(7)} s`;
console.log(`\n${'service'.padEnd(16)} ${'alone, CLI'.padStart(12)} ${'alone, service'.padStart(15)} ${'in parallel, service'.padStart(21)}`);
for (const run of serial) console.log(`${run.service.padEnd(16)} ${seconds(run.seconds).padStart(12)} ${seconds(run.applySeconds).padStart(15)} ${seconds(parallel.applySeconds[run.service]!).padStart(21)}`);
console.log(`
serial total (each service alone, summed)    ${seconds(summary.serialTotal)}
parallel (one deploy of everything)          ${seconds(summary.parallel)}
longest chain through requires               ${seconds(summary.chain.seconds)}   ${summary.chain.services.join(' → ')}
parallel / chain                             ${summary.ratio.toFixed(2).padStart(7)}     target ≤ ${(1 + TARGET_MARGIN).toFixed(2)}: ${summary.targetMet ? 'met' : 'not met'}

raw figures: ${file}; \`npm run bench:report\` writes bench/RESULTS.md from bench/results/`);
