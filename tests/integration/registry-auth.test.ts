/**
 * RegistryClient against real registries that want a login: Debian's
 * docker-registry with htpasswd (HTTP Basic), and a second one with token
 * auth (Bearer) whose token service is a small server in this test. Both
 * serve one tiny image from shared storage, put there over the registry API.
 * Needs docker-registry and openssl; the bcrypt hash comes from the C
 * library's crypt() (libxcrypt) through perl, so nothing is installed for it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryAuthError, RegistryClient } from '../../src/engine/registry.ts';

const dir = mkdtempSync(join(tmpdir(), 'kolla-ts-registry-auth-'));
const USER = 'kollatest';
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const WRONG_PASSWORD = `wrong-${randomBytes(12).toString('hex')}`;
const REPO = 'kollatest-auth/tiny';
const TAG = 'it';
const LABELS = { 'org.kolla-ts.build-key': `sha256:${'ab'.repeat(32)}`, 'org.kolla-ts.image': 'tiny' };
const SERVICE = 'kollatest-registry';
const ISSUER = 'kollatest-token-issuer';

const registries: ChildProcess[] = [];
let basicAddress = '';
let bearerAddress = '';
let tokenServer: Server | undefined;
/** The query of every token request, to check what the client asked for. */
const tokenRequests: URLSearchParams[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`docker-registry did not listen on ${port}`);
}

/** The registry only takes bcrypt; Debian's crypt() (libxcrypt) makes it. */
function bcrypt(password: string): string {
  const alphabet = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  // 22 salt characters; the last carries 2 bits, so it is one of ".Oeu".
  const salt = [...randomBytes(21)].map((byte) => alphabet[byte % 64]).join('') + '.';
  const result = spawnSync('perl', ['-e', 'print crypt($ARGV[0], $ARGV[1])', password, `$2b$05$${salt}`], { encoding: 'utf8' });
  if (!result.stdout.startsWith('$2b$05$')) throw new Error(`crypt() made no bcrypt hash: ${result.stdout}${result.stderr}`);
  return result.stdout;
}

async function startRegistry(name: string, auth: string): Promise<string> {
  const port = await freePort();
  const config = join(dir, `${name}.yml`);
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'storage')}`,
      'http:',
      `  addr: 127.0.0.1:${port}`,
      `  secret: ${randomBytes(16).toString('hex')}`,
      'auth:',
      auth,
    ].join('\n'),
  );
  const child = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
  registries.push(child);
  await waitForPort(port, child);
  return `127.0.0.1:${port}`;
}

const base64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

/** A token the registry accepts: ES256, signed by the key of the certificate it trusts. */
function mintToken(key: string, certificate: string, scope: string | null): string {
  const der = Buffer.from(certificate.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const header = { typ: 'JWT', alg: 'ES256', x5c: [der.toString('base64')] };
  const now = Math.floor(Date.now() / 1000);
  const access = scope ? [{ type: 'repository', name: scope.split(':')[1], actions: scope.split(':')[2]!.split(',') }] : [];
  const claims = { iss: ISSUER, sub: USER, aud: SERVICE, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
  const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature = sign('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' });
  return `${signingInput}.${base64url(signature)}`;
}

function startTokenServer(key: string, certificate: string, port: number): Promise<Server> {
  const expected = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
  const server = createHttpServer((request, response) => {
    const query = new URL(request.url ?? '/', 'http://token').searchParams;
    tokenRequests.push(query);
    if (request.headers.authorization !== expected) {
      response.writeHead(401, { 'Content-Type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    response.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token: mintToken(key, certificate, query.get('scope')) }));
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

/** Puts a one-layer image with LABELS at REPO:TAG, over the registry API, with Basic auth. */
async function putImage(address: string): Promise<void> {
  const authorization = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
  const digest = (data: Buffer): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const emptyTar = Buffer.alloc(1024);
  const layer = gzipSync(emptyTar);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Labels: LABELS }, rootfs: { type: 'layers', diff_ids: [digest(emptyTar)] } }));
  for (const blob of [layer, config]) {
    const start = await fetch(`http://${address}/v2/${REPO}/blobs/uploads/`, { method: 'POST', headers: { Authorization: authorization } });
    expect(start.status).toBe(202);
    const location = new URL(start.headers.get('location')!, `http://${address}`);
    location.searchParams.set('digest', digest(blob));
    const put = await fetch(location, { method: 'PUT', headers: { Authorization: authorization, 'Content-Type': 'application/octet-stream' }, body: blob });
    expect(put.status).toBe(201);
  }
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: digest(config) },
    layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: layer.length, digest: digest(layer) }],
  };
  const put = await fetch(`http://${address}/v2/${REPO}/manifests/${TAG}`, {
    method: 'PUT',
    headers: { Authorization: authorization, 'Content-Type': manifest.mediaType },
    body: JSON.stringify(manifest),
  });
  expect(put.status).toBe(201);
}

/** The client as a build makes it: credentials from the environment, or none. */
function clientWith(address: string, password?: string): RegistryClient {
  const saved = { username: process.env.KOLLA_TS_REGISTRY_USERNAME, password: process.env.KOLLA_TS_REGISTRY_PASSWORD };
  try {
    delete process.env.KOLLA_TS_REGISTRY_USERNAME;
    delete process.env.KOLLA_TS_REGISTRY_PASSWORD;
    if (password !== undefined) {
      process.env.KOLLA_TS_REGISTRY_USERNAME = USER;
      process.env.KOLLA_TS_REGISTRY_PASSWORD = password;
    }
    return new RegistryClient(address);
  } finally {
    for (const [name, value] of [['KOLLA_TS_REGISTRY_USERNAME', saved.username], ['KOLLA_TS_REGISTRY_PASSWORD', saved.password]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(RegistryAuthError);
  const message = (error as Error).message;
  expect(message).not.toContain(PASSWORD);
  expect(message).not.toContain(WRONG_PASSWORD);
  return message;
}

describe('registries that want a login', () => {
  beforeAll(async () => {
    for (const tool of ['docker-registry', 'openssl', 'perl']) {
      if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is not installed (.ci/run installs the test tools)`);
    }
    writeFileSync(join(dir, 'htpasswd'), `${USER}:${bcrypt(PASSWORD)}\n`);
    basicAddress = await startRegistry('basic', ['  htpasswd:', `    realm: ${SERVICE}`, `    path: ${join(dir, 'htpasswd')}`].join('\n'));
    await putImage(basicAddress);

    const cert = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=kollatest-token', '-keyout', join(dir, 'token.key'), '-out', join(dir, 'token.pem')]);
    if (cert.status !== 0) throw new Error(`openssl failed: ${cert.stderr}`);
    const tokenPort = await freePort();
    tokenServer = await startTokenServer(readFileSync(join(dir, 'token.key'), 'utf8'), readFileSync(join(dir, 'token.pem'), 'utf8'), tokenPort);
    // Same storage: the image put through the Basic registry is served here too.
    bearerAddress = await startRegistry(
      'bearer',
      ['  token:', `    realm: http://127.0.0.1:${tokenPort}/token`, `    service: ${SERVICE}`, `    issuer: ${ISSUER}`, `    rootcertbundle: ${join(dir, 'token.pem')}`].join('\n'),
    );
  });

  afterAll(async () => {
    for (const child of registries) {
      if (child.exitCode !== null) continue;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      process.kill(child.pid!);
      await exited;
    }
    await new Promise((resolve) => (tokenServer ? tokenServer.close(resolve) : resolve(undefined)));
    rmSync(dir, { recursive: true, force: true });
  });

  describe('HTTP Basic (htpasswd)', () => {
    it('reads the labels with the credentials from the environment; an absent tag is still absent', async () => {
      const client = clientWith(basicAddress, PASSWORD);
      await client.ping();
      expect(await client.imageLabels(REPO, TAG)).toEqual(LABELS);
      expect(await client.imageLabels(REPO, 'no-such-tag')).toBeNull();
    });

    it('without credentials, names the registry and says it refused, instead of reporting the image absent', async () => {
      const client = clientWith(basicAddress);
      const message = await refusal(client.imageLabels(REPO, TAG));
      expect(message).toContain(`registry ${basicAddress} refused access`);
      expect(message).toContain('no credentials given; set KOLLA_TS_REGISTRY_USERNAME and KOLLA_TS_REGISTRY_PASSWORD');
      expect(await refusal(client.ping())).toContain(`registry ${basicAddress} refused access`);
    });

    it('with a wrong password, says the credentials were refused, without the password', async () => {
      const message = await refusal(clientWith(basicAddress, WRONG_PASSWORD).imageLabels(REPO, TAG));
      expect(message).toBe(`registry ${basicAddress} refused the credentials of user ${USER} (HTTP 401 for /v2/${REPO}/manifests/${TAG})`);
    });
  });

  describe('Bearer tokens', () => {
    it('gets a token for the scope with the credentials and reads the labels', async () => {
      tokenRequests.length = 0;
      const client = clientWith(bearerAddress, PASSWORD);
      await client.ping();
      expect(await client.imageLabels(REPO, TAG)).toEqual(LABELS);
      expect(tokenRequests.map((query) => [query.get('service'), query.get('scope')])).toEqual([
        [SERVICE, null],
        [SERVICE, `repository:${REPO}:pull`],
      ]);
    });

    it('without credentials or with a wrong password, names the registry and the refusal', async () => {
      const anonymous = await refusal(clientWith(bearerAddress).imageLabels(REPO, TAG));
      expect(anonymous).toContain(`registry ${bearerAddress} refused access (HTTP 401 from its token service http://127.0.0.1:`);
      expect(anonymous).toContain('no credentials given');
      const wrong = await refusal(clientWith(bearerAddress, WRONG_PASSWORD).imageLabels(REPO, TAG));
      expect(wrong).toContain(`registry ${bearerAddress} refused the credentials of user ${USER} (HTTP 401 from its token service`);
    });
  });
});
