import { errorAt, isPlainObject, readYaml, type LocatedYaml } from '../util/yaml.ts';

/**
 * A user's customisation of one image without forking images/:
 * named blocks replaced, packages added to or removed from its install line.
 */
export interface ImageOverride {
  blocks: Record<string, { content: string; source: string }>;
  packagesAdd: string[];
  packagesRemove: string[];
}

export type Overrides = Map<string, ImageOverride>;

/*
 * File format (YAML), one entry per image name:
 *
 *   keystone:
 *     blocks:
 *       header: |
 *         RUN echo customised
 *     packages:
 *       add: [vim]
 *       remove: [python3-ldap]
 *
 * Later files win over earlier ones block by block; package lists add up.
 */
export function loadOverrides(files: readonly string[], knownImages: ReadonlySet<string>): Overrides {
  const overrides: Overrides = new Map();
  for (const file of files) mergeOverrideFile(overrides, readYaml(file), knownImages);
  return overrides;
}

function mergeOverrideFile(overrides: Overrides, doc: LocatedYaml, knownImages: ReadonlySet<string>): void {
  if (doc.data === null || doc.data === undefined) return;
  if (!isPlainObject(doc.data)) throw errorAt(doc, [], 'a template override file maps image names to overrides');
  for (const [image, entry] of Object.entries(doc.data)) {
    if (!knownImages.has(image)) throw errorAt(doc, [image], `unknown image "${image}"`);
    if (!isPlainObject(entry)) throw errorAt(doc, [image], 'expected a mapping with "blocks" and/or "packages"');
    // No prototype: a block named __proto__ is then kept (and refused as unknown), not made the object's prototype.
    const override = overrides.get(image) ?? { blocks: Object.create(null) as ImageOverride['blocks'], packagesAdd: [], packagesRemove: [] };
    for (const [key, value] of Object.entries(entry)) {
      if (key === 'blocks') {
        if (!isPlainObject(value)) throw errorAt(doc, [image, key], 'expected a mapping of block name to Dockerfile text');
        for (const [block, content] of Object.entries(value)) {
          if (typeof content !== 'string') throw errorAt(doc, [image, key, block], 'block content must be a string');
          override.blocks[block] = { content, source: `${doc.file}:${doc.lineOf([image, key, block]) ?? '?'}` };
        }
      } else if (key === 'packages') {
        if (!isPlainObject(value)) throw errorAt(doc, [image, key], 'expected "add" and/or "remove" lists');
        for (const [op, list] of Object.entries(value)) {
          if (op !== 'add' && op !== 'remove') throw errorAt(doc, [image, key, op], `unknown key "${op}" (expected add or remove)`);
          if (!Array.isArray(list) || !list.every((p) => typeof p === 'string' && /^[a-z0-9][a-z0-9+.:=~-]*$/.test(p))) {
            throw errorAt(doc, [image, key, op], 'expected a list of Debian package names');
          }
          (op === 'add' ? override.packagesAdd : override.packagesRemove).push(...(list as string[]));
        }
      } else {
        throw errorAt(doc, [image, key], `unknown key "${key}" (expected blocks or packages)`);
      }
    }
    overrides.set(image, override);
  }
}
