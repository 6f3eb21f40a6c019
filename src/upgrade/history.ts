import type { Deployment } from '../deploy/session.ts';
import { forEachHost } from '../fleet/runner.ts';
import { HostJournal, runningRevision, type Revision } from '../state/revisions.ts';
import { backupsDir } from '../transport/state-files.ts';

/** A revision as `history` shows it: the record without its spec, and whether it is what runs now. */
export type HistoryRow = Omit<Revision, 'spec' | 'files'> & { running: boolean };

export interface History {
  revisions: HistoryRow[];
  /** Database dumps taken before migrations: host and path. */
  backups: { host: string; path: string }[];
}

/** Each host's revisions of the selected services' containers, read from the hosts in parallel. */
export async function collectHistory(deployment: Deployment): Promise<History> {
  const configRoot = String(deployment.globals.node_config_directory);
  const containers = deployment.desired.services.flatMap((s) => s.containers);
  const settled = await forEachHost(deployment.desired.hosts, deployment.policy, async (host) => {
    const { engine, connection } = await deployment.pool.get(host);
    const journal = new HostJournal(connection, configRoot, deployment.configDir);
    const rows: HistoryRow[] = [];
    for (const container of containers.filter((c) => c.host === host)) {
      const runningId = (await engine.inspect(container.name))?.id;
      const revisions = await journal.list(container.name);
      const current = runningRevision(revisions, runningId);
      for (const { spec: _spec, files: _files, ...row } of revisions) rows.push({ ...row, running: row.seq === current?.seq });
    }
    const backups = (await connection.listDir(backupsDir(configRoot))).filter((n) => n.endsWith('.sql') && deployment.desired.services.some((s) => n.startsWith(`${s.role.service}-`))).map((n) => ({ host, path: `${backupsDir(configRoot)}/${n}` }));
    return { rows, backups };
  });
  const history: History = { revisions: [], backups: [] };
  for (const result of settled) {
    if (result.status === 'done') {
      history.revisions.push(...result.value.rows);
      history.backups.push(...result.value.backups);
    } else if (result.status === 'failed') deployment.recap.fail(result.host, result.error, deployment.redact);
  }
  return history;
}
