import { CloudApiError } from '../errors.ts';

/** How kolla-ts logs in to the cloud it deployed: admin in the admin project, as admin-openrc.sh does. */
export interface CloudCredentials {
  authUrl: string;
  username: string;
  password: string;
  projectName: string;
  region: string;
  /** Which catalog URL to call: the deploy host reaches the internal ones on an all-in-one. */
  interface: 'internal' | 'public';
}

/** The calls init-cloud makes: a small interface so its logic can be tested without a cloud. */
export interface CloudApi {
  readonly projectId: string;
  /** GET; a 404 is `undefined`, not an error (the way to ask "is it there?"). */
  find<T>(service: ServiceType, path: string): Promise<T | undefined>;
  get<T>(service: ServiceType, path: string): Promise<T>;
  send<T>(service: ServiceType, method: 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T>;
  /** PUT of raw bytes (an image's data). */
  upload(service: ServiceType, path: string, data: Uint8Array): Promise<void>;
}

export type ServiceType = 'network' | 'compute' | 'image' | 'identity';

interface CatalogEntry {
  type: string;
  endpoints: { interface: string; region_id?: string; region?: string; url: string }[];
}

/**
 * One keystone token and the catalog that came with it, used for every call.
 * Errors name the method, the service and the path, and carry the API's own
 * message; the password is only ever in the login request's body.
 */
export class OpenStackApi implements CloudApi {
  private constructor(
    private readonly token: string,
    private readonly endpoints: Map<string, string>,
    readonly projectId: string,
    private readonly fetchImpl: typeof fetch,
  ) {}

  static async login(credentials: CloudCredentials, fetchImpl: typeof fetch = fetch): Promise<OpenStackApi> {
    const body = {
      auth: {
        identity: { methods: ['password'], password: { user: { name: credentials.username, domain: { id: 'default' }, password: credentials.password } } },
        scope: { project: { name: credentials.projectName, domain: { id: 'default' } } },
      },
    };
    const url = `${credentials.authUrl.replace(/\/+$/, '')}/auth/tokens`;
    let response: Response;
    try {
      response = await fetchImpl(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    } catch (error) {
      throw new CloudApiError(`cannot reach keystone at ${credentials.authUrl}: ${causeOf(error)}`);
    }
    if (!response.ok) {
      const why = response.status === 401 ? 'it refused the admin credentials from passwords.yml (keystone_admin_password)' : await apiMessage(response);
      throw new CloudApiError(`login to keystone at ${credentials.authUrl} failed (${response.status}): ${why}`);
    }
    const token = response.headers.get('x-subject-token');
    const { token: issued } = (await response.json()) as { token: { project: { id: string }; catalog: CatalogEntry[] } };
    if (!token) throw new CloudApiError(`keystone at ${credentials.authUrl} issued no token`);
    const endpoints = new Map<string, string>();
    for (const entry of issued.catalog) {
      const endpoint = entry.endpoints.find((e) => e.interface === credentials.interface && (e.region_id ?? e.region) === credentials.region);
      if (endpoint) endpoints.set(entry.type, endpoint.url.replace(/\/+$/, ''));
    }
    return new OpenStackApi(token, endpoints, issued.project.id, fetchImpl);
  }

  async find<T>(service: ServiceType, path: string): Promise<T | undefined> {
    const response = await this.call('GET', service, path);
    if (response.status === 404) return undefined;
    return (await (await this.checked('GET', service, path, response)).json()) as T;
  }

  async get<T>(service: ServiceType, path: string): Promise<T> {
    return (await (await this.checked('GET', service, path, await this.call('GET', service, path))).json()) as T;
  }

  async send<T>(service: ServiceType, method: 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const response = await this.call(method, service, path, body === undefined ? undefined : JSON.stringify(body), 'application/json');
    const text = await (await this.checked(method, service, path, response)).text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  async upload(service: ServiceType, path: string, data: Uint8Array): Promise<void> {
    await this.checked('PUT', service, path, await this.call('PUT', service, path, data, 'application/octet-stream'));
  }

  private async call(method: string, service: ServiceType, path: string, body?: string | Uint8Array, contentType?: string): Promise<Response> {
    const base = this.endpoints.get(service);
    if (!base) throw new CloudApiError(`the catalog has no ${service} endpoint: is its service deployed and registered?`);
    const headers: Record<string, string> = { 'x-auth-token': this.token, accept: 'application/json' };
    if (contentType) headers['content-type'] = contentType;
    try {
      return await this.fetchImpl(`${base}${path}`, { method, headers, ...(body !== undefined ? { body: body as BodyInit } : {}) });
    } catch (error) {
      throw new CloudApiError(`${method} ${service} ${path}: cannot reach ${base}: ${causeOf(error)}`);
    }
  }

  /** A failed call becomes an error naming it, with the API's own message (neutron's "No tenant network is available for allocation", say). */
  private async checked(method: string, service: ServiceType, path: string, response: Response): Promise<Response> {
    if (response.ok) return response;
    throw new CloudApiError(`${method} ${service} ${path} failed (${response.status}): ${await apiMessage(response)}`);
  }
}

/** The message an OpenStack API puts in an error body, whichever of its shapes it uses. */
async function apiMessage(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    for (const value of Object.values(body)) {
      if (value && typeof value === 'object' && 'message' in value) return String((value as { message: unknown }).message);
    }
    if (typeof body.message === 'string') return body.message;
    if (typeof body.faultstring === 'string') return body.faultstring;
  } catch {
    // Not JSON: glance answers some errors in HTML or plain text.
  }
  return text.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300) || response.statusText;
}

function causeOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}
