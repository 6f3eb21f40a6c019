import { UnreachableError } from '../errors.ts';

const MANIFEST_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
].join(', ');

/** Reads image labels straight from a v2 registry, without pulling layers. */
export class RegistryClient {
  readonly baseUrl: string;

  constructor(readonly address: string) {
    // Loopback registries are plain HTTP, as the Docker engine allows them to be.
    const loopback = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/.test(address);
    this.baseUrl = `${loopback ? 'http' : 'https'}://${address}`;
  }

  async ping(): Promise<void> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}/v2/`, { signal: AbortSignal.timeout(10_000) });
    } catch (error) {
      throw new UnreachableError(`registry ${this.address} is unreachable (${causeOf(error)})`);
    }
    // 401 means "up, wants credentials": the engine push will say more.
    if (!response.ok && response.status !== 401) {
      throw new UnreachableError(`registry ${this.address} answered HTTP ${response.status} on /v2/`);
    }
  }

  /** Labels of repo:tag in the registry, or null when it has no such tag. */
  async imageLabels(repo: string, tag: string): Promise<Record<string, string> | null> {
    const manifest = await this.get(`/v2/${repo}/manifests/${tag}`, MANIFEST_TYPES);
    if (!manifest) return null;
    const digest = (manifest as { config?: { digest?: string } }).config?.digest;
    if (!digest) return null;
    const config = await this.get(`/v2/${repo}/blobs/${digest}`);
    return (config as { config?: { Labels?: Record<string, string> } } | null)?.config?.Labels ?? {};
  }

  private async get(path: string, accept?: string): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        headers: accept ? { Accept: accept } : {},
        signal: AbortSignal.timeout(30_000),
      });
    } catch (error) {
      throw new UnreachableError(`registry ${this.address} is unreachable (${causeOf(error)})`);
    }
    if (response.status === 404 || response.status === 401) return null;
    if (!response.ok) throw new UnreachableError(`registry ${this.address} answered HTTP ${response.status} for ${path}`);
    return response.json();
  }
}

function causeOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}
