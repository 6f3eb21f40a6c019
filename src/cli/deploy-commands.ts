import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { generatePasswords } from '../config/passwords.ts';
import { checkHealth, collectStatus, computePlan, converge, destroy, pullImages, stopServices, writeAdminOpenrc, type ContainerStatus } from '../deploy/operations.ts';
import { CHECKS, runPrechecks, type CheckResult } from '../deploy/prechecks.ts';
import { bootstrapServers } from '../deploy/bootstrap-servers.ts';
import { loadRoleSet, openDeployment, openFleet, requiredPasswords, type Deployment, type DeploymentOptions } from '../deploy/session.ts';
import { InvalidArgumentError } from 'commander';
import { HostsFailedError, InputError } from '../errors.ts';
import { DEFAULT_FORKS, formatRecap, type Recap } from '../fleet/runner.ts';
import { isEmptyPlan, type Plan } from '../plan/diff.ts';
import { createProgress } from './progress.ts';
import { positiveInt, PROJECT_ROOT } from './shared.ts';

export interface CommonFlags {
  inventory: string;
  configdir: string;
  services?: string;
  limit?: string;
  forks: number;
  maxFailPercentage?: number;
  json?: boolean;
}

export function withDeploymentOptions(command: Command): Command {
  return command
    .option('-i, --inventory <file>', 'inventory file (ours in YAML, or kolla-ansible\'s INI)', join(PROJECT_ROOT, 'inventory', 'all-in-one.yml'))
    .option('--configdir <dir>', 'directory with globals.yml, passwords.yml and config/', '/etc/kolla')
    .option('--services <list>', 'only these services (comma-separated)')
    .option('-l, --limit <pattern>', 'only these hosts: names, groups, globs, "!" to exclude, "&" to intersect (as in Ansible)')
    .option('-f, --forks <n>', 'hosts worked on at the same time', (v) => positiveInt(v), DEFAULT_FORKS)
    .option('--max-fail-percentage <p>', 'stop a service once more than this share of its hosts failed (default: try every host)', (v) => percentage(v))
    .option('--json', 'machine-readable output on stdout');
}

function percentage(value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number < 0 || number > 100) throw new InvalidArgumentError(`expected a percentage (0-100), got "${value}"`);
  return number;
}

/**
 * Opens the deployment, runs the command, then prints the per-host recap
 * (stderr, or in the --json document) and fails if any host failed.
 */
export async function withDeployment<T>(
  flags: CommonFlags,
  run: (deployment: Deployment) => Promise<T>,
  toJson?: (result: T, deployment: Deployment) => unknown,
  lockFor?: string,
): Promise<T> {
  const services = flags.services
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const deployment = await openDeployment(
    { projectRoot: PROJECT_ROOT, inventoryFile: resolve(flags.inventory), configDir: resolve(flags.configdir) },
    { ...(services ? { services } : {}), ...fleetOptions(flags), ...(lockFor ? { lockFor } : {}) },
  );
  // Interrupted (Ctrl-C, SIGTERM): finish a container swap under way (never leave a host with neither
  // the old nor the new container running), then release the hosts' locks before going.
  const interrupted = (signal: NodeJS.Signals): void => {
    console.error(`kolla-ts: ${signal}: finishing the container swap under way, then stopping`);
    void deployment
      .settle()
      .then(() => deployment.close()).finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    let result: T;
    try {
      result = await run(deployment);
    } catch (error) {
      printRecap(deployment, false);
      throw error;
    }
    if (flags.json && toJson) console.log(JSON.stringify({ ...(toJson(result, deployment) as object), hosts: deployment.recap.rows(), blocked: Object.fromEntries(deployment.blocked) }, null, 2));
    printRecap(deployment, Boolean(flags.json));
    failIfAnyFailed(deployment.recap, deployment.blocked);
    return result;
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    await deployment.close();
  }
}

/** Non-zero exit when a host failed (5) or, only, did not answer (3), or a service could not run. */
function failIfAnyFailed(recap: Recap, blocked: ReadonlyMap<string, string>): void {
  const failed = recap.failed;
  if (failed.length === 0 && blocked.size === 0) return;
  const parts = failed.map((row) => `${row.host} ${row.outcome}${row.errors[0] ? ` (${row.errors[0]})` : ''}`);
  for (const [service, why] of blocked) parts.push(`${service} not run (${why})`);
  throw new HostsFailedError(parts.join(', '), failed.every((row) => row.outcome === 'unreachable'));
}

function fleetOptions(flags: CommonFlags): DeploymentOptions {
  return {
    ...(flags.limit ? { limit: flags.limit } : {}),
    forks: flags.forks,
    ...(flags.maxFailPercentage !== undefined ? { maxFailPercentage: flags.maxFailPercentage } : {}),
  };
}

/** The recap table and the log tails of what failed, on stderr (--json puts the rows in the document instead). */
function printRecap(deployment: Deployment, json: boolean): void {
  for (const [service, why] of deployment.blocked) console.error(`kolla-ts: ${service} not run: ${why}`);
  for (const row of deployment.recap.rows()) {
    for (const log of row.logs) console.error(`--- last lines of ${log.container}'s log on ${row.host} ---\n${log.tail}\n---`);
  }
  if (!json) console.error(formatRecap(deployment.recap));
}

export function registerDeployCommands(program: Command): void {
  withDeploymentOptions(program.command('plan').description('show what deploy would change, per host and container; changes nothing')).action(
    async (flags: CommonFlags) => {
      await withDeployment(
        flags,
        async (deployment) => {
          const plan = await computePlan(deployment, { runSteps: true });
          if (!flags.json) printPlan(plan, deployment);
          return plan;
        },
        (plan) => plan,
      );
    },
  );

  for (const [name, description, runSteps] of [
    ['deploy', 'render config, run bootstrap steps, start or update containers, wait for health', true],
    ['reconfigure', 'render and apply config changes; no bootstrap steps', false],
  ] as const) {
    withDeploymentOptions(program.command(name).description(description)).action(async (flags: CommonFlags) => {
      await withDeployment(flags, async (deployment) => {
        const progress = createProgress(
          deployment.desired.services.map((s) => s.role.service),
          Boolean(flags.json),
        );
        let plan: Plan;
        try {
          plan = await converge(deployment, {
            runSteps,
            command: name,
            reporter: { start: (n, d) => progress.start(n, d), finish: (n, ok, d) => progress.finish(n, ok, d) },
          });
        } catch (error) {
          await progress.close(true);
          throw error;
        }
        await progress.close(deployment.recap.failed.length > 0);
        if (!flags.json) console.log(isEmptyPlan(plan) ? nothingToDo(deployment) : `${name}: ${deployment.recap.failed.length > 0 ? 'ended with failures' : 'done'}. ${planTotals(plan)}`);
        return plan;
      }, (plan) => plan, name);
    });
  }

  withDeploymentOptions(program.command('status').description('per host and container: image, state, health, last change')).action(
    async (flags: CommonFlags) => {
      await withDeployment(
        flags,
        async (deployment) => {
          const rows = await collectStatus(deployment);
          if (!flags.json) printStatus(rows);
          return rows;
        },
        (containers) => ({ containers }),
      );
    },
  );

  withDeploymentOptions(program.command('check').description('exit non-zero when a container that should run is missing, stopped or unhealthy')).action(
    async (flags: CommonFlags) => {
      await withDeployment(
        flags,
        async (deployment) => {
          const rows = await checkHealth(deployment);
          if (!flags.json) console.log(`all ${rows.filter((r) => r.kind === 'service').length} containers are running and healthy`);
          return rows;
        },
        (containers) => ({ containers }),
      );
    },
  );

  withDeploymentOptions(program.command('bootstrap-servers').description('prepare Debian hosts: Docker engine, daemon.json, shared / mount, directories; idempotent')).action(
    async (flags: CommonFlags) => {
      const fleet = openFleet({ projectRoot: PROJECT_ROOT, inventoryFile: resolve(flags.inventory), configDir: resolve(flags.configdir) }, fleetOptions(flags));
      try {
        const results = await bootstrapServers({ ...fleet, log: (line) => console.error(line) });
        if (flags.json) console.log(JSON.stringify({ changes: results, hosts: fleet.recap.rows() }, null, 2));
        else console.error(formatRecap(fleet.recap));
        failIfAnyFailed(fleet.recap, new Map());
      } finally {
        await fleet.pool.close();
      }
    },
  );

  withDeploymentOptions(program.command('pull').description('pull every image each host runs, hosts in parallel (a re-pushed tag is pulled again)')).action(
    async (flags: CommonFlags) => {
      await withDeployment(flags, (deployment) => pullImages(deployment, (line) => console.error(line)), () => ({}));
    },
  );

  withDeploymentOptions(program.command('prechecks').description('check each host can take the deploy (engine, privileged containers, ports, disk, clock, name, interfaces, images); changes nothing')).action(
    async (flags: CommonFlags) => {
      await withDeployment(
        flags,
        async (deployment) => {
          const results = await runPrechecks(deployment);
          // A failed check fails its host in the recap: exit non-zero, JSON or not.
          if (!flags.json) printChecks(results);
          return results;
        },
        (checks) => ({ checks }),
      );
    },
  );

  withDeploymentOptions(program.command('stop').description('stop service containers; data containers and volumes stay')).action(async (flags: CommonFlags) => {
    await withDeployment(flags, (deployment) => stopServices(deployment, (line) => console.error(line)), () => ({}), 'stop');
  });

  withDeploymentOptions(program.command('destroy').description('remove containers and config (data and images only when asked)'))
    .option('--yes-i-really-really-mean-it', 'confirm: this removes the cloud')
    .option('--include-data', 'also remove data containers and named volumes (databases, instances, images)')
    .option('--include-images', 'also remove the images')
    .action(async (flags: CommonFlags & { yesIReallyReallyMeanIt?: boolean; includeData?: boolean; includeImages?: boolean }) => {
      if (!flags.yesIReallyReallyMeanIt) throw new InputError('destroy removes every container of the cloud; confirm with --yes-i-really-really-mean-it');
      await withDeployment(flags, (deployment) =>
        destroy(deployment, { includeData: Boolean(flags.includeData), includeImages: Boolean(flags.includeImages) }, (line) => console.error(line)),
        () => ({}),
        'destroy',
      );
    });

  withDeploymentOptions(program.command('post-deploy').description('write admin-openrc.sh (mode 0600) into the config directory')).action(
    async (flags: CommonFlags) => {
      await withDeployment(flags, async (deployment) => {
        console.log(writeAdminOpenrc(deployment, resolve(flags.configdir)));
      });
    },
  );

  program
    .command('genpwd')
    .description('fill every password passwords.yml needs; keep the ones already set')
    .option('--configdir <dir>', 'directory holding passwords.yml', '/etc/kolla')
    .option('-p, --passwords <file>', 'passwords file (default: <configdir>/passwords.yml)')
    .action((flags: { configdir: string; passwords?: string }) => {
      const file = resolve(flags.passwords ?? join(flags.configdir, 'passwords.yml'));
      const { added, kept } = generatePasswords(file, requiredPasswords(loadRoleSet(PROJECT_ROOT)));
      console.log(`${file}: ${added.length} generated, ${kept} kept`);
    });
}

function planTotals(plan: Plan): string {
  const counts: Record<string, number> = { create: 0, recreate: 0, restart: 0, start: 0 };
  let steps = 0;
  let files = 0;
  for (const service of plan.services) {
    for (const c of service.containers) if (c.action !== 'none') counts[c.action]!++;
    steps += service.steps.filter((s) => s.run).length;
    files += service.files.length;
  }
  return `${counts.create} to create, ${counts.recreate} to recreate, ${counts.restart} to restart, ${counts.start} to start, ${steps} step(s), ${files} config file(s)`;
}

/** Said only of the hosts that answered: the recap names the others. */
function nothingToDo(deployment: Deployment): string {
  return deployment.recap.failed.length > 0 ? 'Nothing to do on the hosts that answered.' : 'Nothing to do: everything is up to date.';
}

function printPlan(plan: Plan, deployment: Deployment): void {
  if (isEmptyPlan(plan)) {
    console.log(nothingToDo(deployment));
    return;
  }
  for (const service of plan.services) {
    const containers = service.containers.filter((c) => c.action !== 'none' || c.reasons.length > 0);
    const steps = service.steps.filter((s) => s.run);
    if (containers.length === 0 && steps.length === 0 && service.files.length === 0) continue;
    console.log(`${service.service}:`);
    for (const file of service.files) console.log(`  ${file.host}: ${file.action} ${file.path}`);
    for (const step of steps) console.log(`  ${step.host}: step ${step.description}`);
    for (const c of containers) console.log(`  ${c.host}: ${c.container}: ${c.action}${c.reasons.length ? ` (${c.reasons.join('; ')})` : ''}`);
  }
  console.log(`Plan: ${planTotals(plan)}`);
}

function printStatus(rows: ContainerStatus[]): void {
  const table = rows.map((r) => [r.host, r.container, r.image ?? '-', r.state, r.health ?? '-', r.changedAt ?? '-']);
  const header = ['HOST', 'CONTAINER', 'IMAGE', 'STATE', 'HEALTH', 'CHANGED'];
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  for (const row of [header, ...table]) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
}

/** Host x check: one row per host, a column per check; the failures' details below. */
function printChecks(results: CheckResult[]): void {
  const hosts = [...new Set(results.map((r) => r.host))];
  const mark = { ok: 'ok', failed: 'FAIL', skipped: '-' } as const;
  const table = hosts.map((host) => [host, ...CHECKS.map((check) => mark[results.find((r) => r.host === host && r.check === check)?.status ?? 'skipped'])]);
  const header = ['HOST', ...CHECKS];
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  for (const row of [header, ...table]) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
  for (const result of results.filter((r) => r.status === 'failed')) console.log(`${result.host}: ${result.check}: ${result.detail}`);
}
