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
  for (;;) {
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
    // Often at first, when a service that starts quickly is noticed within half a second; then less, to spare the host.
    const age = Date.now() - Date.parse(state.startedAt);
    await new Promise((r) => setTimeout(r, age < FAST_PROBE_WINDOW_MS ? FAST_PROBE_MS : SLOW_PROBE_MS));
  }
}

const FAST_PROBE_MS = 500;
const FAST_PROBE_WINDOW_MS = 10_000;
const SLOW_PROBE_MS = 2_000;

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
