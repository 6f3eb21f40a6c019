import { DeployStepError, KollaError } from '../errors.ts';
import { claimHosts, recordStamp } from '../deploy/apply.ts';
import { failure } from '../deploy/failures.ts';
import type { Deployment } from '../deploy/session.ts';
import { forEachHost } from '../fleet/runner.ts';
import type { ContainerEngine } from '../engine/containers.ts';
import { HostJournal, keptName, rollbackTarget, type Revision } from '../state/revisions.ts';
import { batches, type Serial } from './rolling.ts';
import { replaceContainer } from './swap.ts';

const UNDOABLE = new Set(['upgrade', 'rollback']);

export interface RollbackOptions {
  /** A revision number (per container, as `history` shows); default: the one before the running one. */
  to?: number;
  serial: Serial;
  healthTimeoutSeconds: number;
  log(line: string): void;
}

/**
 * Returns the one selected service to an earlier revision on each of its
 * hosts, batch by batch: the image by id, the config files and the
 * container definition that revision recorded. The kept container is
 * brought back where it is that revision; otherwise the container is made
 * again from the record. Gated on health like upgrade (an unhealthy result
 * puts back what ran), and itself recorded as a revision. Without `to`,
 * only containers an upgrade (or a rollback) changed last are returned: the
 * rest of the service (an upgrade of nova that replaced only nova_compute)
 * is left as it is.
 */
export async function rollback(deployment: Deployment, options: RollbackOptions): Promise<Revision[]> {
  const service = deployment.desired.services[0]!;
  const name = service.role.service;
  const hosts = [...new Set(service.containers.map((c) => c.host))];
  await claimHosts(deployment, hosts);
  const done: Revision[] = [];
  const cut = batches(hosts, options.serial);
  for (const [index, batch] of cut.entries()) {
    options.log(`${name}: rollback batch ${index + 1}/${cut.length}: ${batch.join(', ')}`);
    const settled = await forEachHost(batch, { forks: deployment.policy.forks }, async (host) => {
      const { engine, connection } = await deployment.pool.get(host);
      const journal = new HostJournal(connection, String(deployment.globals.node_config_directory), deployment.configDir);
      const restored: Revision[] = [];
      const skipped: string[] = [];
      for (const container of service.containers.filter((c) => c.host === host)) {
        const running = await engine.inspect(container.name);
        const choice = rollbackTarget(await journal.list(container.name), running?.id ?? null, options.to);
        // A container the changes being undone did not touch has nothing to return to: it stays as it is.
        if ('error' in choice) {
          skipped.push(`${container.name} (${choice.error})`);
          continue;
        }
        // Without --to, a rollback undoes upgrades (and rollbacks): a container a deploy made is what globals.yml asks for.
        if (options.to === undefined && !UNDOABLE.has(choice.current?.command ?? '')) {
          skipped.push(`${container.name} (its running revision was made by ${choice.current?.command ?? 'no recorded command'}, not by an upgrade)`);
          continue;
        }
        const { target } = choice;
        const useKept = (await engine.inspect(keptName(container.name)))?.id === target.containerId;
        if (!useKept) await ensureRevisionImage(engine, host, target);
        options.log(`${host}: ${container.name}: back to revision ${target.seq} (${target.image}, ${target.imageId.slice(7, 19)}, from ${useKept ? 'the kept container' : 'its record'})`);
        restored.push(
          await replaceContainer(
            deployment,
            {
              host,
              service: name,
              container: container.name,
              spec: target.spec,
              files: await journal.files(target),
              configDir: container.configDir,
              configHash: target.configHash,
              definitionHash: target.definitionHash,
              healthcheck: target.spec.healthcheck?.test ?? null,
              useKept,
              ...(useKept ? {} : { pinnedImage: target.imageId }),
              restores: target.seq,
            },
            { command: 'rollback', healthTimeoutSeconds: options.healthTimeoutSeconds, log: options.log },
          ),
        );
      }
      if (restored.length === 0) throw new DeployStepError(host, name, 'rollback', `nothing to roll back: ${skipped.join('; ')}`);
      // Where the containers are back on what globals.yml names, the steps ran for that version before the
      // upgrade (and must not run again with it, on a schema migrated forward): recorded as done.
      const configRoot = String(deployment.globals.node_config_directory);
      for (const step of service.steps.filter((s) => s.host === host && s.imageRef && 'container' in s.step)) {
        const runs = (step.step as { container: string }).container;
        const container = service.containers.find((c) => c.host === host && c.name === runs);
        const back = restored.find((r) => r.container === runs);
        if (container && back?.definitionHash === container.definitionHash) await recordStamp(deployment, step, configRoot);
      }
      for (const line of skipped) options.log(`${host}: left as it is: ${line}`);
      return restored;
    });
    let failed = false;
    for (const result of settled) {
      if (result.status === 'done') {
        done.push(...result.value);
        deployment.recap.ok(result.host, result.value.length);
      } else if (result.status === 'failed') {
        failed = true;
        const error = result.error instanceof KollaError ? result.error : await failure(deployment, result.host, name, 'rollback', String(result.error));
        deployment.recap.fail(result.host, error, deployment.redact);
      }
    }
    if (failed) {
      options.log(`${name}: rollback stopped; ${cut.slice(index + 1).flat().join(', ') || 'no other host'} left as it was`);
      break;
    }
  }
  return done;
}

/** The image a revision ran, by id: present, or pulled by the registry digest it was recorded with. */
async function ensureRevisionImage(engine: ContainerEngine, host: string, revision: Revision): Promise<void> {
  if (await engine.image(revision.imageId)) return;
  if (!revision.repoDigest) {
    throw new DeployStepError(host, revision.container, 'rollback', `image ${revision.imageId} of revision ${revision.seq} is no longer on the host, and no registry digest was recorded to pull it by`);
  }
  try {
    await engine.pull(revision.repoDigest);
  } catch (error) {
    throw new DeployStepError(host, revision.container, 'rollback', `cannot pull ${revision.repoDigest} (revision ${revision.seq}): ${(error as Error).message}`);
  }
}
