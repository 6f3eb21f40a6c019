import { randomBytes, randomUUID } from 'node:crypto';
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
    const kind = secretKind(key);
    if (!kind.valid(String(value))) throw errorAt(doc, [key], `expected ${kind.expected}; remove the value and run "kolla-ts genpwd" to make one`);
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
 * Fills every missing password with a random one of its kind (see
 * secretKind) and keeps those already set. The file is written 0600
 * through a temp file and a rename.
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
      result[key] = secretKind(key).generate();
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

/** What a passwords.yml value must be, and how genpwd makes one; chosen by the key's name. */
export interface SecretKind {
  expected: string;
  valid(value: string): boolean;
  generate(): string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** First match wins; everything else is a random hex password. */
const SECRET_KINDS: { pattern: RegExp; kind: SecretKind }[] = [
  // A Ceph cluster's fsid is a UUID (ceph.conf's fsid, the monmap's).
  { pattern: /^ceph_fsid$/, kind: { expected: 'a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)', valid: (v) => UUID.test(v), generate: () => randomUUID() } },
  // libvirt names its secrets (rbd_secret_uuid, cinder_rbd_secret_uuid) by UUID.
  { pattern: /(^|_)secret_uuid$/, kind: { expected: 'a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)', valid: (v) => UUID.test(v), generate: () => randomUUID() } },
  // A cephx secret as keyrings hold it; a hex password would not parse.
  { pattern: /_cephx_key$/, kind: { expected: 'a cephx key (as "ceph-authtool --gen-print-key" prints)', valid: isCephxKey, generate: () => cephxKey() } },
];

const PASSWORD: SecretKind = { expected: 'a password', valid: () => true, generate: randomPassword };

export function secretKind(key: string): SecretKind {
  return SECRET_KINDS.find((entry) => entry.pattern.test(key))?.kind ?? PASSWORD;
}

/** Ceph's CryptoKey encoding (src/auth/Crypto.h): type, created (seconds, nanoseconds), secret length, then the secret. */
const CEPHX_HEADER = 12;
const CEPHX_AES = 1;
const CEPHX_SECRET = 16;

/** A new cephx key: an AES-128 secret with its header, base64 (what ceph-authtool --gen-print-key prints). */
export function cephxKey(secret: Buffer = randomBytes(CEPHX_SECRET), created: Date = new Date()): string {
  if (secret.length !== CEPHX_SECRET) throw new Error(`a cephx secret is ${CEPHX_SECRET} bytes`);
  const header = Buffer.alloc(CEPHX_HEADER);
  header.writeUInt16LE(CEPHX_AES, 0);
  header.writeUInt32LE(Math.floor(created.getTime() / 1000), 2);
  header.writeUInt32LE((created.getTime() % 1000) * 1_000_000, 6);
  header.writeUInt16LE(CEPHX_SECRET, 10);
  return Buffer.concat([header, secret]).toString('base64');
}

/** Whether a value decodes to an AES cephx key of 16 bytes (Ceph refuses a shorter secret). */
export function isCephxKey(value: string): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value) || value.length % 4 !== 0) return false;
  const bytes = Buffer.from(value, 'base64');
  return bytes.length === CEPHX_HEADER + CEPHX_SECRET && bytes.readUInt16LE(0) === CEPHX_AES && bytes.readUInt16LE(10) === CEPHX_SECRET;
}
