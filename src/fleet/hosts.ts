import { DockerodeContainerEngine, type ContainerEngine } from '../engine/containers.ts';
import { pingEngine } from '../engine/docker.ts';
import { InputError, UnreachableError } from '../errors.ts';
import type { HostSpec } from '../inventory/inventory.ts';
import type { HostConnection } from '../transport/host.ts';
import { LocalHost } from '../transport/local.ts';
import { SshHost } from '../transport/ssh.ts';

export interface ConnectedHost {
  connection: HostConnection;
  engine: ContainerEngine;
}

export type Connector = (spec: HostSpec) => Promise<HostConnection>;

/**
 * One connection per host for the whole command, opened on first use (so a
 * host the command never needs is never dialled, and one that is down fails
 * only the work that needs it), with its engine checked before first use.
 */
export class HostPool {
  private readonly connections = new Map<string, Promise<HostConnection>>();
  private readonly engines = new Map<string, Promise<ConnectedHost>>();
  private readonly open: HostConnection[] = [];
  /** Connections opened per host: one for the whole run is the contract. */
  readonly opened = new Map<string, number>();

  constructor(
    private readonly specs: ReadonlyMap<string, HostSpec>,
    private readonly connector: Connector = connectHost,
  ) {}

  /** The host with its engine checked: what every deploy operation uses. */
  get(name: string): Promise<ConnectedHost> {
    return memo(this.engines, name, async () => {
      const connection = await this.connection(name);
      await pingEngine(connection.docker, name, connection.engineAddress);
      return { connection, engine: new DockerodeContainerEngine(connection.docker) };
    });
  }

  /** The host alone, engine or not (bootstrap-servers installs the engine). */
  connection(name: string): Promise<HostConnection> {
    return memo(this.connections, name, async () => {
      const spec = this.specs.get(name);
      if (!spec) throw new InputError(`host ${name} is not in the inventory`);
      this.opened.set(name, (this.opened.get(name) ?? 0) + 1);
      const connection = await this.connector(spec);
      this.open.push(connection);
      return connection;
    });
  }

  /** Whether the host's connection was open and then dropped. */
  lost(name: string): boolean {
    return this.open.some((connection) => connection.name === name && connection.lost);
  }

  /** Closes every connection, those still being opened included (they would keep the process alive). */
  async close(): Promise<void> {
    await Promise.allSettled(this.connections.values());
    await Promise.all(this.open.map((connection) => connection.close().catch(() => undefined)));
  }
}

/** One attempt per host and command: a host that failed to connect is not dialled again. */
function memo<T>(cache: Map<string, Promise<T>>, key: string, make: () => Promise<T>): Promise<T> {
  let pending = cache.get(key);
  if (!pending) {
    pending = make();
    cache.set(key, pending);
  }
  return pending;
}

async function connectHost(spec: HostSpec): Promise<HostConnection> {
  if (spec.connection === 'local') return new LocalHost(spec.name);
  try {
    return await SshHost.connect(spec);
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw new UnreachableError(`cannot connect to host ${spec.name} (${spec.address}:${spec.port}): ${(error as Error).message}`);
  }
}
