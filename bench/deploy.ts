/**
 * Deploy benchmark (not a test). In one run:
 *   1. cold deploy of the all-in-one (after destroy --include-data);
 *   2. --rounds times (default 5): deploy with nothing changed;
 *   3. --rounds times: reconfigure after one override (config/glance.conf, a
 *      new value each round), split into the CLI's work before the stop, the
 *      old glance_api's stop, glance_api's own start (container start to the
 *      first answer of its health URL, probed at 10 Hz), the wait for
 *      Docker's health status, and the CLI's work after it (service-start.ts);
 *   4. peak memory (max RSS) of the CLI in each run.
 * Every sample goes to bench/results/<date>-deploy.json; `npm run bench:report`
 * turns the results into bench/RESULTS.md.
 *
 * It replaces whatever all-in-one cloud runs here (its own config dir under
 * /tmp, the same containers and volumes). Needs root, dockerd, the registry
 * and the images (scripts/all-in-one.sh or `kolla-ts build --push`):
 *   npm run bench:deploy [-- --rounds N]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ALL_IN_ONE_INVENTORY, allInOneConfigDir, describeMachine, destroyAllInOne, startRecord, timedCli, writeRecord, type RunRecord } from './common.ts';
import { timeRestart, type RestartTimeline } from './service-start.ts';

export interface CliRun {
  seconds: number;
  rssMiB: number;
}

export interface DeploySettings {
  rounds: number;
  restarted: string;
}

export interface DeploySamples {
  cold: CliRun;
  noop: CliRun[];
  reconfigure: (CliRun & { timeline: RestartTimeline })[];
}

export type DeployRecord = RunRecord<DeploySettings, DeploySamples>;

const { values: flags } = parseArgs({ options: { rounds: { type: 'string', default: '5' } } });
const rounds = Number(flags.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds ${flags.rounds}: expected a positive integer`);

const RESTARTED = 'glance_api';

/** The CLI timed, its line printed; the record keeps wall seconds and peak memory. */
async function measure(label: string, args: string[]): Promise<CliRun> {
  const { seconds, rssMiB } = await timedCli(label, args);
  console.log(`${label.padEnd(52)} ${seconds.toFixed(2).padStart(8)} s   max RSS ${rssMiB.toFixed(0).padStart(4)} MiB`);
  return { seconds, rssMiB };
}

const header = startRecord('deploy');
console.log(`machine: ${describeMachine(header.machine)}`);
console.log(`commit ${header.git.commit}${header.git.dirty ? ' (tree dirty)' : ''}; ${rounds} rounds\n`);
const configDir = allInOneConfigDir('kolla-ts-bench-deploy-');
const common = ['-i', ALL_IN_ONE_INVENTORY, '--configdir', configDir];
destroyAllInOne(configDir);

const cold = await measure('cold deploy (all-in-one, empty host)', ['deploy', ...common]);
const noop: CliRun[] = [];
for (let round = 1; round <= rounds; round++) noop.push(await measure(`deploy, nothing changed (${round}/${rounds})`, ['deploy', ...common]));

mkdirSync(join(configDir, 'config'), { recursive: true });
const reconfigure: DeploySamples['reconfigure'] = [];
for (let round = 1; round <= rounds; round++) {
  // oslo.config ignores the unknown key; it only makes each round's file differ.
  writeFileSync(join(configDir, 'config', 'glance.conf'), `[DEFAULT]\ndebug = True\nbench_round = ${round}\n`);
  const { result, timeline } = await timeRestart(RESTARTED, () => measure(`reconfigure after one override (${round}/${rounds})`, ['reconfigure', ...common]));
  reconfigure.push({ ...result, timeline });
}

const record: DeployRecord = { ...header, settings: { rounds, restarted: RESTARTED }, samples: { cold, noop, reconfigure } };
console.log(`\nraw figures: ${writeRecord(record)}; \`npm run bench:report\` writes bench/RESULTS.md from bench/results/`);
