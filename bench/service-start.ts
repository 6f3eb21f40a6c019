/**
 * Where the time of a command that restarts one container goes. Docker's
 * health status turns healthy only at the first passing probe, and the first
 * probe runs one interval (10 s here) after the start, so start-to-healthy
 * says more about the probe schedule than about the service. This probes the
 * container's own health URL from outside at 10 Hz while the command runs,
 * and reads Docker's events for the rest.
 */
import { get } from 'node:http';
import Docker from 'dockerode';

/** Epoch milliseconds, all from this machine's clock (the engine is local). */
export interface RestartTimeline {
  url: string;
  commandStart: number;
  /** Docker's first `kill` event: the command asked the old container to stop. */
  stopRequested: number;
  /** `die`: the old container's process exited. */
  stopped: number;
  /** The new process's State.StartedAt. */
  started: number;
  /** The first answer below 500 on the health URL after the start (healthcheck_curl's rule). */
  firstAnswer: number;
  /**
   * `health_status: healthy` after the start: Docker's own schedule, which
   * the CLI no longer waits for (it runs the health test itself), so it may
   * come after the command's end.
   */
  healthy: number;
  commandEnd: number;
  probes: number;
}

const PROBE_INTERVAL_MS = 100;
/** How long after the command Docker's first probe may still come (one interval, 10 s, and some). */
const HEALTHY_GRACE_MS = 15_000;
const PROBE_TIMEOUT_MS = 5000;

interface DockerEvent {
  Action: string;
  timeNano: number;
}

async function events(docker: Docker, container: string, from: number, to: number): Promise<DockerEvent[]> {
  // Whole seconds for the engine; the exact window is applied below.
  const stream = await docker.getEvents({ since: Math.floor(from / 1000), until: Math.ceil(to / 1000), filters: { container: [container] } });
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as DockerEvent)
    .filter((event) => event.timeNano / 1e6 >= from && event.timeNano / 1e6 <= to);
}

/** Runs `command` (which must restart `container`) while probing; returns its result and the timeline of the restart. */
export async function timeRestart<T>(container: string, command: () => Promise<T>): Promise<{ result: T; timeline: RestartTimeline }> {
  const docker = new Docker();
  const before = await docker.getContainer(container).inspect();
  const url = before.Config.Healthcheck?.Test?.join(' ').match(/https?:\/\/\S+/)?.[0];
  if (!url?.startsWith('http://')) throw new Error(`${container}: no http:// URL in its health check (${before.Config.Healthcheck?.Test?.join(' ')})`);

  const answers: number[] = [];
  let probes = 0;
  const probe = (): void => {
    probes++;
    // A fresh connection each time: a kept-alive one could only reach the old process.
    const request = get(url, { agent: false, timeout: PROBE_TIMEOUT_MS }, (response) => {
      if ((response.statusCode ?? 500) < 500) answers.push(Date.now());
      response.resume();
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => {});
  };
  const timer = setInterval(probe, PROBE_INTERVAL_MS);
  const commandStart = Date.now();
  let result: T;
  try {
    result = await command();
  } finally {
    clearInterval(timer);
  }
  const commandEnd = Date.now();

  const after = await docker.getContainer(container).inspect();
  const started = Date.parse(after.State.StartedAt);
  if (!(started >= commandStart && started <= commandEnd)) throw new Error(`${container} was not started during the command (started ${after.State.StartedAt})`);
  // The engine streams events up to `until` (in the future here), so this also waits out the grace.
  const log = await events(docker, container, commandStart, commandEnd + HEALTHY_GRACE_MS);
  const at = (action: string, notBefore: number): number => {
    const found = log.find((event) => event.Action === action && event.timeNano / 1e6 >= notBefore);
    if (!found) throw new Error(`${container}: no "${action}" event within ${HEALTHY_GRACE_MS / 1000} s of the command's end`);
    return found.timeNano / 1e6;
  };
  const firstAnswer = answers.find((time) => time >= started);
  if (firstAnswer === undefined) throw new Error(`${container}: ${url} did not answer after the start`);
  return {
    result,
    timeline: {
      url,
      commandStart,
      stopRequested: at('kill', commandStart),
      stopped: at('die', commandStart),
      started,
      firstAnswer,
      healthy: at('health_status: healthy', started),
      commandEnd,
      probes,
    },
  };
}
