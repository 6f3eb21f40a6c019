/**
 * The project's own roles, templates and image tree, for unit tests that
 * check what a real service renders or which profiles build it.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { prepareTree, type BuildOptions } from '../../src/build/builder.ts';
import { selectImages } from '../../src/build/graph.ts';
import { loadProfiles } from '../../src/build/images.ts';
import type { HostFacts } from '../../src/config/context.ts';
import { loadGlobals, type Globals } from '../../src/config/globals.ts';
import type { Passwords } from '../../src/config/passwords.ts';
import { ConfigRenderer } from '../../src/config/templates.ts';
import { globalsInputFor } from '../../src/deploy/session.ts';
import { loadInventory } from '../../src/inventory/inventory.ts';
import { computeDesiredState, type DesiredState } from '../../src/plan/desired.ts';
import { loadRoles, type Role } from '../../src/plan/roles.ts';
import { PROJECT_ROOT } from './environment.ts';

export const PROJECT_ROLES = loadRoles(join(PROJECT_ROOT, 'roles'));

/** A value for every password any role needs, each distinct and 40 characters long (genpwd's length). */
export const ROLE_PASSWORDS: Passwords = Object.fromEntries(
  [...new Set(PROJECT_ROLES.flatMap((r) => r.passwords))].map((key, i) => [key, `${key}-value-${i}-`.padEnd(40, 'x')]),
);

/** One host in every group: control, network and compute. */
const ONE_HOST = 'hosts:\n  ctl1: {connection: local}\ngroups:\n  control: [ctl1]\n  network: [ctl1]\n  compute: [ctl1]\n';

export interface RenderInput {
  /** Lines added to globals.yml after the VIP and the external interface. */
  globals?: string;
  inventory?: string;
  facts?: Map<string, HostFacts>;
  passwords?: Passwords;
  services?: string[];
  /** Files of the operator's config/ directory (overrides, an existing Ceph's files), by path under it. */
  custom?: Record<string, string>;
  /** Instead of the project's roles (a role changed by the test). */
  roles?: Role[];
}

/** The real roles' desired state: globals.yml as given, every config file rendered. */
export function renderRoles(input: RenderInput = {}): { state: DesiredState; globals: Globals } {
  const dir = mkdtempSync(join(tmpdir(), 'kolla-ts-roles-'));
  writeFileSync(join(dir, 'globals.yml'), `kolla_internal_vip_address: 198.51.100.10\nneutron_external_interface: eth1\n${input.globals ?? ''}`);
  writeFileSync(join(dir, 'inventory.yml'), input.inventory ?? ONE_HOST);
  for (const [path, content] of Object.entries(input.custom ?? {})) {
    mkdirSync(dirname(join(dir, 'config', path)), { recursive: true });
    writeFileSync(join(dir, 'config', path), content);
  }
  const roles = input.roles ?? PROJECT_ROLES;
  const { values } = loadGlobals(join(dir, 'globals.yml'), dir, globalsInputFor(roles));
  const state = computeDesiredState({
    roles,
    globals: values,
    passwords: input.passwords ?? ROLE_PASSWORDS,
    inventory: loadInventory(join(dir, 'inventory.yml')),
    facts: input.facts ?? new Map([['ctl1', { apiAddress: '198.51.100.1' }]]),
    renderer: new ConfigRenderer(join(PROJECT_ROOT, 'config-templates')),
    customDir: join(dir, 'config'),
    ...(input.services ? { services: input.services } : {}),
  });
  return { state, globals: values };
}

/** Build options over the project's image tree; nothing is built from them, only the graph prepared. */
export function projectBuildOptions(workName: string): BuildOptions {
  const images = join(PROJECT_ROOT, 'images');
  return {
    imageDirs: [images],
    usersFile: join(images, 'users.yml'),
    profileFiles: [],
    patterns: [],
    namespace: 'kolla',
    tag: 'zed',
    push: false,
    threads: 1,
    retries: 0,
    noCache: false,
    force: false,
    templateOverrides: [],
    buildArgs: {},
    mirror: 'http://deb.debian.org/debian',
    suite: 'bookworm',
    workDir: join(tmpdir(), workName),
  };
}

/** The project's image graph. */
export function projectImageGraph(workName: string) {
  return prepareTree(projectBuildOptions(workName)).graph;
}

/** The images a named profile of images/profiles.yml builds whose names start with `prefix`, sorted. */
export function profileImages(profile: string, prefix: string): string[] {
  const profiles = loadProfiles([join(PROJECT_ROOT, 'images', 'profiles.yml')]);
  const selected = selectImages(projectImageGraph(`kolla-ts-profile-${profile}`), [], { name: profile, patterns: profiles.get(profile)! }).selected;
  return [...selected].filter((image) => image.startsWith(prefix)).sort();
}
