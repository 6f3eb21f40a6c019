import { isIP } from 'node:net';

/*
 * Typed values from inventories and globals are checked where they are read
 * (so the error can name file, line and key), with these predicates. A value
 * that passes cannot break out of a shell word, an INI line or a URL.
 */

export function isIpAddress(value: string): boolean {
  return isIP(value) !== 0;
}

/** RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens. */
export function isHostName(value: string): boolean {
  if (value.length === 0 || value.length > 253) return false;
  return value.split('.').every((label) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label));
}

/** An address a host is reached at: an IP address or a host name. */
export function isHostAddress(value: string): boolean {
  return isIpAddress(value) || isHostName(value);
}

/** A Linux network interface name (at most 15 bytes, no slash, space or colon). */
export function isInterfaceName(value: string): boolean {
  return /^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,14}$/.test(value) && value !== '.' && value !== '..';
}

export function isPort(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535;
}

/** An inventory group name; it becomes part of template variable names (hosts_in_<group>). */
export function isGroupName(value: string): boolean {
  return /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(value);
}

/** A user or group name as Debian's adduser accepts it. */
export function isUserName(value: string): boolean {
  return /^[a-z_][a-z0-9_-]{0,31}$/.test(value);
}

/** A path the deployer writes on hosts: absolute, normalised, no shell or newline characters. */
export function isSafeAbsolutePath(value: string): boolean {
  return /^(\/[A-Za-z0-9._+@-]+)+\/?$/.test(value) && !value.split('/').some((part) => part === '.' || part === '..');
}

/** What each predicate accepts, for error messages. */
export const EXPECTED = {
  ip: 'an IP address',
  hostName: 'a host name (letters, digits, hyphens and dots)',
  groupName: 'a group name (letters, digits, "_", "-" and ".")',
  hostAddress: 'an IP address or a host name',
  interface: 'a network interface name (at most 15 letters, digits, "_", "-", "." or "@")',
  port: 'a port number (1-65535)',
  userName: 'a user name',
  path: 'an absolute path of letters, digits and ._+@-',
} as const;
