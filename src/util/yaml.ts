import { readFileSync } from 'node:fs';
import * as yaml from 'js-yaml';
import { InputError } from '../errors.ts';

/** A parsed YAML document that can say on which line each key stands. */
export interface LocatedYaml {
  file: string;
  data: unknown;
  /** Line (1-based) of the key at `path`, or of its nearest located parent. */
  lineOf(path: readonly (string | number)[]): number | undefined;
}

export function parseYaml(source: string, file: string): LocatedYaml {
  // js-yaml 5 refuses a document with nothing in it; for a config file that is "no settings".
  if (source.split('\n').every((line) => /^\s*(#.*)?$/.test(line))) return { file, data: null, lineOf: () => undefined };
  let data: unknown;
  try {
    data = yaml.load(source, { filename: file });
  } catch (error) {
    if (error instanceof yaml.YAMLException) {
      const line = error.mark ? error.mark.line + 1 : undefined;
      throw new InputError(`YAML syntax error: ${error.reason}`, { file, line });
    }
    throw error;
  }
  const lines = keyLines(source);
  return {
    file,
    data,
    lineOf(path) {
      for (let depth = path.length; depth > 0; depth--) {
        const line = lines.get(path.slice(0, depth).join('\u0000'));
        if (line !== undefined) return line;
      }
      return undefined;
    },
  };
}

export function readYaml(file: string): LocatedYaml {
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch (error) {
    throw new InputError(`cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { file });
  }
  return parseYaml(source, file);
}

/** An InputError pointing at `path` inside a located document. */
export function errorAt(doc: LocatedYaml, path: readonly (string | number)[], message: string): InputError {
  return new InputError(message, { file: doc.file, line: doc.lineOf(path), key: path.join('.') });
}

type Frame = { kind: 'map'; path: (string | number)[]; pendingKey: string | null } | { kind: 'seq'; path: (string | number)[]; index: number };

/** Walks the parser's events to map each key path to the line it starts on. */
function keyLines(source: string): Map<string, number> {
  const lineStarts = [0];
  for (let i = 0; i < source.length; i++) if (source[i] === '\n') lineStarts.push(i + 1);
  const lineAt = (offset: number): number => {
    let low = 0;
    let high = lineStarts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (lineStarts[mid]! <= offset) low = mid;
      else high = mid - 1;
    }
    return low + 1;
  };

  const result = new Map<string, number>();
  const stack: Frame[] = [];
  const { EVENT_ID } = yaml;

  // The path a new node takes in its parent; advances the parent's cursor.
  const childPath = (): (string | number)[] | null => {
    const top = stack[stack.length - 1];
    if (!top) return [];
    if (top.kind === 'seq') return [...top.path, top.index++];
    if (top.pendingKey === null) return null; // this node is a key
    const path = [...top.path, top.pendingKey];
    top.pendingKey = null;
    return path;
  };

  for (const event of yaml.parseEvents(source, {})) {
    switch (event.type) {
      case EVENT_ID.MAPPING:
      case EVENT_ID.SEQUENCE: {
        const path = childPath() ?? [];
        stack.push(event.type === EVENT_ID.MAPPING ? { kind: 'map', path, pendingKey: null } : { kind: 'seq', path, index: 0 });
        break;
      }
      case EVENT_ID.SCALAR: {
        const top = stack[stack.length - 1];
        if (top?.kind === 'map' && top.pendingKey === null) {
          const key = yaml.getScalarValue(source, event);
          top.pendingKey = key;
          result.set([...top.path, key].join('\u0000'), lineAt(event.valueStart));
        } else {
          childPath();
        }
        break;
      }
      case EVENT_ID.ALIAS:
        childPath();
        break;
      case EVENT_ID.POP:
        stack.pop();
        break;
      default:
        break;
    }
  }
  return result;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
