import type { Command } from 'commander';
import { collectHistory, type History } from '../upgrade/history.ts';
import { rollback } from '../upgrade/rollback.ts';
import { parseSerial, upgrade } from '../upgrade/rolling.ts';
import type { Deployment } from '../deploy/session.ts';
import { isEmptyPlan } from '../plan/diff.ts';
import { withDeployment, withDeploymentOptions, type CommonFlags } from './deploy-commands.ts';
import { positiveInt } from './shared.ts';

interface RollingFlags extends CommonFlags {
  serial: string;
  healthTimeout?: number;
}

function withRollingOptions(command: Command): Command {
  return withDeploymentOptions(command)
    .option('--serial <n|n%>', 'hosts of a service changed at once: a number, or a share of its hosts', '1')
    .option('--health-timeout <seconds>', 'how long a new container has to become healthy (default: health_timeout in globals.yml)', (v) => positiveInt(v));
}

const healthTimeout = (flags: RollingFlags, deployment: Deployment): number => flags.healthTimeout ?? Number(deployment.globals.health_timeout);
const log = (line: string): void => console.error(line);

export function registerUpgradeCommands(program: Command): void {
  withRollingOptions(
    program
      .command('upgrade')
      .description('roll services to the tags globals.yml names: pull first, back up databases, replace host batch by host batch, gated on health; an unhealthy host gets its old container back'),
  ).action(async (flags: RollingFlags) => {
    const serial = parseSerial(flags.serial);
    await withDeployment(
      flags,
      async (deployment) => {
        const plan = await upgrade(deployment, { serial, healthTimeoutSeconds: healthTimeout(flags, deployment), log });
        if (!flags.json) console.log(isEmptyPlan(plan) ? 'upgrade: nothing to do: every container runs what globals.yml names.' : `upgrade: ${deployment.recap.failed.length > 0 ? 'stopped with failures' : 'done'}.`);
        return plan;
      },
      (plan) => plan,
      'upgrade',
    );
  });

  withRollingOptions(
    program
      .command('rollback')
      .argument('<service>', 'the service to return to an earlier revision')
      .description("return a service to its previous revision on each host (image by id, config, definition), gated on health; `history` lists the revisions")
      .option('--to <revision>', 'this revision number (per container, as `history` shows) instead of the previous one', (v) => positiveInt(v)),
  ).action(async (service: string, flags: RollingFlags & { to?: number }) => {
    const serial = parseSerial(flags.serial);
    await withDeployment(
      { ...flags, services: service },
      async (deployment) => {
        const restored = await rollback(deployment, { serial, healthTimeoutSeconds: healthTimeout(flags, deployment), log, ...(flags.to !== undefined ? { to: flags.to } : {}) });
        // globals.yml still names what was rolled back from: say so, or the next deploy or upgrade undoes the rollback.
        const desired = new Map(deployment.desired.services.flatMap((s) => s.containers).map((c) => [`${c.host}/${c.name}`, c.spec.image]));
        const drift = [...new Set(restored.filter((r) => desired.get(`${r.host}/${r.container}`) !== r.spec.image).map((r) => `${r.container} runs ${r.spec.image} but globals.yml names ${desired.get(`${r.host}/${r.container}`)}`))];
        for (const line of drift) console.error(`kolla-ts: note: ${line}; set its tag in globals.yml, or the next deploy or upgrade goes back to it`);
        if (!flags.json) console.log(`rollback: ${restored.length} container(s) restored${deployment.recap.failed.length > 0 ? ', stopped with failures' : ''}.`);
        return restored;
      },
      (restored) => ({ restored: restored.map(({ spec: _spec, files: _files, ...rest }) => rest) }),
      'rollback',
    );
  });

  withDeploymentOptions(
    program
      .command('history')
      .argument('[service]', 'only this service')
      .description("each host's revisions per container (what ran, from which command, how it ended) and the database backups"),
  ).action(async (service: string | undefined, flags: CommonFlags) => {
    await withDeployment(
      { ...flags, ...(service ? { services: service } : {}) },
      async (deployment) => {
        const history = await collectHistory(deployment);
        if (!flags.json) printHistory(history);
        return history;
      },
      (history) => history,
    );
  });
}

function printHistory(history: History): void {
  const header = ['HOST', 'CONTAINER', 'REV', 'WHEN', 'COMMAND', 'IMAGE', 'IMAGE ID', 'OUTCOME'];
  const table = history.revisions.map((r) => [
    r.host,
    r.container,
    `${r.seq}${r.running ? '*' : ''}`,
    r.at.replace(/\.\d+Z$/, 'Z'),
    r.restores !== undefined ? `${r.command} to ${r.restores}` : r.command,
    r.image,
    r.imageId.slice(7, 19),
    r.outcome + (r.detail ? `: ${r.detail.split('\n')[0]!.slice(0, 80)}` : ''),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  for (const row of [header, ...table]) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
  console.log('(* the revision running now)');
  for (const backup of history.backups) console.log(`backup: ${backup.host}:${backup.path}`);
}
