/**
 * One error type per kind of failure; exit codes are assigned here only.
 * Messages never carry secret values: callers name keys, never values.
 */
export class KollaError extends Error {
  readonly exitCode: number = 1;
}

/** Bad user input: a file, a flag, a selection. Nothing has been changed. */
export class InputError extends KollaError {
  override readonly exitCode = 2;
  constructor(
    message: string,
    readonly location?: { file: string; line?: number; key?: string },
  ) {
    super(location ? `${formatLocation(location)}: ${message}` : message);
  }
}

/** A template failed to render. */
export class TemplateError extends InputError {}

/** A selection (regex, profile, service list) matched nothing. */
export class SelectionError extends InputError {}

/** Something outside us is unreachable: registry, Debian mirror, engine, host. */
export class UnreachableError extends KollaError {
  override readonly exitCode = 3;
}

/** A host offered a key known_hosts does not list for it: it is not used. */
export class HostKeyError extends UnreachableError {}

/** Images were selected but not all of them got built or pushed. */
export class BuildFailedError extends KollaError {
  override readonly exitCode = 4;
}

/** A deploy step failed on a host. */
export class DeployStepError extends KollaError {
  override readonly exitCode = 5;
  constructor(
    readonly host: string,
    readonly container: string,
    readonly step: string,
    detail: string,
    readonly logTail?: string,
  ) {
    super(`${host}: ${container}: ${step} failed: ${detail}`);
  }
}

/**
 * A fleet command ended with some hosts failed or unreachable; the recap
 * printed before it says which and why. Unreachable only: exit 3.
 */
export class HostsFailedError extends KollaError {
  override readonly exitCode: number;
  constructor(message: string, onlyUnreachable: boolean) {
    super(message);
    this.exitCode = onlyUnreachable ? 3 : 5;
  }
}

/** Another kolla-ts run is changing a host this one would change. */
export class HostLockedError extends KollaError {
  override readonly exitCode = 7;
}

/** The deployed cloud's API refused or failed a request (init-cloud). */
export class CloudApiError extends KollaError {
  override readonly exitCode = 8;
}

/** A health check (deploy wait, `check` command) found something down. */
export class UnhealthyError extends KollaError {
  override readonly exitCode = 6;
}

export function formatLocation(location: { file: string; line?: number; key?: string }): string {
  let text = location.file;
  if (location.line !== undefined) text += `:${location.line}`;
  if (location.key !== undefined) text += ` (key ${location.key})`;
  return text;
}

/** Maps any thrown value to a process exit code; unknown errors are bugs (70). */
export function exitCodeFor(error: unknown): number {
  return error instanceof KollaError ? error.exitCode : 70;
}
