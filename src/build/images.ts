import { readdirSync, statSync, existsSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { InputError } from '../errors.ts';
import { errorAt, isPlainObject, readYaml } from '../util/yaml.ts';

export const DOCKERFILE_TEMPLATE = 'Dockerfile.hbs';

/** An image as found on disk: a directory holding Dockerfile.hbs. */
export interface ImageSource {
  name: string;
  dir: string;
  /** Files of the build context besides the Dockerfile, relative to dir, sorted. */
  contextFiles: string[];
}

/**
 * Finds every image under the given roots. A later root's image replaces an
 * earlier one of the same name, which is how extra template directories
 * customise an image without forking images/.
 */
export function discoverImages(roots: readonly string[]): Map<string, ImageSource> {
  const images = new Map<string, ImageSource>();
  for (const root of roots) {
    if (!existsSync(root)) throw new InputError(`template directory does not exist: ${root}`);
    const seenInRoot = new Map<string, string>();
    walk(root, (dir) => {
      const name = basename(dir);
      const clash = seenInRoot.get(name);
      if (clash) throw new InputError(`two images are named "${name}": ${clash} and ${dir}`);
      seenInRoot.set(name, dir);
      images.set(name, { name, dir, contextFiles: listFiles(dir).filter((f) => f !== DOCKERFILE_TEMPLATE) });
    });
  }
  return images;
}

function walk(dir: string, onImage: (dir: string) => void): void {
  const entries = readdirSync(dir, { withFileTypes: true });
  if (entries.some((e) => e.isFile() && e.name === DOCKERFILE_TEMPLATE)) {
    onImage(dir);
    return;
  }
  for (const entry of entries) if (entry.isDirectory()) walk(join(dir, entry.name), onImage);
}

function listFiles(dir: string): string[] {
  const files: string[] = [];
  const visit = (current: string): void => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (statSync(path).isFile()) files.push(relative(dir, path));
    }
  };
  visit(dir);
  return files.sort();
}

export interface ServiceUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  groups: string[];
}

/** images/users.yml: the fixed uid/gid of every service user, the same in every image. */
export function loadUsers(file: string): ServiceUser[] {
  const doc = readYaml(file);
  if (!isPlainObject(doc.data)) throw errorAt(doc, [], 'expected a mapping of user name to {uid, gid, home, groups}');
  return Object.entries(doc.data).map(([name, entry]) => {
    if (!isPlainObject(entry)) throw errorAt(doc, [name], 'expected {uid, gid, home, groups}');
    const { uid, gid, home, groups = [] } = entry;
    if (!Number.isInteger(uid)) throw errorAt(doc, [name, 'uid'], 'uid must be an integer');
    if (!Number.isInteger(gid)) throw errorAt(doc, [name, 'gid'], 'gid must be an integer');
    if (typeof home !== 'string') throw errorAt(doc, [name, 'home'], 'home must be a path');
    if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'string')) throw errorAt(doc, [name, 'groups'], 'groups must be a list of names');
    return { name, uid: uid as number, gid: gid as number, home, groups: groups as string[] };
  });
}

/** Named sets of image regexes (images/profiles.yml plus any user files; later files win per name). */
export function loadProfiles(files: readonly string[]): Map<string, string[]> {
  const profiles = new Map<string, string[]>();
  for (const file of files) {
    const doc = readYaml(file);
    const root = isPlainObject(doc.data) ? doc.data.profiles : undefined;
    if (!isPlainObject(root)) throw errorAt(doc, ['profiles'], 'expected "profiles:" mapping names to lists of image regexes');
    for (const [name, list] of Object.entries(root)) {
      if (!Array.isArray(list) || !list.every((r) => typeof r === 'string')) {
        throw errorAt(doc, ['profiles', name], 'a profile is a list of image name regexes');
      }
      list.forEach((pattern, index) => {
        try {
          new RegExp(pattern as string);
        } catch {
          throw errorAt(doc, ['profiles', name, index], `invalid regex "${pattern}"`);
        }
      });
      profiles.set(name, list as string[]);
    }
  }
  return profiles;
}
