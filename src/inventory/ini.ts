import { InputError } from '../errors.ts';
import { EXPECTED, isGroupName, isHostName } from '../util/values.ts';
import { type InventorySource, type SourceGroup, type SourceHost } from './source.ts';
import { typedVar, type HostVars, type VarValue } from './vars.ts';

/** Ansible's section header: `[name]`, `[name:children]`, `[name:vars]`. */
const SECTION = /^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$/;
const CHILD_LINE = /^([^:\]\s]+)\s*(?:#.*)?$/;

/** Hosts one range pattern may expand to; beyond this it is a typo (`[1:10000000]`), not a fleet. */
export const MAX_RANGE_HOSTS = 10_000;

/** Whether a file's first meaningful line is an INI section header. */
export function looksLikeIni(text: string): boolean {
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    return SECTION.test(line);
  }
  return false;
}

/*
 * kolla-ansible's INI inventory, read as Ansible's ini plugin reads it:
 *
 *   control01 ansible_host=198.18.0.11       # before any section: ungrouped
 *   [control]
 *   control[01:03] ansible_user=kolla        # ranges keep zero padding; [a:c], [1:9:2]
 *   localhost ansible_connection=local
 *   [nova-compute:children]
 *   compute
 *   [compute:vars]
 *   network_interface=eth1
 *
 * Host lines are split like a shell (quotes, `#` comments); values that are
 * Python literals become numbers and booleans (22, True), the rest strings.
 */
export function parseIniInventory(text: string, file: string): InventorySource {
  const hosts = new Map<string, SourceHost>();
  const groups = new Map<string, SourceGroup>();
  const lines = new Map<string, number>();
  // Groups named in [x:vars] or as a child before any [x] or [x:children] declares them.
  const pending = new Map<string, { line: number; message: string }>();
  const group = (name: string, line: number): SourceGroup => {
    let entry = groups.get(name);
    if (!entry) {
      entry = { hosts: [], children: [], vars: {} };
      groups.set(name, entry);
      lines.set(['groups', name].join('\u0000'), line);
    }
    return entry;
  };
  const declare = (name: string, line: number): SourceGroup => {
    pending.delete(name);
    return group(name, line);
  };
  for (const implicit of ['all', 'ungrouped']) groups.set(implicit, { hosts: [], children: [], vars: {} });

  let current = 'ungrouped';
  let state: 'hosts' | 'children' | 'vars' = 'hosts';
  let varsSeen = new Set<string>();
  text.split('\n').forEach((raw, index) => {
    const lineNo = index + 1;
    const line = raw.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const fail = (message: string, key?: string): InputError => new InputError(message, { file, line: lineNo, ...(key !== undefined ? { key } : {}) });

    if (line.startsWith('[')) {
      const header = SECTION.exec(line);
      if (!header) throw fail(`invalid section header ${JSON.stringify(line)} (expected [group], [group:children] or [group:vars], without spaces)`);
      const [, name, kind = 'hosts'] = header;
      if (!isGroupName(name!)) throw fail(`invalid group name "${name}": expected ${EXPECTED.groupName}`);
      if (kind !== 'hosts' && kind !== 'children' && kind !== 'vars') throw fail(`section [${name}:${kind}] has an unknown type "${kind}" (expected children or vars)`);
      current = name!;
      state = kind;
      varsSeen = new Set();
      if (kind === 'vars') {
        if (!groups.has(current)) pending.set(current, { line: lineNo, message: `[${current}:vars] is for a group that is never defined` });
      } else {
        declare(current, lineNo);
      }
      return;
    }

    if (state === 'children') {
      const child = CHILD_LINE.exec(line)?.[1];
      if (!child || !isGroupName(child)) throw fail(`expected a group name, got ${JSON.stringify(line)}`);
      if (child === current || child === 'all') throw fail(`group "${child}" cannot be a child of "${current}"`, child);
      group(current, lineNo).children.push({ name: child, line: lineNo });
      if (!groups.has(child) && !pending.has(child)) pending.set(child, { line: lineNo, message: `[${current}:children] names group "${child}", which is never defined` });
      return;
    }

    if (state === 'vars') {
      const eq = line.indexOf('=');
      if (eq < 0) throw fail(`expected key=value, got ${JSON.stringify(line)}`);
      const key = line.slice(0, eq).trim();
      if (varsSeen.has(key)) throw fail(`"${key}" is set twice in [${current}:vars]`, key);
      varsSeen.add(key);
      const result = typedVar(key, iniScalar(line.slice(eq + 1).trim()));
      if ('problem' in result) throw fail(result.problem, key);
      group(current, lineNo).vars[key] = result.value;
      return;
    }

    const words = shellWords(line);
    if (typeof words === 'string') throw fail(words);
    const [pattern, ...assignments] = words;
    if (pattern === undefined) return;
    const { names, port, problem } = expandHostPattern(pattern);
    if (problem) throw fail(`host pattern "${pattern}": ${problem}`, 'inventory_hostname');
    const vars: HostVars = {};
    if (port !== undefined) {
      const result = typedVar('ansible_port', port);
      if ('problem' in result) throw fail(result.problem, 'ansible_port');
      vars.ansible_port = result.value;
    }
    const seen = new Set<string>();
    for (const assignment of assignments) {
      const eq = assignment.indexOf('=');
      if (eq <= 0) throw fail(`expected key=value after the host name, got ${JSON.stringify(assignment)}`);
      const key = assignment.slice(0, eq);
      if (seen.has(key)) throw fail(`"${key}" is set twice on this line`, key);
      seen.add(key);
      const result = typedVar(key, iniScalar(assignment.slice(eq + 1)));
      if ('problem' in result) throw fail(result.problem, key);
      vars[key] = result.value;
      // Errors raised later about this host's variable can point at this line.
      for (const name of names) lines.set(['hosts', name, key].join('\u0000'), lineNo);
    }
    for (const name of names) {
      if (!isHostName(name)) throw fail(`invalid host name "${name}": expected ${EXPECTED.hostName}`, 'inventory_hostname');
      const host = hosts.get(name);
      if (host) Object.assign(host.vars, vars);
      else {
        hosts.set(name, { vars: { ...vars } });
        lines.set(['hosts', name].join('\u0000'), lineNo);
      }
      group(current, lineNo).hosts.push(name);
    }
  });

  const unresolved = [...pending.entries()][0];
  if (unresolved) throw new InputError(unresolved[1].message, { file, line: unresolved[1].line, key: unresolved[0] });
  if (hosts.size === 0) throw new InputError('the inventory defines no host', { file });
  return {
    file,
    hosts,
    groups,
    placement: new Map(),
    lineOf: (path) => {
      for (let depth = path.length; depth > 0; depth--) {
        const line = lines.get(path.slice(0, depth).join('\u0000'));
        if (line) return line;
      }
      return undefined;
    },
  };
}

/** What Python's literal_eval makes of an INI value, restricted to the scalars the model holds. */
function iniScalar(text: string): VarValue {
  if (text === 'True' || text === 'False') return text === 'True';
  if (/^-?(0|[1-9]\d*)(\.\d+)?$/.test(text)) return Number(text);
  const quoted = /^(['"])(.*)\1$/.exec(text);
  return quoted ? quoted[2]! : text;
}

/** A line split as Python's shlex.split(comments=True) splits it; a string is the reason it cannot be. */
function shellWords(line: string): string[] | string {
  const words: string[] = [];
  let word = '';
  // Quotes make a word even when empty: '' is an empty word, not none.
  let inWord = false;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) word += line[++i];
      else word += c;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else if (c === '#') {
      break;
    } else {
      inWord = true;
      if (c === "'" || c === '"') quote = c;
      else if (c !== '\\') word += c;
      else if (i + 1 < line.length) word += line[++i];
      else return 'a backslash ends the line';
    }
  }
  if (quote) return `a ${quote === "'" ? 'single' : 'double'} quote is not closed`;
  if (inWord) words.push(word);
  return words;
}

/**
 * `name`, `name:port`, and ranges: `compute[01:20]` (zero padding kept),
 * `node-[a:c]`, `[1:9:2]` (a stride); several ranges multiply.
 */
export function expandHostPattern(pattern: string): { names: string[]; port?: string; problem?: string } {
  let body = pattern;
  let port: string | undefined;
  // A port follows the last colon outside brackets.
  const portMatch = /^(.*?[^:]):(\d+)$/.exec(pattern);
  if (portMatch && !/\[[^\]]*$/.test(portMatch[1]!)) {
    port = portMatch[2];
    body = portMatch[1]!;
  }
  const expanded = expandRanges(body);
  if (typeof expanded === 'string') return { names: [], problem: expanded };
  return { names: expanded, ...(port !== undefined ? { port } : {}) };
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

function expandRanges(pattern: string): string[] | string {
  const open = pattern.indexOf('[');
  if (open < 0) return pattern.includes(']') ? 'a "]" has no "["' : [pattern];
  const close = pattern.indexOf(']', open);
  if (close < 0) return 'a "[" is not closed';
  const head = pattern.slice(0, open);
  if (head.includes(']')) return 'a "]" has no "["';
  const bounds = pattern.slice(open + 1, close).split(':');
  if (bounds.length < 2 || bounds.length > 3) return 'a range is [begin:end] or [begin:end:step]';
  const [begin = '', end = '', step = '1'] = bounds;
  if (end === '') return 'a range needs an end';
  if (!/^[1-9]\d*$/.test(step)) return `step "${step}" is not a whole number above 0`;
  const stride = Number(step);
  const rest = expandRanges(pattern.slice(close + 1));
  if (typeof rest === 'string') return rest;

  let items: string[];
  const first = begin === '' ? '0' : begin;
  if (/^\d+$/.test(first) && /^\d+$/.test(end)) {
    const width = first.length > 1 && first.startsWith('0') ? first.length : 0;
    if (width && end.length !== width) return `a zero-padded range needs begin and end of the same width ("${first}", "${end}")`;
    const from = Number(first);
    const to = Number(end);
    if (from > to) return `range begins (${first}) after it ends (${end})`;
    if (Math.floor((to - from) / stride + 1) * rest.length > MAX_RANGE_HOSTS) return `expands to more than ${MAX_RANGE_HOSTS} hosts`;
    items = [];
    for (let i = from; i <= to; i += stride) items.push(String(i).padStart(width, '0'));
  } else if (/^[A-Za-z]$/.test(first) && /^[A-Za-z]$/.test(end)) {
    const from = LETTERS.indexOf(first);
    const to = LETTERS.indexOf(end);
    if (from > to) return `range begins (${first}) after it ends (${end})`;
    items = [];
    for (let i = from; i <= to; i += stride) items.push(LETTERS[i]!);
    if (items.length * rest.length > MAX_RANGE_HOSTS) return `expands to more than ${MAX_RANGE_HOSTS} hosts`;
  } else {
    return `range [${bounds.join(':')}] is neither numbers nor single letters`;
  }
  return items.flatMap((item) => rest.map((tail) => `${head}${item}${tail}`));
}
