import { InputError, UnreachableError } from '../errors.ts';

const MANIFEST_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
].join(', ');

export interface RegistryCredentials {
  username: string;
  password: string;
}

/**
 * Credentials come from the environment only, as the engine push takes them
 * (src/engine/docker.ts): KOLLA_TS_REGISTRY_USERNAME, KOLLA_TS_REGISTRY_PASSWORD.
 */
export function credentialsFromEnvironment(env: NodeJS.ProcessEnv = process.env): RegistryCredentials | undefined {
  const username = env.KOLLA_TS_REGISTRY_USERNAME;
  const password = env.KOLLA_TS_REGISTRY_PASSWORD;
  return username && password ? { username, password } : undefined;
}

/** The registry wants credentials we do not have, or refused the ones we gave. */
export class RegistryAuthError extends InputError {}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Reads image labels straight from a v2 registry, without pulling layers. */
export class RegistryClient {
  readonly baseUrl: string;
  /** Learnt from a Basic challenge; the registry takes it for every path. */
  private basicAuthorization?: string;
  /** Bearer tokens by scope ('' for /v2/ itself); a token only covers its scope. */
  private readonly bearerAuthorizations = new Map<string, string>();

  constructor(
    readonly address: string,
    private readonly credentials: RegistryCredentials | undefined = credentialsFromEnvironment(),
  ) {
    this.baseUrl = `${isLoopback(address.replace(/:\d+$/, '')) ? 'http' : 'https'}://${address}`;
  }

  /** Up, and letting us in: a refusal here stops a build before it starts. */
  async ping(): Promise<void> {
    const response = await this.request('/v2/', '');
    await response.body?.cancel();
    if (!response.ok) throw new UnreachableError(`registry ${this.address} answered HTTP ${response.status} on /v2/`);
  }

  /** Labels of repo:tag in the registry, or null when it has no such tag. */
  async imageLabels(repo: string, tag: string): Promise<Record<string, string> | null> {
    const scope = `repository:${repo}:pull`;
    const manifest = await this.getJson(`/v2/${repo}/manifests/${tag}`, scope, MANIFEST_TYPES);
    if (!manifest) return null;
    const digest = (manifest as { config?: { digest?: string } }).config?.digest;
    if (!digest) return null;
    const config = await this.getJson(`/v2/${repo}/blobs/${digest}`, scope);
    return (config as { config?: { Labels?: Record<string, string> } } | null)?.config?.Labels ?? {};
  }

  private async getJson(path: string, scope: string, accept?: string): Promise<unknown> {
    const response = await this.request(path, scope, accept);
    if (response.status === 404) {
      await response.body?.cancel();
      return null;
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new UnreachableError(`registry ${this.address} answered HTTP ${response.status} for ${path}`);
    }
    return response.json();
  }

  /**
   * GET path, answering one authentication challenge (a cached token may
   * have expired). 401 or 403 after that is a refusal, never "absent": a
   * registry that hides its images would otherwise have every image rebuilt.
   */
  private async request(path: string, scope: string, accept?: string): Promise<Response> {
    let response = await this.send(path, accept, this.bearerAuthorizations.get(scope) ?? this.basicAuthorization);
    if (response.status === 401) {
      const challenge = parseChallenge(response.headers.get('www-authenticate'));
      await response.body?.cancel();
      response = await this.send(path, accept, await this.authorize(challenge, scope, path));
    }
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      throw this.refused(`HTTP ${response.status} for ${path}`);
    }
    return response;
  }

  /** GET a path of the registry, or a full URL of its token service (`who`, for messages). */
  private async send(url: string, accept: string | undefined, authorization: string | undefined, who = `registry ${this.address}`): Promise<Response> {
    const headers: Record<string, string> = {};
    if (accept) headers.Accept = accept;
    if (authorization) headers.Authorization = authorization;
    try {
      return await fetch(url.startsWith('/') ? `${this.baseUrl}${url}` : url, { headers, signal: AbortSignal.timeout(30_000) });
    } catch (error) {
      throw new UnreachableError(`${who} is unreachable (${causeOf(error)})`);
    }
  }

  /** The Authorization header a challenge asks for, remembered for later requests. */
  private async authorize(challenge: Challenge | null, scope: string, path: string): Promise<string> {
    if (challenge?.scheme === 'basic') {
      if (!this.credentials) throw this.refused(`HTTP 401 for ${path}`);
      this.basicAuthorization = basic(this.credentials);
      return this.basicAuthorization;
    }
    if (challenge?.scheme !== 'bearer') {
      throw new UnreachableError(`registry ${this.address} answered HTTP 401 for ${path} asking for ${challenge ? `${challenge.scheme} authentication` : 'no authentication scheme'}; kolla-ts speaks Basic and Bearer`);
    }
    const token = await this.fetchToken(challenge.params, scope);
    const authorization = `Bearer ${token}`;
    this.bearerAuthorizations.set(scope, authorization);
    return authorization;
  }

  /** The token flow: GET realm?service=...&scope=..., with Basic credentials when we have them. */
  private async fetchToken(params: Record<string, string>, scope: string): Promise<string> {
    let realm: URL;
    try {
      realm = new URL(params.realm ?? '');
    } catch {
      throw new UnreachableError(`registry ${this.address} asks for a token without a usable realm ("${params.realm ?? ''}")`);
    }
    const service = `token service ${realm.origin}${realm.pathname} of registry ${this.address}`;
    // A password goes over plain HTTP only to this machine.
    if (this.credentials && realm.protocol !== 'https:' && !isLoopback(realm.hostname)) {
      throw new UnreachableError(`the ${service} is not HTTPS; kolla-ts does not send credentials to it`);
    }
    if (params.service) realm.searchParams.set('service', params.service);
    const wanted = params.scope ?? scope;
    if (wanted) realm.searchParams.set('scope', wanted);
    const response = await this.send(realm.href, undefined, this.credentials ? basic(this.credentials) : undefined, `the ${service}`);
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      throw this.refused(`HTTP ${response.status} from its token service ${realm.origin}${realm.pathname}`);
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new UnreachableError(`the ${service} answered HTTP ${response.status}`);
    }
    const body = (await response.json().catch(() => ({}))) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new UnreachableError(`the ${service} answered without a token`);
    return token;
  }

  /** Names the registry and whose credentials, never the password. */
  private refused(detail: string): RegistryAuthError {
    if (!this.credentials) {
      return new RegistryAuthError(
        `registry ${this.address} refused access (${detail}): no credentials given; set KOLLA_TS_REGISTRY_USERNAME and KOLLA_TS_REGISTRY_PASSWORD`,
      );
    }
    return new RegistryAuthError(`registry ${this.address} refused the credentials of user ${this.credentials.username} (${detail})`);
  }
}

function basic(credentials: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}

/** `Bearer realm="...",service="...",scope="repository:a/b:pull"`; values may hold commas. */
function parseChallenge(header: string | null): Challenge | null {
  const match = /^\s*(\S+)\s*(.*)$/.exec(header ?? '');
  if (!match) return null;
  const params: Record<string, string> = {};
  for (const param of match[2]!.matchAll(/([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) {
    params[param[1]!.toLowerCase()] = param[2] !== undefined ? param[2].replace(/\\(.)/g, '$1') : param[3]!;
  }
  return { scheme: match[1]!.toLowerCase(), params };
}

/** Loopback registries are plain HTTP, as the Docker engine allows them to be. */
function isLoopback(host: string): boolean {
  return /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/.test(host);
}

function causeOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}
