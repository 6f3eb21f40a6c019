import { DeployStepError } from '../errors.ts';
import { guard, tail } from '../deploy/failures.ts';
import type { Deployment } from '../deploy/session.ts';
import type { DesiredService } from '../plan/desired.ts';
import { TOOLBOX_CONTAINER } from '../plan/waits.ts';
import { backupsDir } from '../transport/state-files.ts';

/**
 * Dumps a service's databases before its schema changes: a migration is
 * not undone by swapping containers back, only by restoring this dump
 * (see README, "Upgrade and rollback"). The dump is taken by the MariaDB
 * client of the toolbox on the host that runs the service's database step
 * (its credentials are the toolbox's own ~/.my.cnf, never an argument), and
 * kept on that host, 0600, named by service and time. Returns its path, or
 * null when the service has no database.
 */
export async function backupDatabases(deployment: Deployment, service: DesiredService, log: (line: string) => void): Promise<string | null> {
  const steps = service.steps.filter((s) => s.step.kind === 'database');
  if (steps.length === 0) return null;
  const host = steps[0]!.host;
  const databases = steps.map((s) => (s.step as { name: string }).name);
  const step = `back up database(s) ${databases.join(', ')}`;
  const { engine, connection } = await deployment.pool.get(host);
  const result = await guard(deployment, host, TOOLBOX_CONTAINER, step, () =>
    engine.exec(TOOLBOX_CONTAINER, ['mariadb-dump', '--single-transaction', '--routines', '--triggers', '--events', '--databases', ...databases], {}),
  );
  if (result.exitCode !== 0) throw new DeployStepError(host, TOOLBOX_CONTAINER, step, `exit code ${result.exitCode}`, tail(deployment.redact(result.output)));
  const dir = backupsDir(String(deployment.globals.node_config_directory));
  const path = `${dir}/${service.role.service}-${new Date().toISOString().replace(/[:.]/g, '-')}.sql`;
  await guard(deployment, host, TOOLBOX_CONTAINER, step, async () => {
    await connection.ensureDir(dir, 0o700);
    await connection.writeFileAtomic(path, result.stdout ?? '', 0o600);
  });
  log(`${host}: ${service.role.service}: database(s) ${databases.join(', ')} backed up to ${path} (${Buffer.byteLength(result.stdout ?? '')} bytes)`);
  return path;
}
