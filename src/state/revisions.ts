import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUILD_KEY_LABEL } from '../build/key.ts';
import type { ContainerEngine, ContainerSpec } from '../engine/containers.ts';
import type { HostConnection } from '../transport/host.ts';

/**
 * Every change a command makes to a container on a host is a revision: what
 * ran (image by id, the spec, the config files) and how it ended. Revisions
 * are kept on the host, beside the config they describe, and mirrored in
 * the deploy-side config directory, with the same layout in both places:
 *
 *   <container>/<seq>.json        the record (no secrets beyond the spec)
 *   <container>/<seq>.files/NAME  the config files it ran with (0600)
 *
 * Numbers count per container and host, from 1.
 */
export type RevisionOutcome = 'pending' | 'healthy' | 'failed' | 'rolled back';

export interface Revision {
  seq: number;
  host: string;
  service: string;
  container: string;
  /** ISO time the change was made. */
  at: string;
  /** deploy, reconfigure, upgrade or rollback. */
  command: string;
  outcome: RevisionOutcome;
  /** Why it failed or was rolled back. */
  detail?: string;
  /** The revision a rollback returned to. */
  restores?: number;
  containerId: string;
  /** The reference the container was made from, and the image it named then: a rollback uses the id. */
  image: string;
  imageId: string;
  /** `repo@sha256:...` where the image came from a registry: what a host without the image pulls. */
  repoDigest: string | null;
  buildKey: string | null;
  configHash: string;
  definitionHash: string;
  spec: ContainerSpec;
  files: { name: string; mode: number }[];
}

export interface ConfigFileContent {
  name: string;
  content: string;
  mode: number;
}

export function hostRevisionsDir(configRoot: string): string {
  return `${configRoot}/.kolla-ts/revisions`;
}

export function localRevisionsDir(configDir: string, host: string): string {
  return join(configDir, 'revisions', host);
}

const RECORD = /^(\d+)\.json$/;

/** The journal of one host: writes go to the host and to the deploy-side copy. */
export class HostJournal {
  constructor(
    private readonly connection: HostConnection,
    private readonly configRoot: string,
    private readonly configDir: string,
  ) {}

  private get host(): string {
    return this.connection.name;
  }

  /** Records a new revision with its config files; returns it with its number. */
  async add(record: Omit<Revision, 'seq' | 'files'>, files: readonly ConfigFileContent[]): Promise<Revision> {
    const dir = `${hostRevisionsDir(this.configRoot)}/${record.container}`;
    await this.connection.ensureDir(dir, 0o700);
    let seq = nextSeq(await this.connection.listDir(dir));
    const revision = (): Revision => ({ ...record, seq, files: files.map((f) => ({ name: f.name, mode: f.mode })) });
    // The host's lock makes us the only writer; the exclusive create only guards against a second deploy host.
    while (!(await this.connection.createExclusive(`${dir}/${seq}.json`, JSON.stringify(revision(), null, 2), 0o600))) seq++;
    await this.connection.ensureDir(`${dir}/${seq}.files`, 0o700);
    for (const file of files) await this.connection.writeFileAtomic(`${dir}/${seq}.files/${file.name}`, file.content, 0o600);
    this.mirror(revision(), files);
    return revision();
  }

  /** Sets how a revision ended (it is written as pending before the change). */
  async finish(revision: Revision, outcome: RevisionOutcome, changes: Partial<Pick<Revision, 'detail' | 'containerId'>> = {}): Promise<Revision> {
    const done: Revision = { ...revision, ...changes, outcome };
    const text = JSON.stringify(done, null, 2);
    await this.connection.writeFileAtomic(`${hostRevisionsDir(this.configRoot)}/${revision.container}/${revision.seq}.json`, text, 0o600);
    this.mirror(done);
    return done;
  }

  /** A container's revisions on this host, oldest first. */
  async list(container: string): Promise<Revision[]> {
    const dir = `${hostRevisionsDir(this.configRoot)}/${container}`;
    const names = (await this.connection.listDir(dir)).filter((n) => RECORD.test(n));
    const records = await Promise.all(names.map(async (name) => parseRevision((await this.connection.readFile(`${dir}/${name}`))?.toString('utf8'))));
    return records.filter((r): r is Revision => r !== null).sort((a, b) => a.seq - b.seq);
  }

  /** The config files a revision ran with. */
  async files(revision: Revision): Promise<ConfigFileContent[]> {
    const dir = `${hostRevisionsDir(this.configRoot)}/${revision.container}/${revision.seq}.files`;
    return Promise.all(
      revision.files.map(async (file) => {
        const content = await this.connection.readFile(`${dir}/${file.name}`);
        if (content === null) throw new Error(`revision ${revision.seq} of ${revision.container} on ${this.host}: config file ${file.name} is missing from ${dir}`);
        return { name: file.name, mode: file.mode, content: content.toString('utf8') };
      }),
    );
  }

  /** The deploy host's copy: written as the host's, so either can be rebuilt from the other. */
  private mirror(revision: Revision, files?: readonly ConfigFileContent[]): void {
    const dir = join(localRevisionsDir(this.configDir, this.host), revision.container);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writePrivate(join(dir, `${revision.seq}.json`), JSON.stringify(revision, null, 2));
    if (!files) return;
    mkdirSync(join(dir, `${revision.seq}.files`), { recursive: true, mode: 0o700 });
    for (const file of files) writePrivate(join(dir, `${revision.seq}.files`, file.name), file.content);
  }
}

/** Revisions of one host as the deploy host keeps them (for a host that does not answer). */
export function localRevisions(configDir: string, host: string, container: string): Revision[] {
  const dir = join(localRevisionsDir(configDir, host), container);
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => RECORD.test(n));
  } catch {
    return [];
  }
  return names
    .map((name) => parseRevision(readFileSync(join(dir, name), 'utf8')))
    .filter((r): r is Revision => r !== null)
    .sort((a, b) => a.seq - b.seq);
}

function nextSeq(names: readonly string[]): number {
  return Math.max(0, ...names.map((n) => Number(RECORD.exec(n)?.[1] ?? 0))) + 1;
}

function parseRevision(text: string | undefined): Revision | null {
  if (!text) return null;
  try {
    const value = JSON.parse(text) as Revision;
    return typeof value.seq === 'number' && typeof value.container === 'string' ? value : null;
  } catch {
    return null;
  }
}

function writePrivate(path: string, content: string): void {
  const temp = `${path}.tmp-${process.pid}`;
  writeFileSync(temp, content, { mode: 0o600 });
  renameSync(temp, path);
}

/** The revision a container runs now: the latest healthy one with its id (a rollback's shares the id of the container it brought back). */
export function runningRevision(revisions: readonly Revision[], runningContainerId: string | null | undefined): Revision | null {
  return [...revisions].reverse().find((r) => r.containerId === runningContainerId && r.outcome === 'healthy') ?? null;
}

/**
 * The revision a rollback returns to: `to` when given, else the last good
 * one before the revision the container runs now (found by container id;
 * a rollback's revision shares the id of the container it brought back).
 * Revisions that never became healthy are never a target.
 */
export function rollbackTarget(revisions: readonly Revision[], runningContainerId: string | null, to?: number): { target: Revision; current: Revision | null } | { error: string } {
  const current = runningRevision(revisions, runningContainerId);
  if (to !== undefined) {
    const target = revisions.find((r) => r.seq === to);
    if (!target) return { error: `no revision ${to} (there are ${revisions.map((r) => r.seq).join(', ') || 'none'})` };
    if (target.outcome !== 'healthy') return { error: `revision ${to} never became healthy (${target.outcome}); it is not a rollback target` };
    return { target, current };
  }
  const before = current ? revisions.filter((r) => r.seq < current.seq) : revisions;
  const target = [...before].reverse().find((r) => r.outcome === 'healthy' && r.containerId !== runningContainerId);
  if (!target) return { error: current ? `no healthy revision before ${current.seq}` : 'no healthy revision recorded' };
  return { target, current };
}

/** The names a container goes by during a swap: the replaced one is kept, stopped, as the host's rollback point. */
export function keptName(container: string): string {
  return `${container}_previous`;
}

export function candidateName(container: string): string {
  return `${container}_next`;
}

/** What a revision records of the image a container was made from. */
export async function imageFacts(engine: ContainerEngine, ref: string, imageId: string): Promise<Pick<Revision, 'image' | 'imageId' | 'repoDigest' | 'buildKey'>> {
  const image = await engine.image(imageId);
  const repository = ref.replace(/(@[^@]+|:[^:/]+)$/, '');
  return {
    image: ref,
    imageId,
    repoDigest: image?.digests.find((d) => d.startsWith(`${repository}@`)) ?? image?.digests[0] ?? null,
    buildKey: image?.labels[BUILD_KEY_LABEL] ?? null,
  };
}
