import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError } from 'commander';

/** The checkout or installed package root: images/, roles/ and config-templates/ live here. */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** commander reducer for repeatable options. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function positiveInt(value: string, allowZero = false): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < (allowZero ? 0 : 1)) {
    throw new InvalidArgumentError(`expected a whole number${allowZero ? '' : ' above 0'}, got "${value}"`);
  }
  return number;
}
