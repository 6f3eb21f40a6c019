/**
 * The SSH transport against a real sshd on loopback: files written
 * atomically over SFTP, the remote Docker engine through the one
 * persistent connection, and host keys verified.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshHost } from '../../src/transport/ssh.ts';
import { requireEngine } from '../helpers/environment.ts';

const dir = mkdtempSync(join(tmpdir(), 'kolla-ts-sshd-'));
let sshd: ChildProcess | undefined;
let port = 0;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port: chosen } = server.address() as { port: number };
      server.close(() => resolve(chosen));
    });
  });
}

function keygen(file: string): void {
  const result = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file]);
  if (result.status !== 0) throw new Error(`ssh-keygen failed: ${result.stderr}`);
}

async function waitForPort(target: number): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(target, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`sshd did not listen on ${target}`);
}

const spec = () => ({
  name: 'ssh-node',
  connection: 'ssh' as const,
  address: '127.0.0.1',
  port,
  user: 'root',
  keyFile: join(dir, 'client_key'),
  knownHosts: join(dir, 'known_hosts'),
});

describe('SSH transport', () => {
  beforeAll(async () => {
    await requireEngine();
    port = await freePort();
    keygen(join(dir, 'host_key'));
    keygen(join(dir, 'client_key'));
    writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')));
    writeFileSync(join(dir, 'known_hosts'), `[127.0.0.1]:${port} ${readFileSync(join(dir, 'host_key.pub'), 'utf8')}`);
    writeFileSync(
      join(dir, 'sshd_config'),
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${join(dir, 'host_key')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'AllowStreamLocalForwarding yes',
        'Subsystem sftp internal-sftp',
      ].join('\n'),
    );
    spawnSync('mkdir', ['-p', '/run/sshd']);
    sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: 'ignore' });
    await waitForPort(port);
  });

  afterAll(() => {
    if (sshd?.pid) process.kill(sshd.pid);
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes files atomically with their mode, reads and lists them', async () => {
    const host = await SshHost.connect(spec());
    try {
      const target = join(dir, 'remote', 'etc', 'keystone');
      await host.ensureDir(target, 0o700);
      expect(statSync(target).mode & 0o777).toBe(0o700);
      chmodSync(target, 0o755);
      await host.ensureDir(target, 0o700);
      expect(statSync(target).mode & 0o777).toBe(0o700);
      await host.writeFileAtomic(join(target, 'keystone.conf'), '[DEFAULT]\nfirst = 1\n', 0o600);
      await host.writeFileAtomic(join(target, 'keystone.conf'), '[DEFAULT]\nsecond = 2\n', 0o600);
      expect(readFileSync(join(target, 'keystone.conf'), 'utf8')).toBe('[DEFAULT]\nsecond = 2\n');
      expect(statSync(join(target, 'keystone.conf')).mode & 0o777).toBe(0o600);
      expect(await host.listDir(target)).toEqual(['keystone.conf']);
      expect((await host.readFile(join(target, 'keystone.conf')))?.toString()).toContain('second');
      expect(await host.readFile(join(target, 'absent'))).toBeNull();
      expect(await host.listDir(join(target, 'absent'))).toEqual([]);
      expect(await host.interfaceAddress('lo')).toBe('127.0.0.1');
      await host.remove(join(dir, 'remote'));
      expect(await host.listDir(target)).toEqual([]);
    } finally {
      await host.close();
    }
  });

  it('opens the connection again once when it drops, then calls the host lost', async () => {
    const host = await SshHost.connect(spec());
    try {
      // The shell's parent is the sshd process serving this connection: killing it drops the connection.
      const dropConnection = async (): Promise<void> => {
        const serving = Number((await host.exec(['sh', '-c', 'echo $PPID'])).stdout.trim());
        expect(serving).toBeGreaterThan(1);
        process.kill(serving, 'SIGKILL');
        await expect.poll(() => host.lost, { timeout: 10_000 }).toBe(true);
      };
      await dropConnection();
      // Files, commands and the engine all go on over the one new connection.
      await host.writeFileAtomic(join(dir, 'after-drop'), 'still here\n', 0o600);
      expect(readFileSync(join(dir, 'after-drop'), 'utf8')).toBe('still here\n');
      expect((await host.exec(['true'])).code).toBe(0);
      expect((await host.docker.version()).ApiVersion).toMatch(/^1\.\d+$/);
      expect(host.lost).toBe(false);
      await dropConnection();
      await expect(host.readFile(join(dir, 'after-drop'))).rejects.toThrow(/host ssh-node: the SSH connection to 127\.0\.0\.1:\d+ was lost/);
      await expect(host.docker.version()).rejects.toThrow(/was lost/);
    } finally {
      await host.close();
    }
  });

  it('reaches the Docker engine through the one connection', async () => {
    const host = await SshHost.connect(spec());
    try {
      const [info, version, containers] = await Promise.all([host.docker.info(), host.docker.version(), host.docker.listContainers({ all: true })]);
      expect(info.ID).toBeTruthy();
      expect(version.ApiVersion).toMatch(/^1\.\d+$/);
      expect(Array.isArray(containers)).toBe(true);
    } finally {
      await host.close();
    }
  });

  it('runs more commands at once than sshd allows sessions on one connection', async () => {
    const host = await SshHost.connect(spec());
    try {
      // sshd's MaxSessions is 10, the SFTP session included: the rest wait for a session instead of failing.
      const results = await Promise.all(Array.from({ length: 30 }, (_, i) => host.exec(['echo', String(i)])));
      expect(results.map((r) => r.stdout.trim())).toEqual(Array.from({ length: 30 }, (_, i) => String(i)));
    } finally {
      await host.close();
    }
  });

  it('accepts a hashed known_hosts entry (ssh-keygen -H) and runs programs without a shell of ours', async () => {
    const hashed = join(dir, 'known_hosts_hashed');
    writeFileSync(hashed, readFileSync(join(dir, 'known_hosts')));
    expect(spawnSync('ssh-keygen', ['-H', '-f', hashed]).status).toBe(0);
    expect(readFileSync(hashed, 'utf8')).toMatch(/^\|1\|/);
    const host = await SshHost.connect({ ...spec(), knownHosts: hashed });
    try {
      const marker = join(dir, 'pwned');
      const result = await host.exec(['printf', '%s', `x; touch ${marker}`]);
      expect(result).toEqual({ code: 0, stdout: `x; touch ${marker}`, stderr: '' });
      expect(spawnSync('test', ['-e', marker]).status).toBe(1);
      expect((await host.exec(['false'])).code).toBe(1);
    } finally {
      await host.close();
    }
  });

  it('refuses a host whose key does not match known_hosts', async () => {
    keygen(join(dir, 'other_key'));
    writeFileSync(join(dir, 'known_hosts_wrong'), `[127.0.0.1]:${port} ${readFileSync(join(dir, 'other_key.pub'), 'utf8')}`);
    // The key the hostVerifier rejected, named with the host and the file, not any failure to connect.
    await expect(SshHost.connect({ ...spec(), knownHosts: join(dir, 'known_hosts_wrong') })).rejects.toThrow(
      `(127.0.0.1:${port}) offered a host key that ${join(dir, 'known_hosts_wrong')} does not list for it; refusing to connect`,
    );
    await expect(SshHost.connect({ ...spec(), knownHosts: join(dir, 'nothing_here') })).rejects.toThrow(/no host key for 127.0.0.1/);
  });

});
