import type Docker from 'dockerode';
import { PassThrough } from 'node:stream';
import { followStream, registryAuth } from './docker.ts';

export interface ContainerSpec {
  name: string;
  image: string;
  labels: Record<string, string>;
  environment: Record<string, string>;
  /** `volume:/path[:opts]` or `/host/path:/path[:opts]`. */
  volumes: string[];
  volumesFrom: string[];
  privileged: boolean;
  networkMode: string;
  pidMode?: string;
  ipcMode?: string;
  capAdd: string[];
  user?: string;
  command?: string[];
  healthcheck?: { test: string[]; interval: number; timeout: number; retries: number; startPeriod: number };
  /** Long-running containers come back after a host reboot; one-shots do not. */
  restart: boolean;
}

export interface ContainerState {
  id: string;
  name: string;
  image: string;
  /** Id of the image the container was created from. */
  imageId: string;
  labels: Record<string, string>;
  running: boolean;
  status: string;
  health?: string;
  exitCode: number;
  /** How often the engine restarted it after an exit (restart policy). */
  restartCount: number;
  startedAt: string;
  createdAt: string;
}

export interface LocalImage {
  id: string;
  digests: string[];
  labels: Record<string, string>;
}

export interface ExecResult {
  exitCode: number;
  /** stdout and stderr as they came, for messages. */
  output: string;
  /** stdout alone, for commands whose output is data (a database dump). */
  stdout?: string;
}

/** How long a stopped service has between SIGTERM and SIGKILL: every stop, restart and replacement gives this. */
export const STOP_TIMEOUT_SECONDS = 30;

/** The container operations the deployer needs from one host's engine. */
export interface ContainerEngine {
  inspect(name: string): Promise<ContainerState | null>;
  /** How an existing container was made, as a spec that makes its like again; null when absent. */
  specOf(name: string): Promise<ContainerSpec | null>;
  /** Containers carrying a label (key=value). */
  listByLabel(label: string): Promise<ContainerState[]>;
  /** The local image a reference names (its id, and the registry digests it carries: `repo@sha256:...`), or null when absent. */
  image(ref: string): Promise<LocalImage | null>;
  /**
   * The digest the registry has for a reference now, asked through this
   * host's engine (its network path to the registry, nothing pulled); null
   * when the registry does not answer for it.
   */
  registryDigest(ref: string): Promise<string | null>;
  pull(ref: string): Promise<void>;
  create(spec: ContainerSpec): Promise<void>;
  start(name: string): Promise<void>;
  stop(name: string, timeoutSeconds: number): Promise<void>;
  restart(name: string, timeoutSeconds: number): Promise<void>;
  remove(name: string): Promise<void>;
  rename(name: string, newName: string): Promise<void>;
  /** Runs a container to completion and removes it. */
  runOnce(spec: ContainerSpec): Promise<ExecResult>;
  /** Runs a command in a running container; stdin is never logged. */
  exec(name: string, command: string[], options: { user?: string; stdin?: string }): Promise<ExecResult>;
  logsTail(name: string, lines: number): Promise<string>;
  removeVolume(name: string): Promise<void>;
  removeImage(ref: string): Promise<void>;
}

export class DockerodeContainerEngine implements ContainerEngine {
  constructor(private readonly docker: Docker) {}

  async inspect(name: string): Promise<ContainerState | null> {
    try {
      return toState(await this.docker.getContainer(name).inspect());
    } catch (error) {
      if (statusOf(error) === 404) return null;
      throw error;
    }
  }

  async specOf(name: string): Promise<ContainerSpec | null> {
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.docker.getContainer(name).inspect();
    } catch (error) {
      if (statusOf(error) === 404) return null;
      throw error;
    }
    return toSpec(info);
  }

  async listByLabel(label: string): Promise<ContainerState[]> {
    const list = await this.docker.listContainers({ all: true, filters: { label: [label] } });
    return Promise.all(list.map(async (c) => toState(await this.docker.getContainer(c.Id).inspect())));
  }

  async image(ref: string): Promise<LocalImage | null> {
    try {
      const info = await this.docker.getImage(ref).inspect();
      return { id: info.Id, digests: info.RepoDigests ?? [], labels: info.Config?.Labels ?? {} };
    } catch (error) {
      if (statusOf(error) === 404) return null;
      throw error;
    }
  }

  async registryDigest(ref: string): Promise<string | null> {
    try {
      const info = (await this.docker.getImage(ref).distribution({ authconfig: registryAuth(ref) })) as { Descriptor?: { digest?: string } };
      return info.Descriptor?.digest ?? null;
    } catch {
      return null;
    }
  }

  async pull(ref: string): Promise<void> {
    // Credentials, where the registry wants them, come from the deploy host's environment, as for build.
    await followStream(this.docker, await this.docker.pull(ref, { authconfig: registryAuth(ref) }), () => {});
  }

  async create(spec: ContainerSpec): Promise<void> {
    await this.docker.createContainer(toCreateOptions(spec));
  }

  async start(name: string): Promise<void> {
    try {
      await this.docker.getContainer(name).start();
    } catch (error) {
      if (statusOf(error) !== 304) throw error; // already running
    }
  }

  async stop(name: string, timeoutSeconds: number): Promise<void> {
    try {
      await this.docker.getContainer(name).stop({ t: timeoutSeconds });
    } catch (error) {
      if (statusOf(error) !== 304 && statusOf(error) !== 404) throw error;
    }
  }

  async restart(name: string, timeoutSeconds: number): Promise<void> {
    await this.docker.getContainer(name).restart({ t: timeoutSeconds });
  }

  async remove(name: string): Promise<void> {
    try {
      // v: false — named volumes hold user data and outlive their container.
      await this.docker.getContainer(name).remove({ force: true, v: false });
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
  }

  async rename(name: string, newName: string): Promise<void> {
    await this.docker.getContainer(name).rename({ name: newName });
  }

  async runOnce(spec: ContainerSpec): Promise<ExecResult> {
    await this.remove(spec.name);
    const container = await this.docker.createContainer(toCreateOptions(spec));
    try {
      await container.start();
      const { StatusCode } = (await container.wait()) as { StatusCode: number };
      return { exitCode: StatusCode, output: await this.logsTail(spec.name, 200) };
    } finally {
      await this.remove(spec.name);
    }
  }

  async exec(name: string, command: string[], options: { user?: string; stdin?: string }): Promise<ExecResult> {
    const exec = await this.docker.getContainer(name).exec({
      Cmd: command,
      AttachStdout: true,
      AttachStderr: true,
      AttachStdin: options.stdin !== undefined,
      ...(options.user ? { User: options.user } : {}),
    });
    const stream = await exec.start({ hijack: true, stdin: options.stdin !== undefined });
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const chunks: Buffer[] = [];
    const outChunks: Buffer[] = [];
    stdout.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      outChunks.push(chunk);
    });
    stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
    this.docker.modem.demuxStream(stream, stdout, stderr);
    if (options.stdin !== undefined) stream.end(options.stdin);
    await new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', reject);
    });
    const info = await exec.inspect();
    return { exitCode: info.ExitCode ?? -1, output: Buffer.concat(chunks).toString('utf8'), stdout: Buffer.concat(outChunks).toString('utf8') };
  }

  async logsTail(name: string, lines: number): Promise<string> {
    try {
      const buffer = (await this.docker.getContainer(name).logs({ stdout: true, stderr: true, tail: lines, follow: false })) as unknown as Buffer;
      return demuxBuffer(buffer);
    } catch (error) {
      if (statusOf(error) === 404) return '';
      throw error;
    }
  }

  async removeVolume(name: string): Promise<void> {
    try {
      await this.docker.getVolume(name).remove();
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
  }

  async removeImage(ref: string): Promise<void> {
    try {
      await this.docker.getImage(ref).remove();
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
  }
}

function toCreateOptions(spec: ContainerSpec): Docker.ContainerCreateOptions {
  const seconds = 1_000_000_000;
  return {
    name: spec.name,
    Image: spec.image,
    Labels: spec.labels,
    Env: Object.entries(spec.environment).map(([k, v]) => `${k}=${v}`),
    ...(spec.user ? { User: spec.user } : {}),
    ...(spec.command ? { Cmd: spec.command } : {}),
    ...(spec.healthcheck
      ? {
          Healthcheck: {
            // Exec form: the test's words go to the process as they are, never through a shell.
            Test: ['CMD', ...spec.healthcheck.test],
            Interval: spec.healthcheck.interval * seconds,
            Timeout: spec.healthcheck.timeout * seconds,
            Retries: spec.healthcheck.retries,
            StartPeriod: spec.healthcheck.startPeriod * seconds,
          },
        }
      : {}),
    HostConfig: {
      Binds: spec.volumes,
      VolumesFrom: spec.volumesFrom,
      Privileged: spec.privileged,
      NetworkMode: spec.networkMode,
      ...(spec.pidMode ? { PidMode: spec.pidMode } : {}),
      ...(spec.ipcMode ? { IpcMode: spec.ipcMode } : {}),
      CapAdd: spec.capAdd,
      RestartPolicy: spec.restart ? { Name: 'unless-stopped' } : { Name: 'no' },
      LogConfig: { Type: 'json-file', Config: { 'max-size': '50m', 'max-file': '3' } },
    },
  };
}

/** The inverse of toCreateOptions, for a container made by it. */
function toSpec(info: Docker.ContainerInspectInfo): ContainerSpec {
  const seconds = 1_000_000_000;
  const host = info.HostConfig;
  const health = info.Config.Healthcheck;
  const pidMode = host.PidMode || undefined;
  const ipcMode = host.IpcMode && host.IpcMode !== 'private' && host.IpcMode !== 'shareable' ? host.IpcMode : undefined;
  return {
    name: info.Name.replace(/^\//, ''),
    image: info.Config.Image,
    labels: info.Config.Labels ?? {},
    environment: Object.fromEntries((info.Config.Env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])),
    volumes: host.Binds ?? [],
    volumesFrom: (host as { VolumesFrom?: string[] }).VolumesFrom ?? [],
    privileged: Boolean(host.Privileged),
    networkMode: host.NetworkMode ?? 'default',
    ...(pidMode ? { pidMode } : {}),
    ...(ipcMode ? { ipcMode } : {}),
    capAdd: host.CapAdd ?? [],
    ...(info.Config.User ? { user: info.Config.User } : {}),
    ...(info.Config.Cmd ? { command: info.Config.Cmd } : {}),
    ...(health?.Test && health.Test[0] === 'CMD'
      ? {
          healthcheck: {
            test: health.Test.slice(1),
            interval: (health.Interval ?? 0) / seconds,
            timeout: (health.Timeout ?? 0) / seconds,
            retries: health.Retries ?? 0,
            startPeriod: (health.StartPeriod ?? 0) / seconds,
          },
        }
      : {}),
    restart: host.RestartPolicy?.Name === 'unless-stopped',
  };
}

function toState(info: Docker.ContainerInspectInfo): ContainerState {
  return {
    id: info.Id,
    name: info.Name.replace(/^\//, ''),
    image: info.Config.Image,
    imageId: info.Image,
    labels: info.Config.Labels ?? {},
    running: info.State.Running,
    status: info.State.Status,
    ...(info.State.Health ? { health: info.State.Health.Status } : {}),
    exitCode: info.State.ExitCode,
    restartCount: info.RestartCount,
    startedAt: info.State.StartedAt,
    createdAt: info.Created,
  };
}

/** Docker's multiplexed log format: 8-byte headers before each frame. */
function demuxBuffer(buffer: Buffer): string {
  if (!Buffer.isBuffer(buffer)) return String(buffer);
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const size = buffer.readUInt32BE(offset + 4);
    parts.push(buffer.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(parts).toString('utf8');
}

function statusOf(error: unknown): number | undefined {
  return (error as { statusCode?: number }).statusCode;
}
