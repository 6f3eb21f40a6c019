import { appendFileSync, copyFileSync, mkdirSync, rmSync, statSync, chmodSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ImageEngine } from '../engine/docker.ts';
import type { RegistryClient } from '../engine/registry.ts';
import { InputError } from '../errors.ts';
import { ensureBaseImage } from './base-rootfs.ts';
import { buildGraph, selectImages, topologicalOrder, type ImageGraph } from './graph.ts';
import { discoverImages, loadProfiles, loadUsers, type ImageSource } from './images.ts';
import { BUILD_KEY_LABEL, buildKey } from './key.ts';
import { loadOverrides } from './overrides.ts';
import { renderDockerfile, type RenderedImage } from './render.ts';
import { runTree, type ImageResult, type SchedulerEvents } from './scheduler.ts';

export interface BuildOptions {
  /** images/ first, then extra template directories (later ones win per image name). */
  imageDirs: string[];
  usersFile: string;
  profileFiles: string[];
  patterns: string[];
  profile?: string;
  registry?: string;
  namespace: string;
  tag: string;
  push: boolean;
  threads: number;
  retries: number;
  noCache: boolean;
  force: boolean;
  templateOverrides: string[];
  buildArgs: Record<string, string>;
  baseImage?: string;
  mirror: string;
  suite: string;
  workDir: string;
  logsDir?: string;
}

export interface BuildSummary {
  built: string[];
  failed: { name: string; status: 'error' | 'parent_error' | 'push_error'; reason?: string }[];
  skipped: { name: string; reason: string }[];
  unmatched: string[];
}

/** Everything known about the tree before anything is built: pure reading and rendering. */
export interface PreparedTree {
  images: Map<string, ImageSource>;
  rendered: Map<string, RenderedImage>;
  graph: ImageGraph;
  selected: Set<string>;
  unmatched: string[];
  imagePrefix: string;
  baseImageRef: string;
}

export function imagePrefix(registry: string | undefined, namespace: string): string {
  return `${registry ? `${registry}/` : ''}${namespace}/`;
}

export function prepareTree(options: BuildOptions): PreparedTree {
  const images = discoverImages(options.imageDirs);
  const users = loadUsers(options.usersFile);
  const overrides = loadOverrides(options.templateOverrides, new Set(images.keys()));
  const prefix = imagePrefix(options.registry, options.namespace);
  const baseImageRef = options.baseImage ?? `kolla-ts/debian-rootfs:${options.suite}`;
  const context = { base_image: baseImageRef, image_prefix: prefix, tag: options.tag };

  const rendered = new Map<string, RenderedImage>();
  for (const image of images.values()) rendered.set(image.name, renderDockerfile(image, context, users, overrides.get(image.name)));
  const graph = buildGraph(new Map([...rendered].map(([name, r]) => [name, r.from])), prefix, options.tag);

  let profile: { name: string; patterns: string[] } | undefined;
  if (options.profile) {
    const profiles = loadProfiles(options.profileFiles);
    const patterns = profiles.get(options.profile);
    if (!patterns) throw new InputError(`unknown profile "${options.profile}" (known: ${[...profiles.keys()].sort().join(', ')})`);
    profile = { name: options.profile, patterns };
  }
  const { selected, unmatched } = selectImages(graph, options.patterns, profile);
  return { images, rendered, graph, selected, unmatched, imagePrefix: prefix, baseImageRef };
}

/** Writes each selected image's build context (rendered Dockerfile and its files) under workDir/<name>/. */
export function writeContexts(tree: PreparedTree, workDir: string): void {
  for (const name of tree.selected) {
    const image = tree.images.get(name)!;
    const target = join(workDir, name);
    rmSync(target, { recursive: true, force: true });
    mkdirSync(target, { recursive: true });
    writeFileSync(join(target, 'Dockerfile'), tree.rendered.get(name)!.dockerfile);
    for (const file of image.contextFiles) {
      const destination = join(target, file);
      mkdirSync(dirname(destination), { recursive: true });
      copyFileSync(join(image.dir, file), destination);
      chmodSync(destination, statSync(join(image.dir, file)).mode & 0o7777);
    }
  }
}

export interface BuildDependencies {
  engine: ImageEngine;
  registry?: RegistryClient;
  events?: SchedulerEvents & { onLog?(line: string): void };
}

export async function buildTree(tree: PreparedTree, options: BuildOptions, deps: BuildDependencies): Promise<BuildSummary> {
  const { engine, registry } = deps;
  const note = deps.events?.onLog ?? (() => {});
  await engine.ping();
  if (options.push) {
    if (!registry) throw new InputError('--push needs --registry');
    await registry.ping();
  }
  writeContexts(tree, options.workDir);
  if (options.logsDir) mkdirSync(options.logsDir, { recursive: true });

  const needsBase = [...tree.selected].some((name) => !tree.graph.get(name)!.parent);
  const base = needsBase ? await ensureBaseImage(engine, { baseImage: options.baseImage, mirror: options.mirror, suite: options.suite }, note) : null;

  const keys = new Map<string, string>();
  for (const name of topologicalOrder(tree.graph, tree.selected)) {
    const node = tree.graph.get(name)!;
    const parentKey = node.parent ? keys.get(node.parent)! : await externalParentKey(engine, node.externalFrom!, base);
    keys.set(
      name,
      buildKey({
        dockerfile: tree.rendered.get(name)!.dockerfile,
        contextDir: tree.images.get(name)!.dir,
        contextFiles: tree.images.get(name)!.contextFiles,
        buildArgs: options.buildArgs,
        parentKey,
      }),
    );
  }

  const ref = (name: string): string => `${tree.imagePrefix}${name}:${options.tag}`;
  const repoOf = (name: string): string => `${options.namespace}/${name}`;
  const logTo = (name: string) => (line: string) => {
    if (options.logsDir) appendFileSync(join(options.logsDir, `${name}.log`), `${line}\n`);
  };
  const rebuildAll = options.force || options.noCache;

  const results = await runTree(
    tree.graph,
    tree.selected,
    { threads: options.threads, retries: options.retries },
    {
      async build(name, attempt) {
        const key = keys.get(name)!;
        const log = logTo(name);
        if (!rebuildAll) {
          const local = await engine.inspectImage(ref(name));
          if (local?.labels[BUILD_KEY_LABEL] === key) return { status: 'skipped', reason: 'up to date (build key present locally)' };
          if (registry && (await registry.imageLabels(repoOf(name), options.tag))?.[BUILD_KEY_LABEL] === key) {
            // Children build FROM this reference, so it must be local and current.
            await engine.pull(ref(name), log);
            return { status: 'skipped', reason: 'up to date (build key present in the registry)' };
          }
        }
        log(`--- build ${ref(name)} (attempt ${attempt}, key ${key})`);
        await engine.build(
          {
            contextDir: join(options.workDir, name),
            files: ['Dockerfile', ...tree.images.get(name)!.contextFiles],
            tag: ref(name),
            labels: { [BUILD_KEY_LABEL]: key, 'org.kolla-ts.image': name },
            buildArgs: options.buildArgs,
            noCache: options.noCache,
            networkMode: 'host',
          },
          log,
        );
        return { status: 'built' };
      },
      ...(options.push && registry
        ? {
            async push(name: string, attempt: number) {
              if ((await registry.imageLabels(repoOf(name), options.tag))?.[BUILD_KEY_LABEL] === keys.get(name)) return;
              logTo(name)(`--- push ${ref(name)} (attempt ${attempt})`);
              await engine.push(ref(name), logTo(name));
            },
          }
        : {}),
    },
    deps.events,
  );
  return summarise(results, tree.unmatched);
}

async function externalParentKey(engine: ImageEngine, from: string, base: { ref: string; id: string } | null): Promise<string> {
  if (base && from === base.ref) return base.id;
  const found = await engine.inspectImage(from);
  // An absent external image is pulled by the build itself; its name is all we can key on.
  return found?.id ?? from;
}

export function summarise(results: ReadonlyMap<string, ImageResult>, unmatched: string[]): BuildSummary {
  const summary: BuildSummary = { built: [], failed: [], skipped: [], unmatched };
  for (const [name, result] of [...results].sort(([a], [b]) => a.localeCompare(b))) {
    if (result.status === 'built') summary.built.push(name);
    else if (result.status === 'skipped') summary.skipped.push({ name, reason: result.reason ?? 'up to date' });
    else summary.failed.push({ name, status: result.status, ...(result.reason ? { reason: result.reason } : {}) });
  }
  return summary;
}
