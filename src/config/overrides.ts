import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.ts';
import { mergeIni, parseIni, serializeIni } from './ini.ts';

export interface OverrideTarget {
  customDir: string;
  project: string;
  container: string;
  host: string;
  dest: string;
  ini: boolean;
}

/**
 * Applies the user's files under config/ to one rendered file, in one
 * precedence (later wins): global.conf and <project>.conf (for INI files
 * named after the project), <project>/<dest>,
 * <project>/<container>/<dest>, <project>/<host>/<dest>. A non-INI file is
 * replaced whole by the most specific override that exists.
 */
export function applyOverrides(rendered: string, target: OverrideTarget, renderedName: string): { content: string; sources: string[] } {
  const { customDir, project, container, host, dest } = target;
  const specific = [join(customDir, project, dest), join(customDir, project, container, dest), join(customDir, project, host, dest)];
  if (!target.ini) {
    const winner = specific.filter((f) => existsSync(f)).at(-1);
    return winner ? { content: readOverride(winner), sources: [winner] } : { content: rendered, sources: [] };
  }
  // global.conf and <project>.conf are for the project's own files (nova.conf, glance-api.conf), not helpers like ml2_conf.ini.
  const broad = dest.startsWith(project) ? [join(customDir, 'global.conf'), join(customDir, `${project}.conf`)] : [];
  const candidates = [...broad, ...specific].filter((f) => existsSync(f));
  if (candidates.length === 0) return { content: rendered, sources: [] };
  const merged = mergeIni(parseIni(rendered, renderedName), ...candidates.map((f) => parseIni(readOverride(f), f)));
  return { content: serializeIni(merged), sources: candidates };
}

/**
 * A file that only the operator can give (an existing Ceph cluster's
 * ceph.conf and keyrings): the most specific of config/<project>/<dest>,
 * <project>/<container>/<dest>, <project>/<host>/<dest>, whole. `candidates`
 * lists where it was looked for, for the error when none exists.
 */
export function customFile(target: Omit<OverrideTarget, 'ini'>): { content?: string; source?: string; candidates: string[] } {
  const { customDir, project, container, host, dest } = target;
  const candidates = [join(customDir, project, dest), join(customDir, project, container, dest), join(customDir, project, host, dest)];
  const source = candidates.filter((f) => existsSync(f)).at(-1);
  return source ? { content: readOverride(source), source, candidates } : { candidates };
}

/** An override path can exist and still not be a readable file (a directory, say). */
function readOverride(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new InputError(`cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { file });
  }
}
