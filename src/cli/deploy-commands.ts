import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { generatePasswords } from '../config/passwords.ts';
import { checkHealth, collectStatus, computePlan, converge, destroy, stopServices, writeAdminOpenrc, type ContainerStatus } from '../deploy/operations.ts';
import { loadRoleSet, openDeployment, requiredPasswords, type Deployment } from '../deploy/session.ts';
import { InputError } from '../errors.ts';
import { isEmptyPlan, type Plan } from '../plan/diff.ts';
import { createProgress } from './progress.ts';
import { PROJECT_ROOT } from './shared.ts';

interface CommonFlags {
  inventory: string;
  configdir: string;
  services?: string;
  json?: boolean;
}

function withDeploymentOptions(command: Command): Command {
  return command
    .option('-i, --inventory <file>', 'inventory file', join(PROJECT_ROOT, 'inventory', 'all-in-one.yml'))
    .option('--configdir <dir>', 'directory with globals.yml, passwords.yml and config/', '/etc/kolla')
    .option('--services <list>', 'only these services (comma-separated)')
    .option('--json', 'machine-readable output on stdout');
}

async function withDeployment<T>(flags: CommonFlags, run: (deployment: Deployment) => Promise<T>): Promise<T> {
  const services = flags.services
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const deployment = await openDeployment(
    { projectRoot: PROJECT_ROOT, inventoryFile: resolve(flags.inventory), configDir: resolve(flags.configdir) },
    services ? { services } : {},
  );
  try {
    return await run(deployment);
  } finally {
    await deployment.close();
  }
}

export function registerDeployCommands(program: Command): void {
  withDeploymentOptions(program.command('plan').description('show what deploy would change, per host and container; changes nothing')).action(
    async (flags: CommonFlags) => {
      await withDeployment(flags, async (deployment) => {
        const plan = await computePlan(deployment, { runSteps: true });
        if (flags.json) console.log(JSON.stringify(plan, null, 2));
        else printPlan(plan);
      });
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
            reporter: { start: (n, d) => progress.start(n, d), finish: (n, ok, d) => progress.finish(n, ok, d) },
          });
        } catch (error) {
          await progress.close(true);
          throw error;
        }
        await progress.close();
        if (flags.json) console.log(JSON.stringify(plan, null, 2));
        else console.log(isEmptyPlan(plan) ? 'Nothing to do: everything is up to date.' : `${name}: done. ${planTotals(plan)}`);
      });
    });
  }

  withDeploymentOptions(program.command('status').description('per host and container: image, state, health, last change')).action(
    async (flags: CommonFlags) => {
      await withDeployment(flags, async (deployment) => {
        const rows = await collectStatus(deployment);
        if (flags.json) console.log(JSON.stringify(rows, null, 2));
        else printStatus(rows);
      });
    },
  );

  withDeploymentOptions(program.command('check').description('exit non-zero when a container that should run is missing, stopped or unhealthy')).action(
    async (flags: CommonFlags) => {
      await withDeployment(flags, async (deployment) => {
        const rows = await checkHealth(deployment);
        if (flags.json) console.log(JSON.stringify(rows, null, 2));
        else console.log(`all ${rows.filter((r) => r.kind === 'service').length} containers are running and healthy`);
      });
    },
  );

  withDeploymentOptions(program.command('stop').description('stop service containers; data containers and volumes stay')).action(async (flags: CommonFlags) => {
    await withDeployment(flags, (deployment) => stopServices(deployment, (line) => console.error(line)));
  });

  withDeploymentOptions(program.command('destroy').description('remove containers and config (data and images only when asked)'))
    .option('--yes-i-really-really-mean-it', 'confirm: this removes the cloud')
    .option('--include-data', 'also remove data containers and named volumes (databases, instances, images)')
    .option('--include-images', 'also remove the images')
    .action(async (flags: CommonFlags & { yesIReallyReallyMeanIt?: boolean; includeData?: boolean; includeImages?: boolean }) => {
      if (!flags.yesIReallyReallyMeanIt) throw new InputError('destroy removes every container of the cloud; confirm with --yes-i-really-really-mean-it');
      await withDeployment(flags, (deployment) =>
        destroy(deployment, { includeData: Boolean(flags.includeData), includeImages: Boolean(flags.includeImages) }, (line) => console.error(line)),
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

function printPlan(plan: Plan): void {
  if (isEmptyPlan(plan)) {
    console.log('Nothing to do: everything is up to date.');
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
