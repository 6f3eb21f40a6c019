/**
 * End to end on this machine: build every image, deploy the all-in-one
 * cloud, drive it with the real OpenStack client, then show idempotency,
 * override handling, bad input and recovery from a failed step.
 * Needs root, dockerd and the registry (scripts/engine-up.sh), and
 * python3-openstackclient; .ci/run provides all of them.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { beforeAll, describe, expect, it } from 'vitest';
import { badInputs, DEPLOY_TARGETS } from '../helpers/bad-inputs.ts';
import { GiveUp, PROJECT_ROOT, REGISTRY, requireEngine, runCli, waitFor } from '../helpers/environment.ts';
import { volumeCheckScript, VOLUME_CHECK_RESULT } from '../helpers/guest.ts';

const run = promisify(execFile);
const docker = new Docker();
// One config dir across runs: a rerun finds the passwords the cloud was deployed with.
const configDir = process.env.KOLLA_TS_E2E_CONFIGDIR ?? '/var/lib/kolla-ts-host/e2e-etc';
const runId = Date.now().toString(36);
const inventory = join(PROJECT_ROOT, 'inventory', 'all-in-one.yml');
const deployArgs = ['-i', inventory, '--configdir', configDir];
const log = (line: string): void => console.log(`  | ${line}`);
// init-cloud's default external network is 198.18.64.0/24; its gateway is on this machine.
const EXTERNAL_GATEWAY = '198.18.64.1';

let openstackEnv: Record<string, string> = {};

async function openstack(...args: string[]): Promise<unknown> {
  const { stdout } = await run('openstack', [...args, '-f', 'json'], { env: { ...process.env, ...openstackEnv }, maxBuffer: 16 * 1024 * 1024 });
  return JSON.parse(stdout);
}

async function kollaTs(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const result = await runCli(args, { onLine: log });
  return result;
}

/** Every file under a directory with its content's hash: any change to it shows. */
function treeDigest(root: string): string {
  const hash = createHash('sha256');
  for (const path of (readdirSync(root, { recursive: true, encoding: 'utf8' }) as string[]).sort()) {
    const full = join(root, path);
    if (statSync(full).isFile()) hash.update(`${path}\0`).update(readFileSync(full));
  }
  return hash.digest('hex');
}

/** Every image of the tree: a folder under images/ with a Dockerfile.hbs. */
function imageNames(): string[] {
  return readdirSync(join(PROJECT_ROOT, 'images'), { recursive: true, encoding: 'utf8' })
    .filter((path) => basename(path) === 'Dockerfile.hbs')
    .map((path) => basename(dirname(path)));
}

/** Container id and start time of every managed container. */
async function containerSnapshot(): Promise<Map<string, string>> {
  const list = await docker.listContainers({ all: true, filters: { label: ['org.kolla-ts.managed=true'] } });
  const snapshot = new Map<string, string>();
  for (const c of list) {
    const info = await docker.getContainer(c.Id).inspect();
    snapshot.set(info.Name.slice(1), `${info.Id}@${info.State.StartedAt}`);
  }
  return snapshot;
}

function changedContainers(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...after.keys()].filter((name) => before.get(name) !== after.get(name)).sort();
}

/** A new version of an image: zed plus a label, pushed under a tag of this run. Returns the tag. */
async function pushLabelledTag(image: string): Promise<string> {
  const tag = `zed-up-${runId}`;
  const context = mkdtempSync(join(tmpdir(), 'kolla-ts-e2e-tag-'));
  writeFileSync(join(context, 'Dockerfile'), `FROM ${REGISTRY}/kolla/${image}:zed\nLABEL org.kolla-ts.test-upgrade=${runId}\n`);
  await run('docker', ['build', '-q', '-t', `${REGISTRY}/kolla/${image}:${tag}`, context]);
  await run('docker', ['push', `${REGISTRY}/kolla/${image}:${tag}`]);
  rmSync(context, { recursive: true, force: true });
  return tag;
}

/** A server's qemu process on this machine (libvirt runs in the host's pid namespace) and its status in nova. */
async function serverProbe(name: string): Promise<{ serverId: string; qemuPid: () => Promise<string>; status: () => Promise<string> }> {
  const [server] = (await openstack('server', 'list', '--name', name)) as { ID: string }[];
  const instance = ((await openstack('server', 'show', server!.ID)) as Record<string, string>)['OS-EXT-SRV-ATTR:instance_name']!;
  return {
    serverId: server!.ID,
    qemuPid: async () => (await run('pgrep', ['-f', `guest=${instance}`]).catch(() => ({ stdout: '' }))).stdout.trim(),
    status: async () => ((await openstack('server', 'show', server!.ID)) as { status: string }).status,
  };
}

describe('all-in-one cloud', () => {
  beforeAll(async () => {
    await requireEngine();
    // The external network's gateway is this machine's end of the provider veth pair.
    await run('bash', [join(PROJECT_ROOT, 'scripts', 'provider-interface.sh'), 'kolla-ext0', `${EXTERNAL_GATEWAY}/24`]);
    mkdirSync(configDir, { recursive: true, mode: 0o700 });
    rmSync(join(configDir, 'config'), { recursive: true, force: true });
    copyFileSync(join(PROJECT_ROOT, 'inventory', 'globals.all-in-one.yml'), join(configDir, 'globals.yml'));
  });

  it('builds every image of the default profile and pushes it', { timeout: 40 * 60_000 }, async () => {
    const summaryFile = join(configDir, 'build-summary.json');
    rmSync(summaryFile, { force: true });
    const result = await kollaTs(['build', '--profile', 'default', '--registry', REGISTRY, '--push', '--threads', '2', '--retries', '1', '--logs-dir', join(configDir, 'build-logs'), '--summary-json', summaryFile]);
    expect(result.code, result.stderr.slice(-3000)).toBe(0);
    // Every image of the tree is named, as built now or as up to date (its key already in the registry).
    const summary = JSON.parse(readFileSync(summaryFile, 'utf8')) as { built: string[]; skipped: { name: string }[]; failed: unknown[]; unmatched: string[] };
    expect(summary.failed).toEqual([]);
    expect(summary.unmatched).toEqual([]);
    const named = [...summary.built, ...summary.skipped.map((s) => s.name)].sort();
    expect(named).toEqual(imageNames().sort());
  });

  it('takes this machine over from a cloud another config directory left here (a developer\'s, a benchmark\'s)', { timeout: 10 * 60_000 }, async () => {
    const ownerFile = '/etc/kolla/.kolla-ts/owner.json';
    const owner = existsSync(ownerFile) ? (JSON.parse(readFileSync(ownerFile, 'utf8')) as { configDir?: string }).configDir : undefined;
    if (!owner || owner === configDir) return;
    if (existsSync(join(owner, 'globals.yml')) && existsSync(join(owner, 'passwords.yml'))) {
      // Its data goes too: a database or Ceph monitor store made with that cloud's passwords.yml would not open with this one's.
      log(`destroying the cloud of ${owner}, its data included`);
      const destroyed = await kollaTs(['destroy', '-i', inventory, '--configdir', owner, '--include-data', '--yes-i-really-really-mean-it']);
      expect(destroyed.code, destroyed.stderr).toBe(0);
    }
    rmSync(ownerFile, { force: true });
  });

  it('generates passwords with mode 0600 and keeps them on a second run', async () => {
    expect((await kollaTs(['genpwd', '--configdir', configDir])).code).toBe(0);
    const file = join(configDir, 'passwords.yml');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const first = readFileSync(file, 'utf8');
    expect((await kollaTs(['genpwd', '--configdir', configDir])).code).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(first);
  });

  it('deploys the cloud and every container becomes healthy', { timeout: 40 * 60_000 }, async () => {
    const plan = await kollaTs(['plan', ...deployArgs, '--json']);
    expect(plan.code, plan.stderr).toBe(0);
    expect(JSON.parse(plan.stdout).services.map((s: { service: string }) => s.service)).toEqual(
      expect.arrayContaining(['mariadb', 'rabbitmq', 'keystone', 'glance', 'placement', 'nova', 'neutron']),
    );
    const result = await kollaTs(['deploy', ...deployArgs]);
    expect(result.code, result.stderr.slice(-4000)).toBe(0);
    const check = await kollaTs(['check', ...deployArgs]);
    expect(check.code, check.stderr).toBe(0);

    const openrc = await kollaTs(['post-deploy', ...deployArgs]);
    expect(openrc.code).toBe(0);
    const file = join(configDir, 'admin-openrc.sh');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    openstackEnv = Object.fromEntries(
      [...readFileSync(file, 'utf8').matchAll(/^export (\w+)='?([^'\n]*)'?$/gm)].map((m) => [m[1]!, m[2]!]),
    );
  });

  it('keeps secrets out of container environments, commands, labels and health checks; health checks run without a shell', async () => {
    const passwords = readFileSync(join(configDir, 'passwords.yml'), 'utf8')
      .split('\n')
      .map((line) => line.split(': ')[1]?.trim())
      .filter((v): v is string => Boolean(v && v.length >= 16));
    const list = await docker.listContainers({ all: true, filters: { label: ['org.kolla-ts.managed=true'] } });
    for (const c of list) {
      const info = await docker.getContainer(c.Id).inspect();
      const visible = JSON.stringify([info.Config.Env, info.Config.Cmd, info.Config.Entrypoint, info.Config.Labels, info.Args, info.Config.Healthcheck]);
      for (const secret of passwords) expect(visible, info.Name).not.toContain(secret);
      if (info.Config.Healthcheck) expect(info.Config.Healthcheck.Test?.[0], info.Name).toBe('CMD');
    }
    const confMode = statSync('/etc/kolla/keystone/keystone.conf').mode & 0o777;
    expect(confMode).toBe(0o600);
  });

  it('answers the real OpenStack client and boots a server', { timeout: 20 * 60_000 }, async () => {
    const token = (await openstack('token', 'issue')) as { id: string };
    expect(token.id.length).toBeGreaterThan(20);
    const catalog = (await openstack('catalog', 'list')) as { Type: string }[];
    expect(catalog.map((c) => c.Type).sort()).toEqual(expect.arrayContaining(['compute', 'identity', 'image', 'network', 'placement']));

    const services = await waitFor(
      'nova services up',
      async () => {
        const list = (await openstack('compute', 'service', 'list')) as { Binary: string; State: string }[];
        const up = new Set(list.filter((s) => s.State === 'up').map((s) => s.Binary));
        return ['nova-conductor', 'nova-scheduler', 'nova-compute'].every((b) => up.has(b)) ? list : undefined;
      },
      300,
    );
    expect(services.length).toBeGreaterThanOrEqual(3);
    await waitFor(
      'network agents alive',
      async () => {
        const agents = (await openstack('network', 'agent', 'list')) as { 'Agent Type': string; Alive: boolean | string }[];
        const alive = agents.filter((a) => a.Alive === true || a.Alive === ':-)').map((a) => a['Agent Type']);
        return ['Linux bridge agent', 'DHCP agent', 'L3 agent', 'Metadata agent'].every((t) => alive.includes(t)) ? agents : undefined;
      },
      300,
    );

    // What a user runs next: a guest built from Debian packages, then init-cloud's networks, router,
    // keypair, flavors and image. A second init-cloud finds everything in place.
    const built = await run('bash', [join(PROJECT_ROOT, 'scripts', 'guest-image.sh'), join(configDir, 'guest-image')], { maxBuffer: 16 * 1024 * 1024 });
    log(built.stderr.trim().split('\n').slice(-1)[0] ?? '');
    const init = await kollaTs(['init-cloud', '--configdir', configDir, '--json']);
    expect(init.code, init.stderr).toBe(0);
    const made = (JSON.parse(init.stdout) as { resources: { kind: string; name: string; outcome: string }[] }).resources;
    expect(made.map((r) => `${r.kind} ${r.name}`)).toEqual(expect.arrayContaining(['network public1', 'network demo-net', 'router demo-router', 'keypair mykey', 'flavor m1.tiny', 'image kolla-ts-guest']));
    const again = await kollaTs(['init-cloud', '--configdir', configDir, '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect((JSON.parse(again.stdout) as { resources: { outcome: string }[] }).resources.filter((r) => r.outcome !== 'kept')).toEqual([]);
    // Self-service: the demo network is the cloud's tenant type, not a provider network.
    expect(((await openstack('network', 'show', 'demo-net')) as Record<string, unknown>)['provider:network_type']).toBe('vxlan');

    const userData = join(mkdtempSync(join(tmpdir(), 'kolla-ts-e2e-')), 'user-data.sh');
    writeFileSync(userData, `#!/bin/sh\nif ping -c 3 -W 2 ${EXTERNAL_GATEWAY} >/dev/null; then echo "gateway ${EXTERNAL_GATEWAY} answers"; else echo "gateway ${EXTERNAL_GATEWAY} does not answer"; fi\n`);
    const boot = async (name: string): Promise<{ id: string; addresses: unknown }> => {
      const server = (await openstack('server', 'create', '--image', 'kolla-ts-guest', '--flavor', 'm1.tiny', '--network', 'demo-net', '--key-name', 'mykey', '--user-data', userData, name)) as { id: string };
      return waitFor(
        `${name} ACTIVE`,
        async () => {
          const shown = (await openstack('server', 'show', server.id)) as { id: string; status: string; addresses: unknown; fault?: unknown };
          if (shown.status === 'ERROR') throw new GiveUp(`${name} went to ERROR: ${JSON.stringify(shown.fault)}`);
          return shown.status === 'ACTIVE' ? shown : undefined;
        },
        600,
      );
    };
    const first = await boot(`e2e-server-${runId}`);
    expect(JSON.stringify(first.addresses)).toMatch(/198\.51\.100\.\d+/);
    // Deleting one server and booting another exercises the network agent's port updates.
    await run('openstack', ['server', 'delete', '--wait', first.id], { env: { ...process.env, ...openstackEnv } });
    const second = await boot(`e2e-server-${runId}-2`);
    expect(JSON.stringify(second.addresses)).toMatch(/198\.51\.100\.\d+/);
  });

  it('shows the cloud in the dashboard: a headless browser logs in as admin, finds the server and a network, and logs out', { timeout: 5 * 60_000 }, async () => {
    // Imported here: only this test drives a browser.
    const { horizonLogin, horizonLogout, horizonOpenPanel, launchBrowser, newPage } = await import('../helpers/browser.ts');
    const { loadPasswords } = await import('../../src/config/passwords.ts');
    const password = loadPasswords(join(configDir, 'passwords.yml'), ['keystone_admin_password']).keystone_admin_password!;
    const horizon = 'http://127.0.0.1'; // horizon_port 80 on the all-in-one's API address
    const artifacts = process.env.KOLLA_TS_E2E_ARTIFACTS ?? '/var/log/kolla-ts/e2e-artifacts';
    mkdirSync(artifacts, { recursive: true });
    const network = (await openstack('network', 'show', 'demo-net')) as { id: string };
    const browser = await launchBrowser();
    try {
      const { page, serverErrors } = await newPage(browser);
      await horizonLogin(page, horizon, 'admin', password);
      await horizonOpenPanel(page, ['project', 'compute'], '/project/instances/');
      expect((await page.locator('.context-project').first().innerText()).trim()).toBe('admin');
      const row = page.locator('table#instances tbody tr', { hasText: `e2e-server-${runId}-2` });
      await row.waitFor();
      expect(await row.innerText()).toContain('Active');
      const screenshot = join(artifacts, 'horizon-instances.png');
      await page.screenshot({ path: screenshot, fullPage: true });
      log(`dashboard screenshot: ${screenshot}`);

      await horizonOpenPanel(page, ['project', 'network'], '/project/networks/');
      await Promise.all([page.waitForURL(`${horizon}/project/networks/${network.id}/detail`), page.locator('table#networks a', { hasText: /^demo-net$/ }).click()]);
      expect(await page.locator('dl').first().innerText()).toContain(network.id);

      await horizonLogout(page);
      // The session is gone: a project page sends the browser back to the login form.
      await page.goto(`${horizon}/project/instances/`);
      expect(new URL(page.url()).pathname).toBe('/auth/login/');
      expect(serverErrors).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it('creates a heat stack with a network and a server, which reaches CREATE_COMPLETE and is deleted with all it made', { timeout: 15 * 60_000 }, async () => {
    const catalog = (await openstack('catalog', 'list')) as { Type: string }[];
    expect(catalog.map((c) => c.Type)).toEqual(expect.arrayContaining(['orchestration', 'cloudformation']));
    await waitFor('heat-engine up', async () => ((await openstack('orchestration', 'service', 'list')) as { Binary: string; Status: string }[]).some((s) => s.Binary === 'heat-engine' && s.Status === 'up') || undefined, 120);
    // Its own small image and flavor: a server that only has to reach ACTIVE.
    const imageFile = join(mkdtempSync(join(tmpdir(), 'kolla-ts-e2e-')), 'heat.img');
    writeFileSync(imageFile, Buffer.alloc(1024 * 1024));
    const name = `e2e-heat-${runId}`;
    const image = (await openstack('image', 'create', '--disk-format', 'raw', '--container-format', 'bare', '--file', imageFile, name)) as { id: string };
    const flavor = (await openstack('flavor', 'create', '--ram', '64', '--disk', '1', '--vcpus', '1', name)) as { id: string };
    // JSON is YAML: a HOT template with a self-service network (the cloud's tenant type) and a server on it.
    const template = join(dirname(imageFile), 'stack.yaml');
    writeFileSync(template, JSON.stringify({
      heat_template_version: '2018-08-31',
      resources: {
        net: { type: 'OS::Neutron::Net' },
        subnet: { type: 'OS::Neutron::Subnet', properties: { network: { get_resource: 'net' }, cidr: '198.51.100.192/26', gateway_ip: null } },
        server: { type: 'OS::Nova::Server', properties: { image: image.id, flavor: flavor.id, networks: [{ subnet: { get_resource: 'subnet' } }] } },
      },
      outputs: { address: { value: { get_attr: ['server', 'first_address'] } } },
    }));
    const stack = (await openstack('stack', 'create', '-t', template, name)) as { id: string };
    const done = await waitFor(
      `stack ${name} CREATE_COMPLETE`,
      async () => {
        const shown = (await openstack('stack', 'show', stack.id)) as { stack_status: string; stack_status_reason: string; outputs: { output_key: string; output_value: unknown }[] };
        if (shown.stack_status === 'CREATE_FAILED') throw new GiveUp(`stack ${name}: ${shown.stack_status_reason}`);
        return shown.stack_status === 'CREATE_COMPLETE' ? shown : undefined;
      },
      600,
    );
    expect(done.outputs.find((o) => o.output_key === 'address')?.output_value).toMatch(/^198\.51\.100\.(19[2-9]|2[0-5]\d)$/);
    const resources = (await openstack('stack', 'resource', 'list', stack.id)) as { resource_name: string; physical_resource_id: string; resource_status: string }[];
    expect(resources.map((r) => `${r.resource_name} ${r.resource_status}`).sort()).toEqual(['net CREATE_COMPLETE', 'server CREATE_COMPLETE', 'subnet CREATE_COMPLETE']);
    const made = Object.fromEntries(resources.map((r) => [r.resource_name, r.physical_resource_id]));
    expect(((await openstack('server', 'show', made.server!)) as { status: string }).status).toBe('ACTIVE');

    await run('openstack', ['stack', 'delete', '--yes', stack.id], { env: { ...process.env, ...openstackEnv } });
    await waitFor(
      `stack ${name} deleted`,
      async () => {
        const left = ((await openstack('stack', 'list')) as { ID: string; 'Stack Status': string }[]).find((s) => s.ID === stack.id);
        if (left?.['Stack Status'] === 'DELETE_FAILED') throw new GiveUp(`stack ${name}: ${((await openstack('stack', 'show', stack.id)) as { stack_status_reason: string }).stack_status_reason}`);
        return left === undefined || left['Stack Status'] === 'DELETE_COMPLETE' || undefined;
      },
      300,
    );
    // What the stack made went with it.
    expect(((await openstack('server', 'list', '--all-projects')) as { ID: string }[]).map((s) => s.ID)).not.toContain(made.server);
    expect(((await openstack('network', 'list')) as { ID: string }[]).map((n) => n.ID)).not.toContain(made.net);
    await run('openstack', ['image', 'delete', image.id], { env: { ...process.env, ...openstackEnv } });
    await run('openstack', ['flavor', 'delete', flavor.id], { env: { ...process.env, ...openstackEnv } });
  });

  it('runs a guest behind the router: DHCP lease, metadata, the external gateway reached, and ping and HTTP answered on its floating IP', { timeout: 15 * 60_000 }, async () => {
    const [server] = (await openstack('server', 'list', '--name', `e2e-server-${runId}-2`)) as { ID: string }[];
    const consoleLog = async (): Promise<string> => (await run('openstack', ['console', 'log', 'show', server!.ID], { env: { ...process.env, ...openstackEnv }, maxBuffer: 16 * 1024 * 1024 })).stdout;
    // The guest prints what it did on its serial console, which nova keeps.
    const booted = await waitFor('the guest ready on its console', async () => ((await consoleLog()).includes('kolla-ts-guest: ready') ? consoleLog() : undefined), 600);
    const guestLines = booted.split('\n').filter((line) => line.includes('kolla-ts-guest:'));
    log(`guest console:\n${guestLines.join('\n')}`);
    expect(booted).toMatch(/kolla-ts-guest: lease 198\.51\.100\.\d+\/24 router 198\.51\.100\.1/);
    expect(booted).toContain(`kolla-ts-guest: metadata uuid=${server!.ID}`);
    const publicKey = readFileSync(join(configDir, 'id_ed25519.pub'), 'utf8').trim().split(' ')[0]!;
    expect(booted).toMatch(new RegExp(`kolla-ts-guest: public-key ${publicKey}`));
    expect(booted).toContain(`kolla-ts-guest: user-data: gateway ${EXTERNAL_GATEWAY} answers`);

    const floating = (await openstack('floating', 'ip', 'create', 'public1')) as { floating_ip_address: string };
    expect(floating.floating_ip_address).toMatch(/^198\.18\.64\.\d+$/);
    await run('openstack', ['server', 'add', 'floating', 'ip', server!.ID, floating.floating_ip_address], { env: { ...process.env, ...openstackEnv } });
    const address = floating.floating_ip_address;
    await waitFor(`ping ${address}`, async () => (await run('ping', ['-c', '1', '-W', '2', address]).then(() => true, () => undefined)), 120);
    const pinged = await run('ping', ['-c', '3', '-W', '2', address]);
    expect(pinged.stdout).toMatch(/3 received/);
    const page = await waitFor(`HTTP from ${address}`, async () => fetch(`http://${address}/`, { signal: AbortSignal.timeout(5000) }).then((r) => r.text(), () => undefined), 60);
    expect(page).toContain(server!.ID);
  });

  it('gives a running guest a cinder volume on Ceph: attached, written and read back inside the guest, the same bytes in RBD, detached and deleted; glance stores images in RBD', { timeout: 20 * 60_000 }, async () => {
    // A one-OSD cluster must say HEALTH_OK: its pools keep one copy on purpose and ceph.conf says so.
    const health = JSON.parse((await run('docker', ['exec', 'ceph_mon', 'ceph', 'health', '-f', 'json'])).stdout) as { status: string; checks: Record<string, unknown> };
    expect(health.status, JSON.stringify(health.checks)).toBe('HEALTH_OK');
    await waitFor('cinder-volume up', async () => ((await openstack('volume', 'service', 'list')) as { Binary: string; State: string }[]).some((s) => s.Binary === 'cinder-volume' && s.State === 'up') || undefined, 300);

    // The guest's user data waits for the volume, writes 4 MiB of random bytes to it and reads them back.
    const userData = join(mkdtempSync(join(tmpdir(), 'kolla-ts-e2e-')), 'volume.sh');
    writeFileSync(userData, `#!/bin/sh\n${volumeCheckScript(280)}`);
    const name = `e2e-volume-${runId}`;
    const created = (await openstack('server', 'create', '--image', 'kolla-ts-guest', '--flavor', 'm1.tiny', '--network', 'demo-net', '--user-data', userData, name)) as { id: string };
    const consoleLog = async (): Promise<string> => (await run('openstack', ['console', 'log', 'show', created.id], { env: { ...process.env, ...openstackEnv }, maxBuffer: 16 * 1024 * 1024 })).stdout;
    await waitFor(`${name} running its user data`, async () => ((await consoleLog()).includes('user-data script starts') ? true : undefined), 600);

    const volume = (await openstack('volume', 'create', '--size', '1', name)) as { id: string };
    await waitFor('volume available', async () => ((await openstack('volume', 'show', volume.id)) as { status: string }).status === 'available' || undefined, 300);
    const rbdImages = async (): Promise<string[]> => (await run('docker', ['exec', 'ceph_mon', 'rbd', 'ls', 'volumes'])).stdout.split('\n').filter(Boolean);
    expect(await rbdImages()).toContain(`volume-${volume.id}`);
    await run('openstack', ['server', 'add', 'volume', created.id, volume.id], { env: { ...process.env, ...openstackEnv } });
    await waitFor('volume in-use', async () => ((await openstack('volume', 'show', volume.id)) as { status: string }).status === 'in-use' || undefined, 300);
    const written = await waitFor('the guest done with the volume', async () => VOLUME_CHECK_RESULT.exec(await consoleLog()) ?? undefined, 400);
    log(`guest: ${written[0]}`);
    const md5 = written[1];
    expect(md5, written[0]).toBeDefined();

    await run('openstack', ['server', 'remove', 'volume', created.id, volume.id], { env: { ...process.env, ...openstackEnv } });
    await waitFor('volume available again', async () => ((await openstack('volume', 'show', volume.id)) as { status: string }).status === 'available' || undefined, 300);
    // The bytes the guest wrote are in Ceph: the volume's RBD image begins with them.
    const exported = await run('sh', ['-c', `docker exec ceph_mon rbd export volumes/volume-${volume.id} - 2>/dev/null | head -c 4194304 | md5sum`]);
    expect(exported.stdout.slice(0, 32)).toBe(md5);
    await run('openstack', ['volume', 'delete', volume.id], { env: { ...process.env, ...openstackEnv } });
    await waitFor('volume gone from RBD', async () => (!(await rbdImages()).includes(`volume-${volume.id}`) ? true : undefined), 300);
    await run('openstack', ['server', 'delete', '--wait', created.id], { env: { ...process.env, ...openstackEnv } });

    // glance_backend_ceph: a new image's data is an RBD image in the images pool.
    const imageFile = join(mkdtempSync(join(tmpdir(), 'kolla-ts-e2e-')), 'rbd.img');
    writeFileSync(imageFile, Buffer.alloc(1024 * 1024, 7));
    const image = (await openstack('image', 'create', '--disk-format', 'raw', '--container-format', 'bare', '--file', imageFile, `e2e-rbd-${runId}`)) as { id: string };
    const inImagesPool = async (): Promise<boolean> => (await run('docker', ['exec', 'ceph_mon', 'rbd', 'ls', 'images'])).stdout.split('\n').includes(image.id);
    expect(await inImagesPool()).toBe(true);
    await run('openstack', ['image', 'delete', image.id], { env: { ...process.env, ...openstackEnv } });
    await waitFor('image gone from RBD', async () => (!(await inImagesPool()) ? true : undefined), 120);
  });

  it('keeps a running server across a restart and a replacement of nova_libvirt: same qemu process, and nova still stops and starts it', { timeout: 20 * 60_000 }, async () => {
    const { qemuPid, status, serverId } = await serverProbe(`e2e-server-${runId}-2`);
    const pid = await qemuPid();
    expect(pid).toMatch(/^\d+$/);

    // A config change restarts nova_libvirt (COPY_ALWAYS).
    mkdirSync(join(configDir, 'config', 'nova'), { recursive: true });
    const libvirtdConf = join(configDir, 'config', 'nova', 'libvirtd.conf');
    writeFileSync(libvirtdConf, readFileSync('/etc/kolla/nova_libvirt/libvirtd.conf', 'utf8').replace(/^log_level = \d+$/m, 'log_level = 2'));
    const before = await containerSnapshot();
    const restarted = await kollaTs(['deploy', ...deployArgs]);
    expect(restarted.code, restarted.stderr).toBe(0);
    expect(changedContainers(before, await containerSnapshot())).toEqual(['nova_libvirt']);
    expect(await qemuPid()).toBe(pid);
    expect(await status()).toBe('ACTIVE');

    // The container removed outright (its dumb-init killed; libvirtd, outside the container's cgroups, lives on), then made again by deploy.
    await docker.getContainer('nova_libvirt').remove({ force: true });
    const recreated = await kollaTs(['deploy', ...deployArgs]);
    expect(recreated.code, recreated.stderr).toBe(0);
    // Deploy returned once the new container's own libvirtd serves, not the one it stops at its start.
    const libvirtds = (await run('pgrep', ['-x', 'libvirtd'])).stdout.trim().split('\n');
    expect(libvirtds).toHaveLength(1);
    const parent = /^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${libvirtds[0]}/status`, 'utf8'))?.[1];
    expect(Number(parent)).toBe((await docker.getContainer('nova_libvirt').inspect()).State.Pid);
    expect(await qemuPid()).toBe(pid);
    expect(await status()).toBe('ACTIVE');

    // nova still drives the guest through the new libvirtd.
    await run('openstack', ['server', 'stop', serverId], { env: { ...process.env, ...openstackEnv } });
    await waitFor('server SHUTOFF', async () => ((await status()) === 'SHUTOFF' ? true : undefined), 300);
    expect(await qemuPid()).toBe('');
    await run('openstack', ['server', 'start', serverId], { env: { ...process.env, ...openstackEnv } });
    await waitFor('server ACTIVE again', async () => ((await status()) === 'ACTIVE' ? true : undefined), 300);
    expect(await qemuPid()).toMatch(/^\d+$/);
    rmSync(libvirtdConf);
    expect((await kollaTs(['deploy', ...deployArgs])).code).toBe(0);
  });

  it('upgrades keystone with a database backup first, history lists both revisions and the backup, and rollback returns it', { timeout: 15 * 60_000 }, async () => {
    const tag = await pushLabelledTag('keystone');
    const globals = readFileSync(join(configDir, 'globals.yml'), 'utf8');
    try {
      writeFileSync(join(configDir, 'globals.yml'), `${globals}keystone_tag: ${tag}\n`);
      const upgraded = await kollaTs(['upgrade', ...deployArgs, '--services', 'keystone']);
      expect(upgraded.code, upgraded.stderr.slice(-3000)).toBe(0);
      const backup = /backed up to (\/etc\/kolla\/\.kolla-ts\/backups\/keystone-[^ ]+\.sql)/.exec(upgraded.stderr)?.[1];
      expect(backup, upgraded.stderr).toBeDefined();
      // keystone's own sequence: the backup, then expand and migrate with the new image, the roll, then contract.
      const order = ['backed up to', 'keystone one-shot (KOLLA_UPGRADE)', 'localhost: keystone: healthy after', 'keystone one-shot (KOLLA_FINISH_UPGRADE)'].map((line) => upgraded.stderr.indexOf(line));
      expect(order.every((i) => i >= 0), upgraded.stderr).toBe(true);
      expect([...order].sort((a, b) => a - b)).toEqual(order);
      expect(statSync(backup!).mode & 0o777).toBe(0o600);
      expect(readFileSync(backup!, 'utf8')).toContain('CREATE TABLE `user`');
      expect((await docker.getContainer('keystone').inspect()).Config.Image).toBe(`${REGISTRY}/kolla/keystone:${tag}`);
      expect(await openstack('token', 'issue')).toHaveProperty('id');
      const history = await kollaTs(['history', 'keystone', ...deployArgs, '--json']);
      const recorded = JSON.parse(history.stdout) as { revisions: { command: string; image: string; running: boolean; outcome: string }[]; backups: { path: string }[] };
      expect(recorded.revisions.find((r) => r.running)).toMatchObject({ command: 'upgrade', outcome: 'healthy', image: `${REGISTRY}/kolla/keystone:${tag}` });
      expect(recorded.revisions.some((r) => !r.running && r.outcome === 'healthy' && r.image === `${REGISTRY}/kolla/keystone:zed`)).toBe(true);
      expect(recorded.backups.map((b) => b.path)).toContain(backup);
    } finally {
      writeFileSync(join(configDir, 'globals.yml'), globals);
    }
    const rolledBack = await kollaTs(['rollback', 'keystone', ...deployArgs]);
    expect(rolledBack.code, rolledBack.stderr.slice(-3000)).toBe(0);
    expect((await docker.getContainer('keystone').inspect()).Config.Image).toBe(`${REGISTRY}/kolla/keystone:zed`);
    expect(await openstack('token', 'issue')).toHaveProperty('id');
    expect((await kollaTs(['plan', ...deployArgs])).stdout).toContain('Nothing to do');
  });

  it('upgrades nova_compute and nova_libvirt and rolls them back while a server runs: same qemu process, ACTIVE, and nova still stops and starts it', { timeout: 20 * 60_000 }, async () => {
    const { qemuPid, status, serverId } = await serverProbe(`e2e-server-${runId}-2`);
    const pid = await qemuPid();
    expect(pid).toMatch(/^\d+$/);
    const dataBefore = (await docker.getContainer('nova_compute_data').inspect()).Id;
    const computeTag = await pushLabelledTag('nova-compute');
    const libvirtTag = await pushLabelledTag('nova-libvirt');
    const globals = readFileSync(join(configDir, 'globals.yml'), 'utf8');
    try {
      writeFileSync(join(configDir, 'globals.yml'), `${globals}nova_compute_tag: ${computeTag}\nnova_libvirt_tag: ${libvirtTag}\n`);
      const upgraded = await kollaTs(['upgrade', ...deployArgs, '--services', 'nova']);
      expect(upgraded.code, upgraded.stderr.slice(-3000)).toBe(0);
      expect(upgraded.stderr).toContain('localhost: nova_compute: healthy after');
      expect(upgraded.stderr).toContain('localhost: nova_libvirt: healthy after');
      expect((await docker.getContainer('nova_libvirt').inspect()).Config.Image).toBe(`${REGISTRY}/kolla/nova-libvirt:${libvirtTag}`);
      expect(await qemuPid()).toBe(pid);
      expect(await status()).toBe('ACTIVE');
    } finally {
      writeFileSync(join(configDir, 'globals.yml'), globals);
    }
    const rolledBack = await kollaTs(['rollback', 'nova', ...deployArgs]);
    expect(rolledBack.code, rolledBack.stderr.slice(-3000)).toBe(0);
    expect((await docker.getContainer('nova_compute').inspect()).Config.Image).toBe(`${REGISTRY}/kolla/nova-compute:zed`);
    expect(await qemuPid()).toBe(pid);
    expect(await status()).toBe('ACTIVE');
    // The data container was never replaced.
    expect((await docker.getContainer('nova_compute_data').inspect()).Id).toBe(dataBefore);
    await run('openstack', ['server', 'stop', serverId], { env: { ...process.env, ...openstackEnv } });
    await waitFor('server SHUTOFF', async () => ((await status()) === 'SHUTOFF' ? true : undefined), 300);
    await run('openstack', ['server', 'start', serverId], { env: { ...process.env, ...openstackEnv } });
    await waitFor('server ACTIVE again', async () => ((await status()) === 'ACTIVE' ? true : undefined), 300);
    expect((await kollaTs(['plan', ...deployArgs])).stdout).toContain('Nothing to do');
  });

  it('deploys again with nothing changed: empty plan, nothing restarted', { timeout: 10 * 60_000 }, async () => {
    const before = await containerSnapshot();
    const plan = await kollaTs(['plan', ...deployArgs]);
    expect(plan.stdout).toContain('Nothing to do');
    const result = await kollaTs(['deploy', ...deployArgs]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('Nothing to do');
    expect(changedContainers(before, await containerSnapshot())).toEqual([]);
  });

  it('refuses a second run while another holds the host, and takes over the lock of a run that died', { timeout: 5 * 60_000 }, async () => {
    const lockFile = '/etc/kolla/.kolla-ts/lock.json';
    // A live holder: this test process, as if it were a kolla-ts deploy.
    writeFileSync(lockFile, JSON.stringify({ deployHost: hostname(), pid: process.pid, command: 'deploy', since: new Date().toISOString() }));
    const refused = await kollaTs(['deploy', ...deployArgs]);
    expect(refused.code).toBe(7);
    expect(refused.stderr).toContain(`host localhost is being changed by another kolla-ts run: deploy (pid ${process.pid} on ${hostname()}`);
    // A holder that was killed: its pid is gone.
    const dead = spawnSync('true').pid!;
    writeFileSync(lockFile, JSON.stringify({ deployHost: hostname(), pid: dead, command: 'upgrade', since: new Date().toISOString() }));
    const tookOver = await kollaTs(['deploy', ...deployArgs]);
    expect(tookOver.code, tookOver.stderr).toBe(0);
    expect(existsSync(lockFile)).toBe(false);
  });

  it('restarts only the containers whose config an override changes', { timeout: 10 * 60_000 }, async () => {
    mkdirSync(join(configDir, 'config'), { recursive: true });
    writeFileSync(join(configDir, 'config', 'glance.conf'), '[DEFAULT]\ndebug = True\n');
    const plan = await kollaTs(['plan', ...deployArgs, '--json']);
    const actions = (JSON.parse(plan.stdout) as { services: { containers: { container: string; action: string; reasons: string[] }[] }[] }).services
      .flatMap((s) => s.containers)
      .filter((c) => c.action !== 'none');
    expect(actions).toEqual([{ host: 'localhost', service: 'glance', container: 'glance_api', kind: 'service', action: 'restart', reasons: ['config changed under COPY_ALWAYS'] }]);
    const before = await containerSnapshot();
    const result = await kollaTs(['deploy', ...deployArgs]);
    expect(result.code, result.stderr).toBe(0);
    expect(changedContainers(before, await containerSnapshot())).toEqual(['glance_api']);
    expect(readFileSync('/etc/kolla/glance_api/glance-api.conf', 'utf8')).toMatch(/debug = True/);
  });

  it('recreates instead of restarting under COPY_ONCE', { timeout: 10 * 60_000 }, async () => {
    const globalsFile = join(configDir, 'globals.yml');
    const copyAlways = readFileSync(globalsFile, 'utf8');
    writeFileSync(globalsFile, copyAlways.replace(/^config_strategy: .*$/m, 'config_strategy: COPY_ONCE'));
    // Switching strategy changes a container's environment, so it is recreated; here only glance's.
    const switched = await kollaTs(['deploy', ...deployArgs, '--services', 'glance']);
    expect(switched.code, switched.stderr).toBe(0);
    writeFileSync(join(configDir, 'config', 'glance.conf'), '[DEFAULT]\ndebug = False\n');
    const plan = await kollaTs(['plan', ...deployArgs, '--services', 'glance']);
    expect(plan.stdout).toContain('glance_api: recreate (config changed under COPY_ONCE)');
    const before = await containerSnapshot();
    const result = await kollaTs(['deploy', ...deployArgs, '--services', 'glance']);
    expect(result.code, result.stderr).toBe(0);
    const after = await containerSnapshot();
    expect(changedContainers(before, after)).toEqual(['glance_api']);
    expect(before.get('glance_api')!.split('@')[0]).not.toBe(after.get('glance_api')!.split('@')[0]);
    writeFileSync(globalsFile, copyAlways);
    expect((await kollaTs(['deploy', ...deployArgs, '--services', 'glance'])).code).toBe(0);
  });

  it('rejects bad input naming file, line and key, and changes nothing', { timeout: 5 * 60_000 }, async () => {
    const globalsFile = join(configDir, 'globals.yml');
    const good = readFileSync(globalsFile, 'utf8');
    const before = await containerSnapshot();
    writeFileSync(globalsFile, `${good}nova_compute_virt_tpye: qemu\n`);
    const typo = await kollaTs(['deploy', ...deployArgs]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(new RegExp(`${globalsFile}:\\d+ \\(key nova_compute_virt_tpye\\): unknown key "nova_compute_virt_tpye" \\(did you mean "nova_compute_virt_type"\\?\\)`));
    writeFileSync(globalsFile, `${good}enable_keystone: false\n`);
    const needs = await kollaTs(['deploy', ...deployArgs]);
    expect(needs.code).toBe(2);
    expect(needs.stderr).toMatch(/needs keystone, which is not enabled/);
    writeFileSync(globalsFile, good);
    const passwordsFile = join(configDir, 'passwords.yml');
    const passwords = readFileSync(passwordsFile, 'utf8');
    const emptied = passwords.replace(/^nova_keystone_password: .*$/m, 'nova_keystone_password:');
    writeFileSync(passwordsFile, emptied);
    const missing = await kollaTs(['deploy', ...deployArgs]);
    expect(missing.code).toBe(2);
    const line = emptied.split('\n').findIndex((l) => l.startsWith('nova_keystone_password:')) + 1;
    expect(missing.stderr).toContain(`${passwordsFile}:${line} (key nova_keystone_password): no value for`);
    writeFileSync(passwordsFile, passwords);
    expect(changedContainers(before, await containerSnapshot())).toEqual([]);
  });

  it('refuses a sample of the bad-input corpus at deploy, each naming file, line and key, and changes nothing', { timeout: 10 * 60_000 }, async () => {
    const corpus = badInputs().filter((item) => DEPLOY_TARGETS.includes(item.target));
    // Every target and every kind of case, about 40 runs of the CLI.
    const sample = corpus.filter((_, index) => index % Math.ceil(corpus.length / 40) === 0);
    const before = await containerSnapshot();
    const treeBefore = treeDigest('/etc/kolla');
    let held = 0;
    for (const item of sample) {
      const scratch = mkdtempSync(join(tmpdir(), 'kolla-ts-bad-'));
      copyFileSync(join(configDir, 'globals.yml'), join(scratch, 'globals.yml'));
      copyFileSync(join(configDir, 'passwords.yml'), join(scratch, 'passwords.yml'));
      for (const [path, content] of Object.entries(item.files)) {
        mkdirSync(dirname(join(scratch, path)), { recursive: true });
        writeFileSync(join(scratch, path), content);
      }
      const result = await runCli(['deploy', '-i', item.inventory ? join(scratch, item.inventory) : inventory, '--configdir', scratch]);
      const where = `${join(scratch, item.expect.file ?? '')}${item.expect.line !== undefined ? `:${item.expect.line}` : ''}`;
      expect(result.code, `${item.name}: ${result.stderr}`).toBe(2);
      expect(result.stderr, item.name).toContain(where);
      if (item.expect.key !== undefined) expect(result.stderr, item.name).toContain(`(key ${item.expect.key})`);
      expect(result.stderr, item.name).not.toMatch(/internal error|^\s+at /m);
      held++;
      rmSync(scratch, { recursive: true, force: true });
    }
    console.log(`bad inputs at deploy: ${sample.length} tried, ${held} held`);
    expect(changedContainers(before, await containerSnapshot())).toEqual([]);
    expect(treeDigest('/etc/kolla')).toBe(treeBefore);
  });

  it('reports a failed step with host, container, step and log tail; a deploy after the fix completes', { timeout: 15 * 60_000 }, async () => {
    mkdirSync(join(configDir, 'config', 'glance'), { recursive: true });
    const breaking = join(configDir, 'config', 'glance', 'glance-api.conf');
    writeFileSync(breaking, '[DEFAULT]\nbind_port = not-a-port\n');
    const failed = await kollaTs(['deploy', ...deployArgs]);
    expect(failed.code).toBe(5);
    expect(failed.stderr).toMatch(/localhost: glance_api: wait for health failed: container keeps exiting and being restarted/);
    expect(failed.stderr).toMatch(/--- last lines of glance_api's log on localhost ---[\s\S]*bind_port/);
    rmSync(breaking);
    const fixed = await kollaTs(['deploy', ...deployArgs]);
    expect(fixed.code, fixed.stderr).toBe(0);
    expect((await kollaTs(['check', ...deployArgs])).code).toBe(0);
  });

  it('stop keeps data; check and status name the stopped container; deploy starts it again', { timeout: 10 * 60_000 }, async () => {
    const stopped = await kollaTs(['stop', ...deployArgs, '--services', 'glance']);
    expect(stopped.code, stopped.stderr).toBe(0);
    const check = await kollaTs(['check', ...deployArgs]);
    expect(check.code).toBe(6);
    expect(check.stderr).toContain('localhost/glance_api (exited');
    const status = (JSON.parse((await kollaTs(['status', ...deployArgs, '--json'])).stdout) as { containers: { container: string; state: string; image: string }[] }).containers;
    expect(status.find((r) => r.container === 'glance_api')).toMatchObject({ state: 'exited', image: `${REGISTRY}/kolla/glance-api:zed` });
    expect(status.find((r) => r.container === 'nova_compute_data')).toMatchObject({ state: 'created' });
    expect((await docker.getVolume('glance').inspect()).Name).toBe('glance');

    const plan = await kollaTs(['plan', ...deployArgs]);
    expect(plan.stdout).toContain('glance_api: start (container is exited)');
    expect((await kollaTs(['deploy', ...deployArgs])).code).toBe(0);
    const images = (await openstack('image', 'list')) as { Name: string; Status: string }[];
    expect(images.find((image) => image.Name === 'kolla-ts-guest')?.Status).toBe('active');
  });

  it('refuses a second config directory on hosts the first one manages, changing nothing', { timeout: 5 * 60_000 }, async () => {
    const other = mkdtempSync(join(tmpdir(), 'kolla-ts-other-etc-'));
    cpSync(configDir, other, { recursive: true });
    const before = await containerSnapshot();
    const result = await kollaTs(['deploy', '-i', inventory, '--configdir', other]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`host localhost: /etc/kolla is managed from config directory ${configDir}, not ${other}`);
    expect(changedContainers(before, await containerSnapshot())).toEqual([]);
    rmSync(other, { recursive: true, force: true });
  });

  it('destroy --services glance --include-data removes only what glance alone uses; deploy brings it back', { timeout: 15 * 60_000 }, async () => {
    const stampsFile = '/etc/kolla/.kolla-ts/steps.json';
    const stampsBefore = JSON.parse(readFileSync(stampsFile, 'utf8')) as Record<string, string>;
    const destroyed = await kollaTs(['destroy', ...deployArgs, '--services', 'glance', '--include-data', '--yes-i-really-really-mean-it']);
    expect(destroyed.code, destroyed.stderr).toBe(0);
    expect(destroyed.stderr).toContain('localhost: keeping volume kolla_logs (other services use it)');
    await expect(docker.getVolume('glance').inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect((await docker.getVolume('kolla_logs').inspect()).Name).toBe('kolla_logs');
    expect(existsSync('/etc/kolla/glance_api')).toBe(false);
    const stampsAfter = JSON.parse(readFileSync(stampsFile, 'utf8')) as Record<string, string>;
    expect(Object.keys(stampsAfter).filter((id) => id.startsWith('glance/'))).toEqual([]);
    expect(stampsAfter).toEqual(Object.fromEntries(Object.entries(stampsBefore).filter(([id]) => !id.startsWith('glance/'))));

    // glance's steps (database, registration, db sync) run again; nothing else does.
    const plan = JSON.parse((await kollaTs(['plan', ...deployArgs, '--json'])).stdout) as { services: { service: string; steps: { run: boolean }[] }[] };
    const rerun = plan.services.filter((s) => s.steps.some((step) => step.run)).map((s) => s.service);
    expect(rerun).toEqual(['glance']);
    const redeployed = await kollaTs(['deploy', ...deployArgs]);
    expect(redeployed.code, redeployed.stderr).toBe(0);
    expect((await kollaTs(['check', ...deployArgs])).code).toBe(0);
  });

});
