import { createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { homedir } from 'node:os';
import { basename, dirname } from 'node:path';
import type { Duplex } from 'node:stream';
import { inspect } from 'node:util';
import Docker from 'dockerode';
import { Client, type SFTPWrapper } from 'ssh2';
import { HostKeyError, InputError, UnreachableError } from '../errors.ts';
import type { HostSpec } from '../inventory/inventory.ts';
import { shellQuote } from '../util/escape.ts';
import type { CommandResult, HostConnection } from './host.ts';

/** `become`: the login user is not root; root's work goes through `sudo -n` (no password prompt). */
type SshSpec = Extract<HostSpec, { connection: 'ssh' }> & { become?: boolean };

/**
 * Commands run at once on one connection. sshd allows MaxSessions (10 by
 * default) sessions per connection, the SFTP session included, and refuses
 * the channel of one more ("open failed"): further commands wait for one to end.
 */
const COMMAND_SESSIONS = 8;

/**
 * A host over one persistent SSH connection: SFTP for files, and the
 * remote Docker socket forwarded per HTTP connection (no new SSH session
 * per API call, unlike dockerode's own ssh transport).
 */
export class SshHost implements HostConnection {
  readonly docker: Docker;
  readonly engineAddress: string;
  private client!: Client;
  private sftp!: SFTPWrapper;
  /** The current connection dropped. */
  private closed = false;
  /** close() was called: no reconnect. */
  private ended = false;
  /** The one reconnect a dropped connection gets has been used. */
  private reconnected = false;
  private reconnecting: Promise<void> | undefined;
  private readonly agent: http.Agent;
  private readonly become: boolean;
  /** Commands running, and those waiting for one of them to end (COMMAND_SESSIONS). */
  private commands = 0;
  private readonly waitingCommands: (() => void)[] = [];

  /** Dropped (and not reconnected yet): what failed on it failed because the host went away. */
  get lost(): boolean {
    return this.closed;
  }

  private constructor(
    readonly name: string,
    private readonly spec: SshSpec,
    connection: { client: Client; sftp: SFTPWrapper },
  ) {
    this.engineAddress = `ssh://${spec.user}@${spec.address}:${spec.port}/var/run/docker.sock`;
    this.become = spec.become === true && spec.user !== 'root';
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    // docker-modem util.inspect()s every request's options, this agent included, at unlimited depth and even
    // with its debug log off: through the agent's sockets and the keepalive timers it walked this connection and
    // every other host's, a cost per Docker call that grew with the fleet (a third of a 10-host plan's CPU).
    Object.defineProperty(this.agent, inspect.custom, { value: () => `[Docker over SSH to ${spec.name}]` });
    const forward = (_options: unknown, done: (error: Error | null, socket?: Duplex) => void): void => {
      this.usable().then(
        () => {
          try {
            this.client.openssh_forwardOutStreamLocal('/var/run/docker.sock', (error, stream) => {
              if (error) return done(this.closed ? this.lostError() : error);
              // http.Agent treats what it gets as a net.Socket; an SSH channel has no TCP options to set.
              const socket = Object.assign(stream, { setKeepAlive: () => socket, setNoDelay: () => socket, setTimeout: () => socket, ref: () => socket, unref: () => socket });
              done(null, socket as unknown as Duplex);
            });
          } catch (error) {
            done(this.closed ? this.lostError() : (error as Error));
          }
        },
        (error: Error) => done(error),
      );
    };
    (this.agent as unknown as { createConnection: typeof forward }).createConnection = forward;
    this.attach(connection);
    this.docker = new Docker({ protocol: 'http', host: 'docker', port: 80, agent: this.agent } as Docker.DockerOptions);
  }

  static async connect(spec: SshSpec): Promise<SshHost> {
    return new SshHost(spec.name, spec, await open(spec));
  }

  private attach(connection: { client: Client; sftp: SFTPWrapper }): void {
    this.client = connection.client;
    this.sftp = connection.sftp;
    this.closed = false;
    // A dropped connection must fail what is waiting on it, not leave Docker calls hanging on dead channels.
    connection.client.on('close', () => {
      if (this.client !== connection.client) return;
      this.closed = true;
      this.agent.destroy();
    });
  }

  private lostError(): UnreachableError {
    return new UnreachableError(`host ${this.name}: the SSH connection to ${this.spec.address}:${this.spec.port} was lost`);
  }

  /**
   * The connection, opened again once if it dropped (a restarted sshd, a
   * blip the keepalive caught); a second drop, or a reconnect that fails,
   * leaves the host lost for the rest of the command.
   */
  private async usable(): Promise<void> {
    if (!this.closed) return;
    if (this.ended || (this.reconnected && !this.reconnecting)) throw this.lostError();
    this.reconnecting ??= (async () => {
      this.reconnected = true;
      try {
        this.attach(await open(this.spec));
      } finally {
        this.reconnecting = undefined;
      }
    })();
    try {
      await this.reconnecting;
    } catch (error) {
      throw new UnreachableError(`host ${this.name}: the SSH connection to ${this.spec.address}:${this.spec.port} was lost, and reconnecting failed: ${(error as Error).message}`);
    }
    if (this.closed) throw this.lostError();
  }

  /** One call on the connection; a call cut by the first drop is made once more on the new connection. */
  private async onConnection<T>(call: () => Promise<T>): Promise<T> {
    await this.usable();
    try {
      return await call();
    } catch (error) {
      if (!this.closed || this.reconnected || this.ended) throw error;
      await this.usable();
      return call();
    }
  }

  /** An SFTP call on the current session, through onConnection. */
  private sftpCall<T>(call: (sftp: SFTPWrapper, done: (error: (Error & { code?: number }) | null | undefined, value?: T) => void) => void): Promise<T> {
    return this.onConnection(() => new Promise<T>((resolve, reject) => call(this.sftp, (error, value) => (error ? reject(error) : resolve(value as T)))));
  }

  async readFile(path: string): Promise<Buffer | null> {
    if (this.become) {
      const result = await this.exec(['sh', '-c', 'test -e "$1" || exit 3; exec cat -- "$1"', 'sh', path]);
      if (result.code === 3) return null;
      if (result.code !== 0) throw new Error(`reading ${path}: ${result.stderr.trim()}`);
      return Buffer.from(result.stdout, 'utf8');
    }
    return this.sftpCall<Buffer | null>((sftp, done) =>
      sftp.readFile(path, (error: (Error & { code?: number }) | null | undefined, data: Buffer) => {
        if (error) return error.code === 2 ? done(null, null) : done(error);
        done(null, data);
      }),
    );
  }

  async writeFileAtomic(path: string, content: string | Buffer, mode: number): Promise<void> {
    if (this.become) {
      await this.asRoot(content, (staged) => ['sh', '-c', 'install -m "$1" -- "$2" "$3" && mv -f -- "$3" "$4"', 'sh', mode.toString(8), staged, this.tempBeside(path), path], path);
      return;
    }
    const temp = this.tempBeside(path);
    await this.sftpCall<void>((sftp, done) => sftp.writeFile(temp, content, { mode }, done));
    await this.sftpCall<void>((sftp, done) => sftp.chmod(temp, mode, done));
    // posix-rename replaces the target atomically; plain SFTP rename refuses an existing target.
    await this.sftpCall<void>((sftp, done) => sftp.ext_openssh_rename(temp, path, done));
  }

  async createExclusive(path: string, content: string, mode: number): Promise<boolean> {
    if (this.become) {
      const temp = this.tempBeside(path);
      // ln refuses an existing target: whoever links first holds it.
      const result = await this.asRoot(content, (staged) => ['sh', '-c', 'install -m "$1" -- "$2" "$3" && { ln -- "$3" "$4"; s=$?; rm -f -- "$3"; exit $s; }', 'sh', mode.toString(8), staged, temp, path], path, true);
      return result.code === 0;
    }
    const temp = this.tempBeside(path);
    await this.sftpCall<void>((sftp, done) => sftp.writeFile(temp, content, { mode }, done));
    // Plain SFTP rename (OpenSSH: link, then unlink) refuses an existing target: whoever renames first holds it.
    const created = await this.sftpCall<boolean>((sftp, done) => sftp.rename(temp, path, (error) => done(null, !error)));
    if (!created) await this.remove(temp);
    return created;
  }

  async ensureDir(path: string, mode: number): Promise<void> {
    // One command, not two in a row: mkdir -m sets the mode of a directory it makes, chmod that of one already there.
    await this.must(['sh', '-c', 'mkdir -p -m "$1" -- "$2" && chmod "$1" -- "$2"', 'sh', mode.toString(8), path]);
  }

  async listDir(path: string): Promise<string[]> {
    if (this.become) {
      const result = await this.exec(['sh', '-c', 'test -d "$1" || exit 3; exec ls -A -- "$1"', 'sh', path]);
      if (result.code === 3) return [];
      if (result.code !== 0) throw new Error(`listing ${path}: ${result.stderr.trim()}`);
      return result.stdout.split('\n').filter(Boolean);
    }
    return this.sftpCall<string[]>((sftp, done) =>
      sftp.readdir(path, (error: (Error & { code?: number }) | undefined, list) => {
        if (error) return error.code === 2 ? done(null, []) : done(error);
        done(null, list.map((entry) => entry.filename));
      }),
    );
  }

  async remove(path: string): Promise<void> {
    await this.must(['rm', '-rf', '--', path]);
  }

  async exec(argv: readonly string[]): Promise<CommandResult> {
    const command = (this.become ? ['sudo', '-n', '--', ...argv] : argv).map(shellQuote).join(' ');
    if (this.commands < COMMAND_SESSIONS) this.commands++;
    else await new Promise<void>((resolve) => this.waitingCommands.push(resolve)); // the session of one that ends is handed on
    try {
      return await this.onConnection(() => this.run(command));
    } finally {
      const next = this.waitingCommands.shift();
      if (next) next();
      else this.commands--;
    }
  }

  private run(command: string): Promise<CommandResult> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (error, stream) => {
        if (error) return reject(error);
        let stdout = '';
        let stderr = '';
        stream.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
        stream.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        stream.on('close', (code: number | null) => resolve({ code: code ?? -1, stdout, stderr }));
      });
    });
  }

  async interfaceAddress(name: string): Promise<string | undefined> {
    // No such interface: ip fails, and the answer is "no address".
    const { stdout } = await this.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', name]);
    return /inet (\d+\.\d+\.\d+\.\d+)/.exec(stdout)?.[1];
  }

  async close(): Promise<void> {
    this.ended = true;
    this.sftp.end();
    this.client.end();
  }

  private tempBeside(path: string): string {
    return `${dirname(path)}/.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`;
  }

  /**
   * With become: the content goes by SFTP into a file of the login user's
   * (mode 0600, in /tmp), then a root command places it; the staged file is
   * removed whatever happens.
   */
  private async asRoot(content: string | Buffer, place: (staged: string) => string[], path: string, mayFail = false): Promise<CommandResult> {
    const staged = `/tmp/.kolla-ts-${randomBytes(8).toString('hex')}`;
    await this.sftpCall<void>((sftp, done) => sftp.writeFile(staged, content, { mode: 0o600 }, done));
    try {
      const result = await this.exec(place(staged));
      if (result.code !== 0 && !mayFail) throw new Error(`placing ${path} as root: ${result.stderr.trim()}`);
      return result;
    } finally {
      await this.sftpCall<void>((sftp, done) => sftp.unlink(staged, () => done(null))).catch(() => undefined);
    }
  }

  /** Runs a program that must succeed (never with secrets: they would show in the remote process list). */
  private async must(argv: readonly string[]): Promise<string> {
    const result = await this.exec(argv);
    if (result.code !== 0) throw new Error(`${argv.join(' ')}: exit ${result.code}: ${result.stderr.trim()}`);
    return result.stdout;
  }

}

/** Logs in to a host, checking its key against known_hosts, and opens the SFTP session. */
async function open(spec: SshSpec): Promise<{ client: Client; sftp: SFTPWrapper }> {
  const knownHostsFile = expandHome(spec.knownHosts ?? '~/.ssh/known_hosts');
  const trusted = knownKeys(knownHostsFile, spec.address, spec.port);
  if (trusted.size === 0) {
    throw new InputError(`no host key for ${spec.address} in ${knownHostsFile}; add it (ssh-keyscan) after checking its fingerprint`, { file: knownHostsFile });
  }
  const client = new Client();
  let keyRefused = false;
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
    client.connect({
      host: spec.address,
      port: spec.port,
      username: spec.user,
      ...credentials(spec),
      readyTimeout: 20_000,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 4,
      // ssh2 accepts any key unless told otherwise: compare with known_hosts.
      hostVerifier: (key: Buffer) => {
        keyRefused = !trusted.has(createHash('sha256').update(key).digest('base64'));
        return !keyRefused;
      },
    });
  }).catch((error: unknown) => {
    if (keyRefused) {
      throw new HostKeyError(
        `host ${spec.name} (${spec.address}:${spec.port}) offered a host key that ${knownHostsFile} does not list for it; refusing to connect. ` +
          'If the host was reinstalled, check its new key\'s fingerprint and update known_hosts',
      );
    }
    throw error;
  });
  const sftp = await new Promise<SFTPWrapper>((resolve, reject) => client.sftp((error, session) => (error ? reject(error) : resolve(session))));
  return { client, sftp };
}

function expandHome(path: string): string {
  return path.startsWith('~/') ? `${homedir()}${path.slice(1)}` : path;
}

/**
 * How we log in: the inventory's key file; else the SSH agent; else the
 * user's default keys, as ssh does.
 */
function credentials(spec: SshSpec): { privateKey: Buffer } | { agent: string } {
  const read = (file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch {
      throw new InputError(`cannot read SSH key ${file} for host ${spec.name}`, { file });
    }
  };
  if (spec.keyFile) return { privateKey: read(expandHome(spec.keyFile)) };
  if (process.env.SSH_AUTH_SOCK) return { agent: process.env.SSH_AUTH_SOCK };
  const fallback = ['~/.ssh/id_ed25519', '~/.ssh/id_ecdsa', '~/.ssh/id_rsa'].map(expandHome).find((file) => existsSync(file));
  if (!fallback) throw new InputError(`no SSH key for host ${spec.name}: set ansible_ssh_private_key_file (key_file), start an ssh-agent, or create ~/.ssh/id_ed25519`);
  return { privateKey: read(fallback) };
}

/** Whether a known_hosts host field names this host: plain names, [host]:port, or hashed (|1|salt|hmac) entries. */
function namesHost(field: string, names: readonly string[]): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    return names.some((name) => createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash);
  }
  return field.split(',').some((h) => names.includes(h));
}

/** SHA-256 fingerprints (base64) of the keys known_hosts lists for a host. */
function knownKeys(file: string, address: string, port: number): Set<string> {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return new Set();
  }
  const names = port === 22 ? [address, `[${address}]:22`] : [`[${address}]:${port}`];
  const keys = new Set<string>();
  for (const line of text.split('\n')) {
    const [hosts, , key] = line.trim().split(/\s+/);
    if (!hosts || !key || hosts.startsWith('#') || hosts.startsWith('@')) continue;
    if (namesHost(hosts, names)) keys.add(createHash('sha256').update(Buffer.from(key, 'base64')).digest('base64'));
  }
  return keys;
}
