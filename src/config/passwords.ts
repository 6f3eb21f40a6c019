import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import * as yaml from 'js-yaml';
import { InputError } from '../errors.ts';
import { errorAt, isPlainObject, readYaml } from '../util/yaml.ts';

export type Passwords = Record<string, string>;

/** Reads passwords.yml; every key a service needs must have a value. */
export function loadPasswords(file: string, required: readonly string[]): Passwords {
  if (!existsSync(file)) throw new InputError(`passwords file is missing; run "kolla-ts genpwd" first`, { file });
  const doc = readYaml(file);
  const data = doc.data ?? {};
  if (!isPlainObject(data)) throw errorAt(doc, [], 'passwords.yml must be a mapping of keys to values');
  const passwords: Passwords = {};
  for (const [key, value] of Object.entries(data)) {
    if (value === null || value === undefined || value === '') continue;
    if (typeof value !== 'string' && typeof value !== 'number') throw errorAt(doc, [key], 'a password must be a string');
    // A control character (a line break above all) would end the config line the password is placed on.
    if (/[\x00-\x1f\x7f]/.test(String(value))) throw errorAt(doc, [key], 'a password cannot hold a line break or other control character');
    passwords[key] = String(value);
  }
  const missing = required.filter((key) => !(key in passwords));
  if (missing.length > 0) {
    throw new InputError(`no value for ${missing.join(', ')}; run "kolla-ts genpwd" to fill them`, {
      file,
      ...(doc.lineOf([missing[0]!]) ? { line: doc.lineOf([missing[0]!])! } : {}),
      key: missing[0]!,
    });
  }
  return passwords;
}

/**
 * Fills every missing password with a random one and keeps those already
 * set. The file is written 0600 through a temp file and a rename.
 */
export function generatePasswords(file: string, required: readonly string[]): { added: string[]; kept: number } {
  let existing: Record<string, unknown> = {};
  if (existsSync(file)) {
    const doc = readYaml(file);
    if (doc.data !== null && doc.data !== undefined && !isPlainObject(doc.data)) throw errorAt(doc, [], 'passwords.yml must be a mapping of keys to values');
    existing = (doc.data as Record<string, unknown>) ?? {};
  }
  const result: Record<string, unknown> = { ...existing };
  const added: string[] = [];
  for (const key of [...required].sort()) {
    if (result[key] === null || result[key] === undefined || result[key] === '') {
      result[key] = randomPassword();
      added.push(key);
    }
  }
  // A new config directory holds secrets: only root may enter it.
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.tmp-${process.pid}`;
  writeFileSync(temp, yaml.dump(result, { sortKeys: true }), { mode: 0o600 });
  chmodSync(temp, 0o600);
  renameSync(temp, file);
  return { added, kept: Object.keys(existing).length };
}

function randomPassword(): string {
  // Hex: safe in connection URLs, INI files and shell words; 160 bits.
  return randomBytes(20).toString('hex');
}
