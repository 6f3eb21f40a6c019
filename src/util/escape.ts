/*
 * One escaping helper per language a value is placed into. Every value that
 * can come from a user (passwords, names, addresses) goes through the helper
 * of the language it lands in; config templates reach them as Handlebars
 * helpers of the same names.
 */

export class UnsafeValueError extends Error {}

/**
 * A MariaDB string literal under the server's default sql_mode (backslash is
 * an escape). Quotes are doubled rather than backslash-escaped, so even under
 * NO_BACKSLASH_ESCAPES no value can end the literal early.
 */
export function sqlString(value: string): string {
  if (value.includes('\0')) throw new UnsafeValueError('a NUL character cannot be placed into SQL');
  return `'${value.replace(/'/g, "''").replace(/\\/g, '\\\\')}'`;
}

/** A MariaDB identifier (database, table): backquoted, backquotes doubled. */
export function sqlIdentifier(value: string): string {
  if (value.length === 0 || value.length > 64 || value.includes('\0')) throw new UnsafeValueError('an identifier is 1-64 characters without NUL');
  return `\`${value.replace(/`/g, '``')}\``;
}

/** A POSIX shell word: single-quoted, a quote inside closed, escaped and reopened. */
export function shellQuote(value: string): string {
  if (value.includes('\0')) throw new UnsafeValueError('a NUL character cannot be placed into a shell word');
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The value of an INI (oslo.config) option. A line break would start a new
 * option or section, so it is refused; `$` starts oslo.config's variable
 * substitution, so it is doubled.
 */
export function iniValue(value: string): string {
  if (/[\r\n\0]/.test(value)) throw new UnsafeValueError('a line break cannot be placed into an INI value');
  return value.replace(/\$/g, '$$$$');
}

/**
 * A value in a MariaDB option file (my.cnf): double-quoted, so `#` does not
 * start a comment; backslash is that format's escape character.
 */
export function myCnfValue(value: string): string {
  if (/[\r\n\0"]/.test(value)) throw new UnsafeValueError('a line break or a double quote cannot be placed into a my.cnf value');
  return `"${value.replace(/\\/g, '\\\\')}"`;
}

/** A part of a URL (user, password, path segment). */
export function urlComponent(value: string): string {
  return encodeURIComponent(value);
}

/** A JSON (and YAML) string literal. */
export function jsonString(value: string): string {
  return JSON.stringify(value);
}
