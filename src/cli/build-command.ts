import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { buildTree, prepareTree, writeContexts, type BuildOptions, type BuildSummary } from '../build/builder.ts';
import { dependencyTree, toDot, topologicalOrder } from '../build/graph.ts';
import { DEFAULT_MIRROR, DEFAULT_SUITE } from '../build/base-rootfs.ts';
import { DockerodeImageEngine } from '../engine/docker.ts';
import { RegistryClient } from '../engine/registry.ts';
import { BuildFailedError, InputError } from '../errors.ts';
import { createProgress } from './progress.ts';
import { PROJECT_ROOT, collect, positiveInt } from './shared.ts';

export function registerBuild(program: Command): void {
  program
    .command('build')
    .description('build the image tree (base → openstack-base → <project>-base → services)')
    .argument('[regex...]', 'build images whose name matches, and their ancestors')
    .option('--profile <name>', 'a named set of images from images/profiles.yml (or --profiles-file)')
    .option('--profiles-file <file>', 'extra profiles file; its names win over the built-in ones', collect, [])
    .option('--threads <n>', 'images built at once', (v) => positiveInt(v), 2)
    .option('--retries <n>', 'extra attempts per image (build and push)', (v) => positiveInt(v, true), 0)
    .option('--registry <host:port>', 'registry to name, push to and look build keys up in')
    .option('--namespace <name>', 'image namespace', 'kolla')
    .option('--tag <tag>', 'image tag', 'zed')
    .option('--push', 'push built images to --registry')
    .option('--no-cache', 'rebuild every selected image without the engine layer cache')
    .option('--force', 'rebuild even when an image with the same build key exists')
    .option('--template-override <file>', 'YAML file replacing blocks / adding or removing packages per image (repeatable)', collect, [])
    .option('--template-dir <dir>', 'extra image directory; its images replace same-named ones (repeatable)', collect, [])
    .option('--build-arg <key=value>', 'docker build argument (repeatable)', collect, [])
    .option('--base-image <ref>', 'start base from this image (e.g. debian:bookworm) instead of a debootstrapped root')
    .option('--debian-mirror <url>', 'Debian mirror for debootstrap', DEFAULT_MIRROR)
    .option('--work-dir <dir>', 'where rendered build contexts are written', join(PROJECT_ROOT, '.kolla-ts-work', 'build'))
    .option('--template-only', 'render the build contexts into --work-dir and stop')
    .option('--logs-dir <dir>', 'write one build log per image here')
    .option('--summary-json <file>', 'write the build summary as JSON')
    .option('--list-images', 'print the selected images and exit')
    .option('--list-dependencies', 'print the selected tree as JSON and exit')
    .option('--save-dependency <file>', 'write the selected tree as Graphviz dot and exit')
    .option('--json', 'print the summary as JSON on stdout')
    .action(async (patterns: string[], flags: Record<string, unknown>) => {
      const options = toBuildOptions(patterns, flags);
      const tree = prepareTree(options);
      if (flags.listImages) {
        for (const name of topologicalOrder(tree.graph, tree.selected)) console.log(name);
        return;
      }
      if (flags.listDependencies) {
        console.log(JSON.stringify(dependencyTree(tree.graph, tree.selected), null, 2));
        return;
      }
      if (flags.saveDependency) {
        writeFileSync(String(flags.saveDependency), toDot(tree.graph, tree.selected));
        return;
      }
      if (flags.templateOnly) {
        writeContexts(tree, options.workDir);
        console.log(`rendered ${tree.selected.size} build contexts into ${options.workDir}`);
        return;
      }

      const names = topologicalOrder(tree.graph, tree.selected);
      const progress = createProgress(names, Boolean(flags.json));
      let summary: BuildSummary;
      try {
        summary = await buildTree(tree, options, {
          engine: new DockerodeImageEngine(),
          ...(options.registry ? { registry: new RegistryClient(options.registry) } : {}),
          events: {
            onLog: (line) => progress.note(line),
            onStart: (name, attempt) => progress.start(name, attempt > 1 ? `building (attempt ${attempt})` : 'building'),
            onPushStart: (name) => progress.start(name, 'pushing'),
            onFinish: (name, result) =>
              progress.finish(name, result.status === 'built' || result.status === 'skipped', result.status + (result.reason ? `: ${result.reason}` : '')),
          },
        });
      } catch (error) {
        await progress.close(true);
        throw error;
      }
      await progress.close();
      if (flags.summaryJson) {
        mkdirSync(dirname(resolve(String(flags.summaryJson))), { recursive: true });
        writeFileSync(String(flags.summaryJson), JSON.stringify(summary, null, 2) + '\n');
      }
      if (flags.json) console.log(JSON.stringify(summary, null, 2));
      else printSummary(summary);
      if (summary.failed.length > 0) {
        throw new BuildFailedError(`${summary.failed.length} image(s) failed: ${summary.failed.map((f) => `${f.name} (${f.status})`).join(', ')}`);
      }
    });
}

function toBuildOptions(patterns: string[], flags: Record<string, unknown>): BuildOptions {
  const buildArgs: Record<string, string> = {};
  for (const pair of flags.buildArg as string[]) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new InputError(`--build-arg "${pair}" is not KEY=VALUE`);
    buildArgs[pair.slice(0, at)] = pair.slice(at + 1);
  }
  if (flags.push && !flags.registry) throw new InputError('--push needs --registry HOST:PORT');
  const imagesDir = join(PROJECT_ROOT, 'images');
  return {
    imageDirs: [imagesDir, ...(flags.templateDir as string[]).map((d) => resolve(d))],
    usersFile: join(imagesDir, 'users.yml'),
    profileFiles: [join(imagesDir, 'profiles.yml'), ...(flags.profilesFile as string[])],
    patterns,
    ...(flags.profile ? { profile: String(flags.profile) } : {}),
    ...(flags.registry ? { registry: String(flags.registry) } : {}),
    namespace: String(flags.namespace),
    tag: String(flags.tag),
    push: Boolean(flags.push),
    threads: flags.threads as number,
    retries: flags.retries as number,
    // commander turns --no-cache into cache: false
    noCache: flags.cache === false,
    force: Boolean(flags.force),
    templateOverrides: flags.templateOverride as string[],
    buildArgs,
    ...(flags.baseImage ? { baseImage: String(flags.baseImage) } : {}),
    mirror: String(flags.debianMirror),
    suite: DEFAULT_SUITE,
    workDir: resolve(String(flags.workDir)),
    ...(flags.logsDir ? { logsDir: resolve(String(flags.logsDir)) } : {}),
  };
}

function printSummary(summary: BuildSummary): void {
  console.log(`built: ${summary.built.length ? summary.built.join(', ') : 'none'}`);
  console.log(`up to date: ${summary.skipped.length ? summary.skipped.map((s) => s.name).join(', ') : 'none'}`);
  for (const failure of summary.failed) console.log(`failed: ${failure.name} (${failure.status})${failure.reason ? `: ${failure.reason}` : ''}`);
  if (summary.unmatched.length) console.log(`not selected: ${summary.unmatched.length}`);
}
