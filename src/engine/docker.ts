import Docker from 'dockerode';
import type { Readable } from 'node:stream';
import { UnreachableError } from '../errors.ts';
import { credentialsFromEnvironment } from './registry.ts';

/** One line of engine output, as a build or push produces it. */
export type LogSink = (line: string) => void;

export interface BuildRequest {
  contextDir: string;
  /** Paths relative to contextDir, Dockerfile included. */
  files: string[];
  tag: string;
  labels: Record<string, string>;
  buildArgs: Record<string, string>;
  noCache: boolean;
  /** Host networking lets RUN steps reach the package mirror without a bridge. */
  networkMode: 'host' | 'default';
}

/** The few image operations the builder needs from an engine. */
export interface ImageEngine {
  ping(): Promise<void>;
  /** The image's id and labels, or null when no such image is present. */
  inspectImage(ref: string): Promise<{ id: string; labels: Record<string, string> } | null>;
  build(request: BuildRequest, log: LogSink): Promise<void>;
  push(ref: string, log: LogSink): Promise<void>;
  pull(ref: string, log: LogSink): Promise<void>;
  importRootfs(tarball: Readable, repo: string, tag: string): Promise<void>;
}

export class EngineStreamError extends Error {}

/**
 * The deploy host's own engine, found as the docker CLI finds it:
 * DOCKER_HOST (unix:// or tcp://, with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH),
 * else the default socket. dockerode's modem reads the same variables.
 */
export function localDocker(): Docker {
  return new Docker();
}

export function localEngineAddress(): string {
  return process.env.DOCKER_HOST || 'unix:///var/run/docker.sock';
}

/** Fails with UnreachableError (exit 3) naming the host and the engine's address. */
export async function pingEngine(docker: Docker, host: string, address: string): Promise<void> {
  try {
    await docker.ping();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new UnreachableError(`${host}: the Docker engine at ${address} does not answer (${code}); is dockerd running?`);
  }
}

export class DockerodeImageEngine implements ImageEngine {
  constructor(private readonly docker: Docker = localDocker()) {}

  async ping(): Promise<void> {
    await pingEngine(this.docker, 'localhost', localEngineAddress());
  }

  async inspectImage(ref: string): Promise<{ id: string; labels: Record<string, string> } | null> {
    try {
      const info = await this.docker.getImage(ref).inspect();
      return { id: info.Id, labels: info.Config?.Labels ?? {} };
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return null;
      throw error;
    }
  }

  async build(request: BuildRequest, log: LogSink): Promise<void> {
    const stream = await this.docker.buildImage(
      { context: request.contextDir, src: request.files },
      {
        t: request.tag,
        labels: request.labels,
        buildargs: request.buildArgs,
        nocache: request.noCache,
        networkmode: request.networkMode,
        rm: true,
        forcerm: true,
      },
    );
    await followStream(this.docker, stream, log);
  }

  async push(ref: string, log: LogSink): Promise<void> {
    // The engine wants an X-Registry-Auth header even for a registry without auth.
    const stream = await this.docker.getImage(ref).push({ authconfig: registryAuth(ref) } as Docker.ImagePushOptions);
    await followStream(this.docker, stream, log);
  }

  async pull(ref: string, log: LogSink): Promise<void> {
    const stream = await this.docker.pull(ref);
    await followStream(this.docker, stream, log);
  }

  async importRootfs(tarball: Readable, repo: string, tag: string): Promise<void> {
    const stream = await this.docker.importImage(tarball, { repo, tag });
    await followStream(this.docker, stream, () => {});
  }
}

/**
 * Credentials come from the environment only (never flags: they would show
 * in the process list): KOLLA_TS_REGISTRY_USERNAME, KOLLA_TS_REGISTRY_PASSWORD.
 */
export function registryAuth(ref: string): Record<string, string> {
  const credentials = credentialsFromEnvironment();
  return credentials ? { ...credentials, serveraddress: ref.split('/')[0]! } : {};
}

/**
 * Engine streams report failure as an `{error, errorDetail}` event, not as a
 * stream error, so every event is checked.
 */
export function followStream(docker: Docker, stream: NodeJS.ReadableStream, log: LogSink): Promise<void> {
  return new Promise((resolve, reject) => {
    let failure: string | undefined;
    docker.modem.followProgress(
      stream,
      (error: Error | null) => {
        if (error) reject(error);
        else if (failure) reject(new EngineStreamError(failure));
        else resolve();
      },
      (event: { stream?: string; status?: string; progress?: string; id?: string; error?: string; errorDetail?: { message?: string } }) => {
        if (event.error || event.errorDetail) {
          failure = event.errorDetail?.message ?? event.error ?? 'unknown engine error';
          log(`ERROR: ${failure}`);
        } else if (event.stream) {
          for (const line of event.stream.split('\n')) if (line.trim()) log(line);
        } else if (event.status && !event.progress) {
          log(event.id ? `${event.id}: ${event.status}` : event.status);
        }
      },
    );
  });
}
