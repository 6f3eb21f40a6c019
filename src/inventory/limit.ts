import { InputError } from '../errors.ts';
import type { Inventory } from './inventory.ts';

/**
 * Ansible's host patterns (`--limit`): elements separated by commas (or
 * colons when there is no comma); each a host name, a group name, a glob
 * (`compute*`), a regex (`~^ctl\d+$`), `all` or `*`. `!x` removes x's
 * hosts, `&x` keeps only hosts also in x; as in Ansible, additions apply
 * first, then intersections, then exclusions, whatever their order. An
 * element that matches nothing is an error. Hosts come back in inventory order.
 */
export function matchHosts(inventory: Pick<Inventory, 'hosts' | 'groups'>, pattern: string): string[] {
  const elements = splitPattern(pattern);
  if (elements.length === 0) throw new InputError(`host pattern "${pattern}" is empty`);
  const all = [...inventory.hosts.keys()];
  const grouped = new Set([...inventory.groups.values()].flat());
  const groups = new Map([...inventory.groups, ['all', all], ['ungrouped', all.filter((h) => !grouped.has(h))]]);

  const resolveTerm = (element: string, term: string): Set<string> => {
    if (term === '') throw new InputError(`host pattern element "${element}" names nothing`);
    if (term === 'all' || term === '*') return new Set(all);
    const test = termMatcher(term);
    const matchedGroups = [...groups.keys()].filter(test);
    // As Ansible: a plain name that is a group means the group; globs and regexes also match host names.
    const matchedHosts = matchedGroups.length === 0 || /^~|[*?[]/.test(term) ? all.filter(test) : [];
    const hosts = new Set([...matchedGroups.flatMap((g) => groups.get(g)!), ...matchedHosts]);
    if (matchedGroups.length === 0 && matchedHosts.length === 0) throw new InputError(`host pattern "${element}" matches no host or group`);
    return hosts;
  };

  const additions = elements.filter((e) => !e.startsWith('!') && !e.startsWith('&'));
  const selected = new Set(additions.length === 0 ? all : additions.flatMap((e) => [...resolveTerm(e, e)]));
  for (const element of elements.filter((e) => e.startsWith('&'))) {
    const keep = resolveTerm(element, element.slice(1));
    for (const host of selected) if (!keep.has(host)) selected.delete(host);
  }
  for (const element of elements.filter((e) => e.startsWith('!'))) {
    for (const host of resolveTerm(element, element.slice(1))) selected.delete(host);
  }
  if (selected.size === 0) throw new InputError(`host pattern "${pattern}" leaves no host`);
  return all.filter((h) => selected.has(h));
}

/** Commas separate; without a comma, colons do (outside a [...] class, so `node[1:3]` stays whole). */
function splitPattern(pattern: string): string[] {
  const parts = pattern.includes(',') ? pattern.split(',') : pattern.split(/:(?![^[]*\])/);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

function termMatcher(term: string): (name: string) => boolean {
  if (!/^~|[*?[]/.test(term)) return (name) => name === term;
  let regex: RegExp;
  try {
    regex = term.startsWith('~') ? new RegExp(term.slice(1)) : new RegExp(`^${globToRegex(term)}$`);
  } catch {
    throw new InputError(`host pattern "${term}" is not a valid ${term.startsWith('~') ? 'regular expression' : 'glob'}`);
  }
  return (name) => regex.test(name);
}

/** fnmatch: `*`, `?`, `[abc]`, `[!abc]`; an unclosed `[` is a literal. */
function globToRegex(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') out += '.*';
    else if (c === '?') out += '.';
    else if (c === '[' && glob.indexOf(']', i + 2) > 0) {
      const close = glob.indexOf(']', i + 2);
      let body = glob.slice(i + 1, close);
      const negate = body.startsWith('!');
      if (negate) body = body.slice(1);
      out += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      i = close;
    } else out += c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
  }
  return out;
}
