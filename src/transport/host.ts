import type Docker from 'dockerode';

/**
 * Everything the deployer does to a host goes through this: files (written
 * atomically) and the host's Docker engine. One connection per host, kept
 * open for the whole command.
 */
export interface HostConnection {
  readonly name: string;
  /** A Docker API client bound to this host's engine. */
  readonly docker: Docker;
  /** Where that engine is, for messages (`unix:///var/run/docker.sock`, `ssh://...`). */
  readonly engineAddress: string;
  /** The connection dropped: whatever failed on it failed because the host went away. */
  readonly lost: boolean;
  /** The file's content, or null when it does not exist. */
  readFile(path: string): Promise<Buffer | null>;
  /** Writes through a temp file in the same directory and a rename: no reader sees half a file. */
  writeFileAtomic(path: string, content: string | Buffer, mode: number): Promise<void>;
  /**
   * Creates a file only if nothing is at `path` (atomically, whole): false
   * when something already is. Locks are made of this.
   */
  createExclusive(path: string, content: string, mode: number): Promise<boolean>;
  ensureDir(path: string, mode: number): Promise<void>;
  /** Names in a directory, or [] when it does not exist. */
  listDir(path: string): Promise<string[]>;
  /** Removes a file or a directory tree; absent is fine. */
  remove(path: string): Promise<void>;
  /**
   * Runs a program on the host, without a shell on our side: each argument
   * is one word there. Never pass secrets: they would show in the host's
   * process list.
   */
  exec(argv: readonly string[]): Promise<CommandResult>;
  /** The first IPv4 address of a network interface, or undefined. */
  interfaceAddress(name: string): Promise<string | undefined>;
  close(): Promise<void>;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}
