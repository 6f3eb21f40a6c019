import { mkdtempSync, writeFileSync, cpSync, readFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { prepareTree, summarise, type BuildOptions } from '../../src/build/builder.ts';
import { dependencyTree, toDot, topologicalOrder } from '../../src/build/graph.ts';
import { buildKey } from '../../src/build/key.ts';
import { runTree, type ImageWork } from '../../src/build/scheduler.ts';
import { InputError, SelectionError, TemplateError } from '../../src/errors.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

function options(overrides: Partial<BuildOptions> = {}): BuildOptions {
  return {
    imageDirs: [join(FIXTURES, 'images')],
    usersFile: join(FIXTURES, 'users.yml'),
    profileFiles: [join(FIXTURES, 'profiles.yml')],
    patterns: [],
    namespace: 'kolla',
    tag: 'test',
    push: false,
    threads: 2,
    retries: 0,
    noCache: false,
    force: false,
    templateOverrides: [],
    buildArgs: {},
    mirror: 'http://deb.example/debian',
    suite: 'bookworm',
    workDir: mkdtempSync(join(tmpdir(), 'kolla-ts-work-')),
    ...overrides,
  };
}

function overrideFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'kolla-ts-override-')), 'override.yml');
  writeFileSync(file, text);
  return file;
}

describe('image graph', () => {
  it('reads each parent from the FROM line', () => {
    const tree = prepareTree(options());
    expect(tree.graph.get('keystone')!.parent).toBe('keystone-base');
    expect(tree.graph.get('keystone-base')!.parent).toBe('openstack-base');
    expect(tree.graph.get('base')!.parent).toBeNull();
    expect(tree.graph.get('base')!.externalFrom).toBe('kolla-ts/debian-rootfs:bookworm');
    expect(tree.graph.get('openstack-base')!.children).toEqual(['keystone-base', 'nova-base']);
  });

  it('uses the registry in image names and still finds parents', () => {
    const tree = prepareTree(options({ registry: '127.0.0.1:4000', namespace: 'cloud' }));
    expect(tree.rendered.get('keystone')!.from).toBe('127.0.0.1:4000/cloud/keystone-base:test');
    expect(tree.graph.get('keystone')!.parent).toBe('keystone-base');
  });

  it('orders parents before children and exports JSON and dot', () => {
    const tree = prepareTree(options());
    const order = topologicalOrder(tree.graph);
    expect(order.indexOf('base')).toBeLessThan(order.indexOf('openstack-base'));
    expect(order.indexOf('nova-base')).toBeLessThan(order.indexOf('nova-compute'));
    expect(dependencyTree(tree.graph)).toEqual({
      base: { 'openstack-base': { 'keystone-base': { keystone: {} }, 'nova-base': { 'nova-api': {}, 'nova-compute': {} } } },
    });
    expect(toDot(tree.graph)).toContain('"nova-base" -> "nova-compute";');
  });
});

describe('selection', () => {
  it('selects matches and their ancestors only', () => {
    const tree = prepareTree(options({ patterns: ['^keystone$'] }));
    expect([...tree.selected].sort()).toEqual(['base', 'keystone', 'keystone-base', 'openstack-base']);
    expect(tree.unmatched).toEqual(['nova-api', 'nova-base', 'nova-compute']);
  });

  it('selects by profile', () => {
    const tree = prepareTree(options({ profile: 'compute' }));
    expect(tree.selected.has('nova-api')).toBe(true);
    expect(tree.selected.has('nova-base')).toBe(true);
    expect(tree.selected.has('keystone')).toBe(false);
  });

  it('names a regex that matches nothing', () => {
    expect(() => prepareTree(options({ patterns: ['keystone', 'no-such-image'] }))).toThrow(SelectionError);
    expect(() => prepareTree(options({ patterns: ['no-such-image'] }))).toThrow(/regex "no-such-image" matches no image/);
  });

  it('names an unknown profile', () => {
    expect(() => prepareTree(options({ profile: 'nope' }))).toThrow(/unknown profile "nope" \(known: compute, identity\)/);
  });
});

describe('overrides', () => {
  it('replaces named blocks and adds or removes packages', () => {
    const file = overrideFile('keystone:\n  blocks:\n    header: "RUN echo custom-header"\n    footer: "RUN echo custom-footer"\n  packages:\n    add: [vim]\n    remove: [pkg-keystone]\n');
    const tree = prepareTree(options({ templateOverrides: [file] }));
    const dockerfile = tree.rendered.get('keystone')!.dockerfile;
    expect(dockerfile).toContain('RUN echo custom-header');
    expect(dockerfile).toContain('RUN echo custom-footer');
    expect(dockerfile).toMatch(/apt-get install -y --no-install-recommends vim /);
    expect(dockerfile).not.toContain('pkg-keystone');
    expect(tree.rendered.get('keystone-base')!.dockerfile).not.toContain('custom-header');
  });

  it('rejects an unknown image with file, line and key', () => {
    const file = overrideFile('keystone:\n  blocks: {}\nkeystnoe:\n  blocks: {}\n');
    expect(() => prepareTree(options({ templateOverrides: [file] }))).toThrow(`${file}:3 (key keystnoe): unknown image "keystnoe"`);
  });

  it('rejects a block the Dockerfile does not have', () => {
    const file = overrideFile('keystone:\n  blocks:\n    heder: "RUN true"\n');
    expect(() => prepareTree(options({ templateOverrides: [file] }))).toThrow(/names block "heder", which its Dockerfile does not have \(blocks: footer, header\)/);
  });

  it('rejects a YAML syntax error with its line', () => {
    const file = overrideFile('keystone:\n  blocks:\n    header: [unclosed\n');
    expect(() => prepareTree(options({ templateOverrides: [file] }))).toThrow(InputError);
    expect(() => prepareTree(options({ templateOverrides: [file] }))).toThrow(new RegExp(`${file}:\\d+: YAML syntax error`));
  });
});

describe('template errors', () => {
  it('name the template file and line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kolla-ts-images-'));
    cpSync(join(FIXTURES, 'images'), dir, { recursive: true });
    writeFileSync(join(dir, 'nova', 'nova-api', 'Dockerfile.hbs'), 'FROM {{image_prefix}}nova-base:{{tag}}\nRUN true\nRUN {{no_such_variable}}\n');
    const run = () => prepareTree(options({ imageDirs: [dir] }));
    expect(run).toThrow(TemplateError);
    expect(run).toThrow(`${join(dir, 'nova', 'nova-api', 'Dockerfile.hbs')}:3: cannot render`);
  });
});

describe('build keys', () => {
  it('change with the Dockerfile, a context file, its mode, build args and the parent key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kolla-ts-ctx-'));
    writeFileSync(join(dir, 'start.sh'), 'echo a');
    const inputs = { dockerfile: 'FROM x', contextDir: dir, contextFiles: ['start.sh'], buildArgs: {}, parentKey: 'p1' };
    const key = buildKey(inputs);
    expect(buildKey(inputs)).toBe(key);
    expect(buildKey({ ...inputs, dockerfile: 'FROM y' })).not.toBe(key);
    expect(buildKey({ ...inputs, parentKey: 'p2' })).not.toBe(key);
    expect(buildKey({ ...inputs, buildArgs: { A: '1' } })).not.toBe(key);
    chmodSync(join(dir, 'start.sh'), 0o755);
    const executable = buildKey(inputs);
    expect(executable).not.toBe(key);
    writeFileSync(join(dir, 'start.sh'), 'echo b');
    expect(buildKey(inputs)).not.toBe(executable);
    expect(readFileSync(join(dir, 'start.sh'), 'utf8')).toBe('echo b');
  });
});

describe('scheduler', () => {
  const tree = prepareTree(options());

  it('starts a child only after its parent and runs at most N at once', async () => {
    const finished = new Set<string>();
    let running = 0;
    let peak = 0;
    const work: ImageWork = {
      async build(name) {
        const parent = tree.graph.get(name)!.parent;
        if (parent) expect(finished.has(parent)).toBe(true);
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 5));
        running--;
        finished.add(name);
        return { status: 'built' };
      },
    };
    const results = await runTree(tree.graph, tree.selected, { threads: 2, retries: 0 }, work);
    expect(results.size).toBe(7);
    expect(peak).toBe(2);
  });

  it('marks every descendant of a failure parent_error and builds the rest', async () => {
    const built: string[] = [];
    const work: ImageWork = {
      async build(name) {
        if (name === 'nova-base') throw new Error('apt failed');
        built.push(name);
        return { status: 'built' };
      },
    };
    const results = await runTree(tree.graph, tree.selected, { threads: 3, retries: 0 }, work);
    expect(results.get('nova-base')).toMatchObject({ status: 'error', reason: 'apt failed' });
    expect(results.get('nova-api')!.status).toBe('parent_error');
    expect(results.get('nova-compute')!.status).toBe('parent_error');
    expect(built.sort()).toEqual(['base', 'keystone', 'keystone-base', 'openstack-base']);
    const summary = summarise(results, []);
    expect(summary.failed.map((f) => `${f.name}:${f.status}`)).toEqual(['nova-api:parent_error', 'nova-base:error', 'nova-compute:parent_error']);
  });

  it('retries a failed build and reports push errors separately', async () => {
    const attempts = new Map<string, number>();
    const work: ImageWork = {
      async build(name, attempt) {
        attempts.set(name, attempt);
        if (name === 'base' && attempt < 3) throw new Error('flaky mirror');
        return { status: name === 'openstack-base' ? 'skipped' : 'built' };
      },
      async push(name) {
        if (name === 'keystone') throw new Error('registry said no');
      },
    };
    const results = await runTree(tree.graph, tree.selected, { threads: 2, retries: 2 }, work);
    expect(results.get('base')).toMatchObject({ status: 'built', attempts: 3 });
    expect(results.get('openstack-base')!.status).toBe('skipped');
    expect(results.get('keystone')).toMatchObject({ status: 'push_error', reason: 'registry said no' });
    expect(results.get('nova-api')!.status).toBe('built');
  });
});
