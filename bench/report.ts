/**
 * Writes bench/RESULTS.md from bench/RESULTS.template.md (the hand-written
 * parts) and the runs in bench/results/*.json, so that no figure is copied
 * by hand. The latest run of each bench is shown in full, every run is listed.
 *   npm run bench:report [-- --results-dir DIR --out FILE]
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import type { BuildRecord, KollaRun } from './build.ts';
import { summarise, type ColdDeployRecord } from './cold-deploy-record.ts';
import { describeMachine, RESULTS_DIR, ROOT, stats, type RunRecord } from './common.ts';
import type { DeployRecord } from './deploy.ts';
import type { CliRun, FanoutRecord, FanoutSize, Logins } from './fanout.ts';
import type { RestartTimeline } from './service-start.ts';
import { outageSplit, TABLE_HEADER, tableRows, type UpgradeRecord } from './upgrade-record.ts';

const { values: flags } = parseArgs({
  options: {
    'results-dir': { type: 'string', default: RESULTS_DIR },
    out: { type: 'string', default: join(ROOT, 'bench', 'RESULTS.md') },
  },
});
const resultsDir = flags['results-dir'];
const out = flags.out;
const TEMPLATE = join(ROOT, 'bench', 'RESULTS.template.md');
const PLACEHOLDER = '<!-- figures -->';

type AnyRecord = RunRecord<unknown, unknown> & { file: string };

function loadRuns(): AnyRecord[] {
  let names: string[];
  try {
    names = readdirSync(resultsDir).filter((name) => name.endsWith('.json'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return names
    .map((name) => ({ ...(JSON.parse(readFileSync(join(resultsDir, name), 'utf8')) as RunRecord<unknown, unknown>), file: join(resultsDir, name) }))
    .sort((a, b) => a.date.localeCompare(b.date));
}

const s = (seconds: number): string => (Math.abs(seconds) < 10 ? seconds.toFixed(2) : seconds.toFixed(1));
const triple = (values: number[]): string => {
  const { min, median, max } = stats(values);
  return values.length === 1 ? s(min) : `${s(min)} / ${s(median)} / ${s(max)}`;
};
const percent = (part: number, whole: number): string => `${((part / whole) * 100).toFixed(0)} %`;
/** Links are relative to the written file, so they work wherever --out puts it. */
const link = (file: string): string => `[\`${relative(ROOT, file)}\`](${relative(join(out, '..'), file)})`;

function provenance(run: AnyRecord): string {
  const dirty = run.git.dirty ? `, tree dirty (${run.git.changedFiles.length} changed files, listed in the JSON)` : '';
  return [
    `From ${link(run.file)}: \`${run.command}\`, ${run.date.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}, commit \`${run.git.commit.slice(0, 12)}\`${dirty}.`,
    `Machine: ${describeMachine(run.machine)}.`,
  ].join('\n');
}

/** One list when the rounds agree, otherwise each round's. */
function builtPerRound(runs: KollaRun[]): string {
  const lists = runs.map((run) => run.built.join(', ') || 'none');
  return new Set(lists).size === 1 ? `${lists[0]} (every round)` : lists.map((list, i) => `round ${i + 1}: ${list}`).join('; ');
}

function buildSection(run: AnyRecord): string {
  const { settings, samples } = run as unknown as BuildRecord;
  const { threads1, threads2, dockerBuild } = samples.cold;
  const gain = (from: number, to: number): string => (to <= from ? `${s(from - to)} s less (−${percent(from - to, from)})` : `${s(to - from)} s more (+${percent(to - from, from)})`);
  return `## Build

${provenance(run)}
${settings.images.length} images (${settings.selection ? `selected by \`${settings.selection}\`` : 'every image'}), leaf \`${settings.leaf}\`, ${settings.rounds} rounds.

### Cold: no layer cache, none of the images present; one run each, in this order

| builder | seconds | images built |
| --- | ---: | ---: |
| kolla-ts \`--threads 2\` | ${s(threads2.seconds)} | ${threads2.built.length} |
| kolla-ts \`--threads 1\` | ${s(threads1.seconds)} | ${threads1.built.length} |
| plain \`docker build\`, one image after another in dependency order | ${s(dockerBuild)} | ${settings.images.length} |

- Parallelism (\`--threads 1\` → \`--threads 2\`): ${gain(threads1.seconds, threads2.seconds)}.
- The builder itself (plain \`docker build\` → kolla-ts \`--threads 1\`): ${gain(dockerBuild, threads1.seconds)}.

### Rebuilds, ${settings.rounds} rounds: seconds, min / median / max

| what | kolla-ts \`--threads 2\` | plain \`docker build\` (layer cache) |
| --- | ---: | ---: |
| nothing changed | ${triple(samples.noop.kollaTs.map((r) => r.seconds))} | ${triple(samples.noop.dockerBuild)} |
| \`${settings.leaf}\`'s Dockerfile changed | ${triple(samples.leaf.kollaTs.map((r) => r.seconds))} | ${triple(samples.leaf.dockerBuild)} |

- kolla-ts built, nothing changed: ${builtPerRound(samples.noop.kollaTs)}.
- kolla-ts built, leaf changed: ${builtPerRound(samples.leaf.kollaTs)}.
`;
}

type Instant = Exclude<keyof RestartTimeline, 'url' | 'probes'>;

function deploySection(run: AnyRecord): string {
  const { settings, samples } = run as unknown as DeployRecord;
  const timelines = samples.reconfigure.map((r) => r.timeline);
  const phase = (from: Instant, to: Instant): number[] => timelines.map((t) => (t[to] - t[from]) / 1000);
  const before = phase('commandStart', 'stopRequested');
  const after = phase('firstAnswer', 'commandEnd');
  const all = [samples.cold, ...samples.noop, ...samples.reconfigure];
  const urls = [...new Set(timelines.map((t) => t.url))].join(', ');
  return `## Deploy

${provenance(run)}
${settings.rounds} rounds of the quick figures.

| what | runs | seconds (min / median / max) |
| --- | ---: | ---: |
| cold deploy, empty host (after \`destroy --include-data\`) | 1 | ${s(samples.cold.seconds)} |
| deploy with nothing changed | ${samples.noop.length} | ${triple(samples.noop.map((r) => r.seconds))} |
| reconfigure after one override (\`config/glance.conf\`) | ${samples.reconfigure.length} | ${triple(samples.reconfigure.map((r) => r.seconds))} |

Peak memory of the CLI (max RSS over all ${all.length} runs): ${Math.max(...all.map((r) => r.rssMiB)).toFixed(0)} MiB.

### Where the reconfigure's time goes (${settings.restarted}, health URL ${urls})

Each phase's min / median / max over the rounds; the medians need not add up to the median total.

| phase | seconds |
| --- | ---: |
| CLI before the stop: start → Docker's \`kill\` (render, plan, write, restart call) | ${triple(before)} |
| the old ${settings.restarted} stopping: \`kill\` → \`die\` | ${triple(phase('stopRequested', 'stopped'))} |
| Docker starting the new process: \`die\` → \`State.StartedAt\` | ${triple(phase('stopped', 'started'))} |
| **${settings.restarted}'s own start**: \`StartedAt\` → first answer of its health URL (probed at 10 Hz) | ${triple(phase('started', 'firstAnswer'))} |
| CLI after the first answer: → exit (noticing health, exit) | ${triple(after)} |
| **CLI overhead** (before the stop + after the first answer) | ${triple(before.map((b, i) => b + after[i]!))} |
| for comparison, Docker's health schedule: first answer → status \`healthy\` (what the CLI waited for before it ran the test itself) | ${triple(phase('firstAnswer', 'healthy'))} |
`;
}

function coldDeploySection(run: AnyRecord, history: readonly AnyRecord[]): string {
  const record = run as unknown as ColdDeployRecord;
  const { settings, samples } = record;
  const { serialTotal, parallel, chain, ratio, targetMet } = summarise(record);
  const onChain = new Set(chain.services);
  const requires = new Map(settings.services.map((service) => [service.name, service.requires]));
  const rows = samples.serial.map(
    (r) =>
      `| ${onChain.has(r.service) ? `**${r.service}**` : r.service} | ${requires.get(r.service)!.join(', ') || '—'} | ${s(r.seconds)} | ${s(r.applySeconds)} | ${s(samples.parallel.applySeconds[r.service]!)} |`,
  );
  const cliOwn = samples.serial.map((r) => r.seconds - r.applySeconds);
  const bound = (1 + settings.targetMargin) * chain.seconds;
  return `## Cold deploy

${provenance(run)}
${settings.services.length} services, each deploy run once, serial first; a destroy \`--include-data\` before each of the two.

Per service: seconds alone (the serial deploy of it: the CLI's wall time, and the service's own time as the CLI reports it, from its first step to its end), and its own time within the parallel deploy. **Bold**: on the longest chain.

| service | requires | alone, CLI | alone, the service | in the parallel deploy, the service |
| --- | --- | ---: | ---: | ---: |
${rows.join('\n')}

| what | seconds |
| --- | ---: |
| serial: each service alone, summed | ${s(serialTotal)} |
| parallel: one \`deploy\` of everything | ${s(parallel)} |
| longest chain through \`requires\`, each service by its CLI time alone: ${chain.services.join(' → ')} | ${s(chain.seconds)} |

Parallel / chain: **${ratio.toFixed(2)}**. Target, parallel within the chain + ${percent(settings.targetMargin, 1)} (${s(bound)} s): **${targetMet ? 'met' : 'not met'}**, ${targetMet ? `${s(bound - parallel)} s to spare` : `${s(parallel - bound)} s over`}.

The CLI's own time in each serial run (wall time less the service's): ${triple(cliOwn)} s (min / median / max). The chain counts it once for each of its ${chain.services.length} services, the parallel deploy once.

Every run on record, each against its own chain (this machine's speed varies from run to run):

| run (UTC) | commit | serial total | parallel | chain | parallel / chain |
| --- | --- | ---: | ---: | ---: | ---: |
${history.map(coldDeployHistoryRow).join('\n')}
`;
}

function coldDeployHistoryRow(run: AnyRecord): string {
  const { serialTotal, parallel, chain, ratio } = summarise(run as unknown as ColdDeployRecord);
  return `| ${run.date.slice(0, 16).replace('T', ' ')} | \`${run.git.commit.slice(0, 12)}\` | ${s(serialTotal)} | ${s(parallel)} | ${s(chain.seconds)} | ${ratio.toFixed(2)} |`;
}

const medianOf = (values: number[]): number => stats(values).median;
const secondsOf = (runs: { seconds: number }[]): number[] => runs.map((r) => r.seconds);
/** One figure when the values agree, else their range. */
const range = (values: number[]): string => (Math.min(...values) === Math.max(...values) ? `${values[0]}` : `${Math.min(...values)}–${Math.max(...values)}`);
const logins = (runs: { logins: Logins }[]): string => range(runs.flatMap((r) => Object.values(r.logins)));
const ms = (seconds: number): string => `${(seconds * 1000).toFixed(0)} ms`;
/** The nodes' CPU seconds of each run, or undefined when a run did not measure them (records before it did). */
const nodesCpuOf = (runs: readonly CliRun[]): number[] | undefined => (runs.every((r) => r.nodesCpuSeconds !== undefined) ? runs.map((r) => r.nodesCpuSeconds!) : undefined);

function fanoutSection(run: AnyRecord): string {
  const record = run as unknown as FanoutRecord;
  const { settings, samples } = record;
  const cli = samples.sizes.map((z) => {
    const nodesCpu = nodesCpuOf(z.plan);
    return `| ${z.hosts} | ${s(z.cold.seconds)} (${z.cold.changedHosts} new) | ${triple(secondsOf(z.plan))} | ${triple(secondsOf(z.noopDeploy))} | ${s(medianOf(z.plan.map((r) => r.cpuSeconds)))} | ${nodesCpu ? s(medianOf(nodesCpu)) : '—'} | ${logins([z.cold, ...z.plan, ...z.noopDeploy])} |`;
  });
  const calls = samples.sizes.map(
    (z) =>
      `| ${z.hosts} | ${range(z.ownTransport.flatMap((r) => Object.values(r.calls)))} | ${triple(secondsOf(z.ownTransport))} | ${logins(z.ownTransport)} | ${triple(secondsOf(z.dockerodeSsh))} | ${logins(z.dockerodeSsh)} |`,
  );
  return `## Fanout

${provenance(run)}
Fleet sizes: ${settings.sizes.join(', ')} hosts (docker-in-docker nodes on this machine) running ${settings.services.join(', ')} from \`${settings.image}\`; \`--forks ${settings.forks}\`; rounds: ${settings.rounds}; nodes ${settings.nodesKept ? 'kept' : 'removed'} after the run.

### The CLI: seconds, min / median / max over the rounds

SSH logins per host: counted by each host's sshd, over every CLI run at that size. The cold deploy runs once per size and starts memcached on the hosts new at that size. Nodes' CPU: what all the node containers (sshd, engine, memcached) spent during the run, from their cgroups (— : not measured by that run).

| hosts | \`deploy\`, cold (once) | \`plan\`, nothing to do | \`deploy\`, nothing to do | CPU seconds of \`plan\` (median) | nodes' CPU seconds during \`plan\` (median) | SSH logins per host |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${cli.join('\n')}

### One observation's Docker API calls from one process, ${settings.forks} hosts at a time: seconds, min / median / max

| hosts | API calls per host | our transport | SSH logins per host | dockerode's ssh transport | SSH logins per host |
| ---: | ---: | ---: | ---: | ---: | ---: |
${calls.join('\n')}

${fanoutEstimate(record)}`;
}

/** The issue's target: a plan with nothing to do, over this many hosts, within that many seconds. */
const ESTIMATE_HOSTS = 500;
const TARGET_SECONDS = 30;

/** Least-squares line y ≈ intercept + slope·x. */
function linearFit(points: readonly (readonly [number, number])[]): { intercept: number; slope: number } {
  const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
  const mx = mean(points.map(([x]) => x));
  const my = mean(points.map(([, y]) => y));
  const slope = points.reduce((sum, [x, y]) => sum + (x - mx) * (y - my), 0) / points.reduce((sum, [x]) => sum + (x - mx) ** 2, 0);
  return { intercept: my - slope * mx, slope };
}

/** The estimate for ESTIMATE_HOSTS hosts from the measured sizes, and the per-host costs that say what limits it. */
function fanoutEstimate(record: FanoutRecord): string {
  const { settings, samples } = record;
  const title = `### Estimate for ${ESTIMATE_HOSTS} hosts (target: \`plan\` with nothing to do under ${TARGET_SECONDS} s)`;
  if (samples.sizes.length < 2) return `${title}\n\nNeeds two fleet sizes or more (\`--nodes\`).\n`;
  const planTimes = samples.sizes.map((z) => [z.hosts, medianOf(secondsOf(z.plan))] as const);
  const fit = linearFit(planTimes);
  const byFit = fit.intercept + fit.slope * ESTIMATE_HOSTS;
  const [n1, t1] = planTimes.at(-2)!;
  const [n2, t2] = planTimes.at(-1)!;
  const lastSlope = (t2 - t1) / (n2 - n1);
  const byLast = t2 + lastSlope * (ESTIMATE_HOSTS - n2);
  const straight = Math.max(byFit, byLast);
  const cpu = linearFit(samples.sizes.map((z) => [z.hosts, medianOf(z.plan.map((r) => r.cpuSeconds))] as const));
  const smallest = samples.sizes[0]!;
  const oneHost = medianOf(secondsOf(smallest.ownTransport));
  const waves = Math.ceil(ESTIMATE_HOSTS / settings.forks);
  const largest = samples.sizes.at(-1)!;
  const meanTotal = (runs: { logins: Logins }[]): number => runs.reduce((sum, r) => sum + Object.values(r.logins).reduce((a, b) => a + b, 0), 0) / runs.length;
  const extraConnections = meanTotal(largest.dockerodeSsh) - meanTotal(largest.ownTransport);
  const perConnection = (medianOf(secondsOf(largest.dockerodeSsh)) - medianOf(secondsOf(largest.ownTransport))) / extraConnections;
  const model = fleetModel(record, { fixedStart: fit.intercept, cliCpuPerHost: cpu.slope, wallSlope: lastSlope, slopeSizes: [n1, n2] });
  const verdict = (seconds: number): string => (seconds <= TARGET_SECONDS ? 'within' : 'over');
  const lines = `**${s(straight)} s** for ${ESTIMATE_HOSTS} hosts, ${verdict(straight)} the target: the larger of two straight-line extrapolations of the median \`plan\` times above:

- least-squares fit over all ${samples.sizes.length} sizes: ${s(fit.intercept)} s + ${ms(fit.slope)} × hosts → ${s(byFit)} s;
- the two largest sizes only (${n1} → ${n2} hosts; past ${settings.forks} hosts, hosts queue for a fork): ${ms(lastSlope)} per host → ${s(byLast)} s.
`;
  const estimates = model
    ? `**${s(model.seconds)} s** for a fleet of ${ESTIMATE_HOSTS} hosts, each with its own CPU, ${verdict(model.seconds)} the target: the model from the measured parts below. This is the figure compared with the target, which is about a real fleet: the straight lines through this machine's times (${s(straight)} s) charge every simulated host's sshd and engine to the same ${record.machine.cores} cores as the CLI, work that ${ESTIMATE_HOSTS} real hosts do on their own machines.

#### Straight lines through the \`plan\` times on this machine

${lines}
${model.text}`
    : `${lines}
This run did not measure the nodes' CPU, so there is no model of a fleet whose hosts have their own CPU (runs since bench/fanout.ts records \`nodesCpuSeconds\` have one); the straight lines are compared with the target.
`;
  return `${title}

${estimates}
What limits it, each extrapolated to ${ESTIMATE_HOSTS} hosts:

- **Forks.** One host's connection and observation calls take ${ms(oneHost)} (our transport, ${smallest.hosts} host${smallest.hosts > 1 ? 's' : ''} at a time); ${ESTIMATE_HOSTS} hosts at \`--forks ${settings.forks}\` are ${waves} waves: ${s(waves * oneHost)} s of round trips even if nothing else took time (a \`plan\` makes more round trips per host than these: SFTP reads of the owner file, config and state files).
- **CPU of the deploy host.** The CLI's CPU time grows by ${ms(cpu.slope)} per host (fit over the sizes: handshakes, Docker API answers, rendering and diffing each host's config): ${s(cpu.slope * ESTIMATE_HOSTS)} s for ${ESTIMATE_HOSTS} hosts, mostly on Node's one JavaScript thread, so a floor on the wall time whatever the forks.
- **SSH handshakes.** Each connection dockerode's transport opens beyond ours cost ${ms(perConnection)} of wall time at ${largest.hosts} hosts, ${settings.forks} at a time (handshake, login, and \`docker system dial-stdio\` started on the host). A \`plan\` opens one per host: ${s(perConnection * ESTIMATE_HOSTS)} s for ${ESTIMATE_HOSTS} hosts at that cost, an upper bound (ours starts no process on the host). One connection per API call, as dockerode's transport makes, would multiply it by the calls per host.
`;
}

/** The nodes' CPU seconds of each \`plan\` at one size, less what they spend idle over as long; undefined for records before it was measured. */
function nodesPlanCpu(size: FanoutSize): number[] | undefined {
  const measured = nodesCpuOf(size.plan);
  if (!measured) return undefined;
  const idlePerSecond = size.idle ? size.idle.nodesCpuSeconds / size.idle.seconds : 0;
  return measured.map((cpu, i) => cpu - idlePerSecond * size.plan[i]!.seconds);
}

/**
 * ESTIMATE_HOSTS hosts on machines of their own, from the parts the bench
 * measures: the deploy host's CPU per host, the hosts' CPU per host, and the
 * fixed start. A host's visit is its two CPU shares one after the other
 * (round trips cost next to nothing on this machine's bridge); forks visits
 * run at once, the CLI's share of all of them on its one JavaScript thread.
 */
function fleetModel(
  { settings, samples, machine }: FanoutRecord,
  measured: { fixedStart: number; cliCpuPerHost: number; wallSlope: number; slopeSizes: readonly [number, number] },
): { seconds: number; text: string } | undefined {
  const nodesCpu = samples.sizes.map((z) => [z.hosts, nodesPlanCpu(z)] as const);
  if (nodesCpu.some(([, runs]) => !runs)) return undefined;
  const nodesCpuPerHost = linearFit(nodesCpu.map(([hosts, runs]) => [hosts, medianOf(runs!)] as const)).slope;
  const { fixedStart, cliCpuPerHost, wallSlope, slopeSizes } = measured;
  const visit = cliCpuPerHost + nodesCpuPerHost;
  const waves = Math.ceil(ESTIMATE_HOSTS / settings.forks);
  const deployHostCpu = cliCpuPerHost * ESTIMATE_HOSTS;
  const seconds = fixedStart + Math.max(deployHostCpu, waves * visit);
  const idle = samples.sizes.filter((z) => z.idle).map((z) => `${s(z.idle!.nodesCpuSeconds / z.idle!.seconds)} at ${z.hosts}`);
  const text = `#### A fleet of ${ESTIMATE_HOSTS} hosts, each with its own CPU, from the measured parts

Per host, least-squares slopes over the sizes of the median \`plan\` figures:

| part | per host | measured as |
| --- | ---: | --- |
| the deploy host's CPU (the CLI) | ${ms(cliCpuPerHost)} | the CLI's CPU seconds (GNU time) |
| the host's own CPU | ${ms(nodesCpuPerHost)} | the node containers' CPU seconds during the run (cgroup cpuacct: sshd, engine, memcached), less what they spend idle over as long (${idle.length ? `CPU seconds per second: ${idle.join(', ')} hosts` : 'not measured by this run: nothing taken off'}) |
| one host's visit at \`--forks ${settings.forks}\` | ${ms(visit)} | the two added: each host's work waits on its own CPU and its share of the CLI's, the round trips between them next to nothing on this machine's bridge |

On this machine every simulated host runs on the CLI's ${machine.cores} cores, so once they are saturated (past ${settings.forks} hosts) the wall time grows by about (CLI CPU + nodes' CPU) per host / ${machine.cores} cores = (${ms(cliCpuPerHost)} + ${ms(nodesCpuPerHost)}) / ${machine.cores} = ${ms(visit / machine.cores)} per host; measured between ${slopeSizes[0]} and ${slopeSizes[1]} hosts: ${ms(wallSlope)} per host.

${ESTIMATE_HOSTS} hosts with their own CPU: fixed start + max(the CLI's CPU for ${ESTIMATE_HOSTS} hosts on the deploy host, ${waves} waves of ${settings.forks} × one host's visit) = ${s(fixedStart)} s + max(${ESTIMATE_HOSTS} × ${ms(cliCpuPerHost)} = ${s(deployHostCpu)} s, ${waves} × ${ms(visit)} = ${s(waves * visit)} s) = **${s(seconds)} s**, bound by ${deployHostCpu >= waves * visit ? "the deploy host's CPU" : 'the forks'}. The fixed start is the least-squares fit's intercept (the \`plan\` time at no host). Not in it: the network's round-trip time, which on a real network adds each host's round trips in a row (SSH login, then the visit's and the observation's) to every wave.
`;
  return { seconds, text };
}

function upgradeSection(run: AnyRecord): string {
  const record = run as unknown as UpgradeRecord;
  const { settings, samples } = record;
  const rows = tableRows(record).map((row) => `| ${row.map((cell) => cell.replaceAll('|', '\\|')).join(' | ')} |`);
  // The figures right, the words left.
  const align = TABLE_HEADER.map((_, i) => ([1, 2, 3].includes(i) ? '---:' : '---'));
  const watched = [...new Set(samples.scenarios.map((sc) => sc.watched))].map((w) => `\`${w}\``).join('; ');
  const ownTries = Object.entries(samples.ownStart).map(([service, tries]) => `- ${service}: ${tries.map((t) => `${s(t.seconds)} s (${s(t.startedSeconds)} s)`).join(', ')}`);
  const ownSplits = Object.entries(samples.ownStart).map(([service, tries]) => {
    const seconds = tries.map((t) => t.seconds);
    const started = tries.map((t) => t.startedSeconds);
    return `| ${service}: own start (restart), median of ${tries.length} | ${s(medianOf(seconds))} | ${s(medianOf(started))} | ${s(medianOf(seconds.map((v, i) => v - started[i]!)))} |`;
  });
  const scenarioSplits = samples.scenarios.flatMap((sc) => {
    const split = outageSplit(sc);
    return split ? [`| ${sc.name} | ${s(split.outage)} | ${s(split.beforeStart)} | ${s(split.afterStart)} |`] : [];
  });
  const failures = samples.scenarios
    .filter((sc) => sc.status !== 0)
    .map((sc) => `**${sc.name}** exited ${sc.status}; the end of its stderr:\n\n\`\`\`\n${(sc.error ?? '').trim().split('\n').slice(-6).join('\n')}\n\`\`\`\n`);
  return `## Upgrade

${provenance(run)}
The all-in-one's config directory \`${settings.configDir}\`; every change goes from \`${settings.baseTag}\` to \`${settings.newTag}\` (the same image with one \`LABEL\` more) or back; one run of each scenario, in this order; ${settings.fleet ? 'with' : 'without'} the fleet part (\`BENCH_UPGRADE_FLEET=1\`).
Unavailable: from a failed probe to the next success, by the time each probe was sent. Probes: ${watched}. Target: the longest unavailable stretch at most the service's own start (median) + ${settings.targetMarginSeconds} s.

${[`| ${TABLE_HEADER.join(' | ')} |`, `| ${align.join(' | ')} |`, ...rows].join('\n')}

Own start, each try: restart requested → first answer (→ the new process's \`State.StartedAt\`), probed every ${settings.ownStartIntervalMs} ms:

${ownTries.join('\n')}

### Where the unavailable time goes

Split at the new process's \`State.StartedAt\`: before it, the old process stopping and the swap; after it, the service starting, up to its first answer. An own start counts from the restart's request, not from a failed probe; its row holds each column's median, which need not add up.

| what | unavailable s | before the new process's start | after it, to the first answer |
| --- | ---: | ---: | ---: |
${[...ownSplits, ...scenarioSplits].join('\n')}
${failures.length ? `\n${failures.join('\n')}` : ''}`;
}

/** Each bench's section: its latest run, and every run of it on record, oldest first. */
const sections: Record<string, (run: AnyRecord, history: readonly AnyRecord[]) => string> = {
  build: buildSection,
  deploy: deploySection,
  'cold-deploy': coldDeploySection,
  fanout: fanoutSection,
  upgrade: upgradeSection,
};
const runs = loadRuns();
for (const run of runs) if (!sections[run.bench]) throw new Error(`${run.file}: unknown bench "${run.bench}"`);

const figures = Object.entries(sections).map(([bench, section]) => {
  const history = runs.filter((run) => run.bench === bench);
  const latest = history.at(-1);
  return latest ? section(latest, history) : `## ${bench[0]!.toUpperCase()}${bench.slice(1)}\n\nNo run on record yet: \`npm run bench:${bench}\`.\n`;
});
const list = runs.length
  ? runs.map((run) => `- ${run.bench}: ${link(run.file)}, commit \`${run.git.commit.slice(0, 12)}\`${run.git.dirty ? ' (dirty)' : ''}, \`${run.command}\``).join('\n')
  : 'None yet.';

const template = readFileSync(TEMPLATE, 'utf8');
if (!template.includes(PLACEHOLDER)) throw new Error(`${TEMPLATE} has no ${PLACEHOLDER} line`);
const notice = `<!-- Written by \`npm run bench:report\` from bench/RESULTS.template.md and bench/results/*.json: edit those, not this file. -->\n\n`;
const generated = `${figures.join('\n')}\n## Runs on record\n\nThe latest run of each bench is shown above.\n\n${list}`;
// A function, so that a "$" in a command line is not read as a replacement pattern.
writeFileSync(out, notice + template.replace(PLACEHOLDER, () => generated));
console.log(`wrote ${relative(ROOT, out) || out} from ${runs.length} run(s)`);
