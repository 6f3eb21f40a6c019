import { DeployStepError } from '../errors.ts';
import type { Deployment } from './session.ts';

export async function execChecked(
  deployment: Deployment,
  host: string,
  container: string,
  step: string,
  run: () => Promise<{ exitCode: number; output: string }>,
  okExitCodes: readonly number[] = [0],
): Promise<void> {
  const result = await guard(deployment, host, container, step, run);
  if (!okExitCodes.includes(result.exitCode)) {
    throw new DeployStepError(host, container, step, `exit code ${result.exitCode}`, tail(deployment.redact(result.output)));
  }
}

/** Runs one host operation; any failure becomes a DeployStepError naming host, container and step, with the log tail. */
export async function guard<T>(deployment: Deployment, host: string, container: string, step: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof DeployStepError) throw error;
    throw await failure(deployment, host, container, step, (error as Error).message);
  }
}

export async function failure(deployment: Deployment, host: string, container: string, step: string, detail: string): Promise<DeployStepError> {
  let logs = '';
  try {
    logs = await (await deployment.pool.get(host)).engine.logsTail(container, 30);
  } catch {
    logs = '';
  }
  return new DeployStepError(host, container, step, deployment.redact(detail), tail(deployment.redact(logs)));
}

export function tail(text: string, lines = 30): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
