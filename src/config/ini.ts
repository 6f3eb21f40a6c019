import { InputError } from '../errors.ts';

/** An INI document as oslo.config reads it: ordered sections of ordered keys. */
export type IniDocument = Map<string, Map<string, string>>;

export function parseIni(text: string, file: string): IniDocument {
  const doc: IniDocument = new Map();
  let section: Map<string, string> | undefined;
  let lastKey: string | undefined;
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/\r$/, '');
    // Python reads \v, \f and \x1c-\x1e as line breaks: such a character would start a new line in oslo.config.
    if (/[\x00-\x08\x0b-\x1f\x7f]/.test(line)) throw new InputError('a control character in an INI file', { file, line: index + 1 });
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) return;
    const header = /^\[([^\]]+)\]$/.exec(trimmed);
    if (header) {
      const name = header[1]!.trim();
      if (name === '') throw new InputError('a section needs a name', { file, line: index + 1 });
      section = doc.get(name) ?? new Map();
      doc.set(name, section);
      lastKey = undefined;
      return;
    }
    // An indented line continues the previous value (oslo.config multi-line values).
    if (/^\s/.test(line) && section && lastKey) {
      section.set(lastKey, `${section.get(lastKey)}\n${trimmed}`);
      return;
    }
    const eq = line.search(/[=:]/);
    if (eq <= 0 || !section) {
      throw new InputError(section ? 'expected "key = value"' : 'a key stands before any [section]', { file, line: index + 1 });
    }
    lastKey = line.slice(0, eq).trim();
    section.set(lastKey, line.slice(eq + 1).trim());
  });
  return doc;
}

/** Later documents win key by key; new sections and keys are appended. */
export function mergeIni(base: IniDocument, ...overrides: IniDocument[]): IniDocument {
  const merged: IniDocument = new Map([...base].map(([name, keys]) => [name, new Map(keys)]));
  for (const override of overrides) {
    for (const [name, keys] of override) {
      const section = merged.get(name) ?? new Map<string, string>();
      for (const [key, value] of keys) section.set(key, value);
      merged.set(name, section);
    }
  }
  return merged;
}

export function serializeIni(doc: IniDocument): string {
  const parts: string[] = [];
  for (const [name, keys] of doc) {
    const lines = [`[${name}]`];
    for (const [key, value] of keys) lines.push(`${key} = ${value.replace(/\n/g, '\n    ')}`);
    parts.push(lines.join('\n'));
  }
  return parts.join('\n\n') + '\n';
}
