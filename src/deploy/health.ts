import type { ContainerEngine } from '../engine/containers.ts';
import type { ContainerDefinition } from '../plan/desired.ts';
import { failure } from './failures.ts';
import type { Deployment } from './session.ts';

/** What a health wait needs of a container: where it runs and its own health test. */
export interface HealthTarget {
  host: string;
  name: string;
  definition: Pick<ContainerDefinition, 'healthcheck'>;
}

/**
 * Waits until the container is healthy (or has no health check and runs).
 * Fails, with the log tail, when it stops, keeps restarting, or is not
 * healthy within the timeout (globals health_timeout unless given).
 */
export async function waitHealthy(deployment: Deployment, container: HealthTarget, timeoutSeconds = Number(deployment.globals.health_timeout)): Promise<void> {
  const { engine } = await deployment.pool.get(container.host);
  const deadline = Date.now() + timeoutSeconds * 1000;
  let restarts: number | undefined;
  for (let probes = 0; ; probes++) {
    const state = await engine.inspect(container.name);
    if (!state) throw await failure(deployment, container.host, container.name, 'wait for health', 'container disappeared');
    restarts ??= state.restartCount;
    // A service that exits is restarted by its policy: one restart is enough to know it does not come up.
    if (!state.running) {
      throw await failure(deployment, container.host, container.name, 'wait for health', `container stopped (exit code ${state.exitCode})`);
    }
    if (state.status === 'restarting' || state.restartCount > restarts) {
      throw await failure(deployment, container.host, container.name, 'wait for health', 'container keeps exiting and being restarted');
    }
    if (state.health === undefined || state.health === 'healthy') return;
    // Docker's first probe comes one interval after the start whatever the service does: run the test ourselves.
    if (await passesHealthTest(engine, container)) return;
    if (Date.now() > deadline) throw await failure(deployment, container.host, container.name, 'wait for health', `still ${state.health} after ${timeoutSeconds}s`);
    await new Promise((r) => setTimeout(r, probeDelayMs(probes)));
  }
}

/**
 * The wait before the next probe, after `probes` of them. Each probe is a
 * docker exec, about 0.14 CPU-s of runc and the shim before the test's own:
 * a cold deploy waits on dozens of containers at once, and when each was
 * probed every half second, these probes and Docker's own took a third of a
 * 2-core host's CPU from the services starting. So: soon at first (a
 * service that starts fast is seen within a second), then further apart,
 * never more than 3 s.
 */
export function probeDelayMs(probes: number): number {
  return Math.min(FIRST_PROBE_DELAY_MS * PROBE_BACKOFF ** probes, MAX_PROBE_DELAY_MS);
}

const FIRST_PROBE_DELAY_MS = 500;
const PROBE_BACKOFF = 1.5;
const MAX_PROBE_DELAY_MS = 3_000;

/** The container's own health test, run now in the container (exec form, as Docker runs it). */
export async function passesHealthTest(engine: ContainerEngine, container: HealthTarget): Promise<boolean> {
  const test = container.definition.healthcheck;
  if (!test) return false;
  try {
    return (await engine.exec(container.name, test, {})).exitCode === 0;
  } catch {
    return false;
  }
}
