import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const BUILD_KEY_LABEL = 'org.kolla-ts.build-key';

export interface KeyInputs {
  dockerfile: string;
  contextDir: string;
  contextFiles: readonly string[];
  buildArgs: Readonly<Record<string, string>>;
  /** The parent's build key, or for a root the id of the image it starts from. */
  parentKey: string;
}

/**
 * An image's build key: equal keys mean an equal image, so a present key
 * means nothing to build. File modes count because COPY keeps them.
 */
export function buildKey(inputs: KeyInputs): string {
  const hash = createHash('sha256');
  const field = (name: string, value: string | Buffer): void => {
    hash.update(`${name}\0${Buffer.byteLength(value)}\0`);
    hash.update(value);
  };
  field('parent', inputs.parentKey);
  field('dockerfile', inputs.dockerfile);
  for (const file of [...inputs.contextFiles].sort()) {
    const path = join(inputs.contextDir, file);
    field('file', file);
    field('mode', (statSync(path).mode & 0o7777).toString(8));
    field('content', readFileSync(path));
  }
  for (const name of Object.keys(inputs.buildArgs).sort()) field(`arg:${name}`, inputs.buildArgs[name]!);
  return `sha256:${hash.digest('hex')}`;
}
