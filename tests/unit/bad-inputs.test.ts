import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { selectImages } from '../../src/build/graph.ts';
import { discoverImages, loadProfiles, loadUsers } from '../../src/build/images.ts';
import { loadOverrides } from '../../src/build/overrides.ts';
import { renderDockerfile } from '../../src/build/render.ts';
import { main } from '../../src/cli/main.ts';
import { loadGlobals } from '../../src/config/globals.ts';
import { applyOverrides } from '../../src/config/overrides.ts';
import { loadPasswords } from '../../src/config/passwords.ts';
import { exitCodeFor, InputError } from '../../src/errors.ts';
import { loadInventory } from '../../src/inventory/inventory.ts';
import { loadRoles } from '../../src/plan/roles.ts';
import { projectImageGraph } from '../helpers/project.ts';
import { badInputArbitraries, badInputs, DEPLOY_TARGETS, GLOBALS_SCHEMA_INPUT, REQUIRED_PASSWORDS, validPassword, type BadInput } from '../helpers/bad-inputs.ts';

const PROJECT_ROOT = join(import.meta.dirname, '..', '..');
const IMAGES_DIR = join(PROJECT_ROOT, 'images');
const IMAGES = discoverImages([IMAGES_DIR]);
const USERS = loadUsers(join(IMAGES_DIR, 'users.yml'));
const RENDER_CONTEXT = { base_image: 'kolla-ts/debian-rootfs:bookworm', image_prefix: 'kolla/', tag: 'zed' };
const GRAPH = projectImageGraph('kolla-ts-bad-inputs-work');

/** A valid deployment the deploy-side cases are laid over, for runs through main(). */
const BASELINE: Record<string, string> = {
  'globals.yml': 'kolla_internal_vip_address: 127.0.0.1\nnetwork_interface: lo\nneutron_external_interface: kolla-ext0\n',
  'passwords.yml': REQUIRED_PASSWORDS.map((key) => `${key}: ${validPassword(key, `baseline-${key.length}-secret`)}`).join('\n') + '\n',
  'inventory.yml': 'hosts:\n  localhost: {connection: local}\ngroups:\n  control: [localhost]\n  network: [localhost]\n  compute: [localhost]\n',
};

/** Every case gets its own directory under this one, removed at the end. */
const SCRATCH = mkdtempSync(join(tmpdir(), 'kolla-ts-bad-inputs-'));

function writeFiles(files: Record<string, string>): string {
  const dir = mkdtempSync(join(SCRATCH, 'case-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

/** Calls the loader the CLI calls for the case's target; returns what it threw. */
function runLoader(item: BadInput, dir: string): unknown {
  try {
    switch (item.target) {
      case 'inventory':
        loadInventory(join(dir, item.inventory!));
        break;
      case 'globals':
        loadGlobals(join(dir, 'globals.yml'), dir, GLOBALS_SCHEMA_INPUT);
        break;
      case 'passwords':
        loadPasswords(join(dir, 'passwords.yml'), REQUIRED_PASSWORDS);
        break;
      case 'config-override':
        applyOverrides(
          '[DEFAULT]\ndebug = False\n',
          { customDir: join(dir, 'config'), project: 'keystone', container: 'keystone', host: 'localhost', dest: 'keystone.conf', ini: true },
          'keystone/keystone.conf.hbs',
        );
        break;
      case 'template-override':
        for (const [image, override] of loadOverrides([join(dir, 'override.yml')], new Set(IMAGES.keys()))) renderDockerfile(IMAGES.get(image)!, RENDER_CONTEXT, USERS, override);
        break;
      case 'role':
        loadRoles(join(dir, 'roles'));
        break;
      case 'image-regex':
        selectImages(GRAPH, item.regexes!);
        break;
      case 'profile':
        loadProfiles([join(dir, 'profiles.yml')]);
        break;
    }
  } catch (error) {
    return error;
  }
  return undefined;
}

/** Whether an error text names what the case expects; the reason when it does not. */
function namesExpected(item: BadInput, dir: string, text: string): string | undefined {
  const { file, line, key, mentions } = item.expect;
  const path = file === undefined ? undefined : join(dir, file);
  if (path && !text.includes(path)) return `does not name ${file}`;
  if (path && line !== undefined && !text.includes(`${path}:${line}:`) && !text.includes(`${path}:${line} `)) return `does not name line ${line}`;
  if (key !== undefined && !text.includes(`(key ${key})`)) return `does not name key ${key}`;
  if (mentions !== undefined && !text.includes(`"${mentions}"`)) return `does not quote ${JSON.stringify(mentions)}`;
  return undefined;
}

/** Why the case did not hold in-process, or undefined when it did. */
function inProcessFailure(item: BadInput): string | undefined {
  const dir = writeFiles(item.files);
  const error = runLoader(item, dir);
  if (error === undefined) return 'accepted';
  if (!(error instanceof InputError) || exitCodeFor(error) !== 2) return `exit ${exitCodeFor(error)}: ${String((error as Error)?.stack ?? error).split('\n').slice(0, 3).join(' | ')}`;
  return namesExpected(item, dir, error.message);
}

/** The command line that reads the case's files, run through main() with its output captured. */
async function cliFailure(item: BadInput): Promise<string | undefined> {
  let argv: string[];
  let dir: string;
  if (DEPLOY_TARGETS.includes(item.target)) {
    dir = writeFiles({ ...BASELINE, ...item.files });
    argv = ['plan', '-i', join(dir, item.inventory ?? 'inventory.yml'), '--configdir', dir];
  } else {
    dir = writeFiles(item.files);
    const extra =
      item.target === 'template-override'
        ? ['--template-override', join(dir, 'override.yml')]
        : item.target === 'profile'
          ? ['--profiles-file', join(dir, 'profiles.yml'), '--profile', 'mine']
          : (item.regexes ?? []);
    argv = ['build', '--list-images', ...extra];
  }
  const output: string[] = [];
  const capture = (...args: unknown[]): void => void output.push(args.map(String).join(' '));
  const errorSpy = vi.spyOn(console, 'error').mockImplementation(capture);
  const logSpy = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  let code: number;
  try {
    code = await main(argv);
  } finally {
    errorSpy.mockRestore();
    logSpy.mockRestore();
  }
  const stderr = output.join('\n');
  if (code !== 2) return `exit ${code}: ${stderr.slice(0, 300)}`;
  if (stderr.includes('internal error') || /^\s+at /m.test(stderr)) return `stack trace: ${stderr.slice(0, 300)}`;
  return namesExpected(item, dir, stderr);
}

const tally = { tried: 0, held: 0, failures: [] as string[] };
function record(item: BadInput, failure: string | undefined, via: string): boolean {
  tally.tried++;
  if (failure === undefined) tally.held++;
  else tally.failures.push(`[${via}] ${item.name}: ${failure}`);
  return failure === undefined;
}

describe('malformed inputs end in exit 2 naming file, line and key', () => {
  const corpus = badInputs();

  afterAll(() => {
    console.log(`bad inputs: ${tally.tried} tried, ${tally.held} held`);
    rmSync(SCRATCH, { recursive: true, force: true });
  });

  it('has hundreds of cases across every target', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(300);
    expect(new Set(corpus.map((c) => c.target))).toEqual(new Set(Object.keys(badInputArbitraries)));
  });

  it('every case, in-process through the loader the CLI calls', () => {
    const before = tally.failures.length;
    for (const item of corpus.filter((c) => !c.cliOnly)) record(item, inProcessFailure(item), 'loader');
    expect(tally.failures.slice(before)).toEqual([]);
  });

  it('a sample, and every case only the command checks, through main()', { timeout: 120_000 }, async () => {
    const before = tally.failures.length;
    // Roles and config/ overrides are read only after hosts are connected (or from the project itself): loaders only.
    const sample = corpus.filter((c, index) => c.cliOnly || (index % 8 === 0 && c.target !== 'role' && c.target !== 'config-override'));
    for (const item of sample) record(item, await cliFailure(item), 'main');
    expect(tally.failures.slice(before)).toEqual([]);
  });

  for (const [target, arbitrary] of Object.entries(badInputArbitraries)) {
    it(`property: any generated ${target} input is refused`, () => {
      const before = tally.failures.length;
      fc.assert(fc.property(arbitrary, (item) => record(item, inProcessFailure(item), 'property')), { numRuns: 40 });
      expect(tally.failures.slice(before)).toEqual([]);
    });
  }
});
