// Runs the real start contract from images/base (kolla_set_configs,
// kolla_start and the health-check helpers) on this machine, in temp
// directories, steered by the KOLLA_* environment overrides.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const BASE = fileURLToPath(new URL('../../images/base/', import.meta.url));
const SET_CONFIGS = join(BASE, 'kolla_set_configs');
const isRoot = process.getuid?.() === 0;

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], env: Record<string, string>): Result {
  const result = spawnSync(command, args, {
    env: { PATH: `${BASE}:${process.env.PATH ?? '/usr/bin:/bin'}`, ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function lookupId(args: string[]): number {
  const out = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' }).stdout.trim();
  return Number(out.split(':')[2] ?? out);
}

const NOBODY_UID = lookupId(['id', '-u', 'nobody']);
const NOGROUP_GID = lookupId(['getent', 'group', 'nogroup']);

const mode = (path: string) => statSync(path).mode & 0o7777;

/** A config source directory, a destination tree and the run-command and
 * marker files, all under one temp directory. */
class Sandbox {
  readonly root = mkdtempSync(join(tmpdir(), 'kolla-set-configs-'));
  readonly src = join(this.root, 'config_files');
  readonly dest = join(this.root, 'container');
  readonly runCommand = join(this.root, 'run_command');
  readonly marker = join(this.root, 'configured');

  constructor() {
    mkdirSync(this.src);
    mkdirSync(this.dest);
  }

  source(relative: string, content: string): string {
    const path = join(this.src, relative);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
    return path;
  }

  config(config: object | string): void {
    const text = typeof config === 'string' ? config : JSON.stringify(config, null, 2);
    writeFileSync(join(this.src, 'config.json'), text);
  }

  env(strategy?: string): Record<string, string> {
    return {
      KOLLA_CONFIG_DIR: this.src,
      KOLLA_RUN_COMMAND_FILE: this.runCommand,
      KOLLA_CONFIGURED_MARKER: this.marker,
      ...(strategy === undefined ? {} : { KOLLA_CONFIG_STRATEGY: strategy }),
    };
  }

  setConfigs(strategy: string | undefined, args: string[] = []): Result {
    return run(SET_CONFIGS, args, this.env(strategy));
  }

  check(): Result {
    return this.setConfigs(undefined, ['--check']);
  }

  out(relative: string): string {
    return join(this.dest, relative);
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

function expectError(result: Result, ...fragments: string[]): void {
  expect(result.status).toBe(1);
  const errors = result.stderr.split('\n').filter((line) => line.startsWith('kolla_set_configs: ERROR:'));
  expect(errors).toHaveLength(1);
  for (const fragment of fragments) expect(errors[0]).toContain(fragment);
}

describe('kolla_set_configs', () => {
  let box: Sandbox;
  beforeEach(() => {
    box = new Sandbox();
  });
  afterEach(() => box.remove());

  it('COPY_ALWAYS copies again on every run, atomically and without printing contents', () => {
    box.source('app.conf', 'password=first-secret\n');
    box.config({
      command: '/usr/bin/app --serve',
      config_files: [{ source: 'app.conf', dest: box.out('etc/app/app.conf'), perm: '0600' }],
    });

    const first = box.setConfigs('COPY_ALWAYS');
    expect(first.status).toBe(0);
    expect(readFileSync(box.out('etc/app/app.conf'), 'utf8')).toBe('password=first-secret\n');
    expect(readFileSync(box.runCommand, 'utf8').trim()).toBe('/usr/bin/app --serve');

    box.source('app.conf', 'password=second-secret\n');
    const second = box.setConfigs('COPY_ALWAYS');
    expect(second.status).toBe(0);
    expect(readFileSync(box.out('etc/app/app.conf'), 'utf8')).toBe('password=second-secret\n');
    // no temp files left beside the destination
    expect(readdirSync(box.out('etc/app'))).toEqual(['app.conf']);
    expect(existsSync(box.marker)).toBe(false);
    for (const output of [first, second]) {
      expect(output.stdout + output.stderr).not.toContain('secret');
    }
  });

  it('COPY_ONCE copies on the first run only, leaves the marker, and still writes the command', () => {
    box.source('app.conf', 'version=1\n');
    box.config({ command: 'app', config_files: [{ source: 'app.conf', dest: box.out('app.conf') }] });

    expect(box.setConfigs('COPY_ONCE').status).toBe(0);
    expect(existsSync(box.marker)).toBe(true);

    box.source('app.conf', 'version=2\n');
    box.config({ command: 'app --second', config_files: [{ source: 'app.conf', dest: box.out('app.conf') }] });
    rmSync(box.runCommand);
    const second = box.setConfigs('COPY_ONCE');
    expect(second.status).toBe(0);
    expect(readFileSync(box.out('app.conf'), 'utf8')).toBe('version=1\n');
    expect(readFileSync(box.runCommand, 'utf8').trim()).toBe('app --second');
  });

  it('rejects a missing or unknown KOLLA_CONFIG_STRATEGY', () => {
    box.config({ command: 'app' });
    expectError(box.setConfigs(undefined), 'KOLLA_CONFIG_STRATEGY');
    expectError(box.setConfigs('COPY_SOMETIMES'), 'COPY_SOMETIMES');
    expect(existsSync(box.runCommand)).toBe(false);
  });

  it('merges a source directory into an existing destination directory', () => {
    box.source('conf.d/new.conf', 'new\n');
    box.source('conf.d/sub/deep.conf', 'deep\n');
    mkdirSync(box.out('conf.d'));
    writeFileSync(box.out('conf.d/keep.conf'), 'keep\n');
    writeFileSync(box.out('conf.d/new.conf'), 'old\n');
    box.config({ command: 'app', config_files: [{ source: 'conf.d', dest: box.out('conf.d'), merge: true }] });

    expect(box.setConfigs('COPY_ALWAYS').status).toBe(0);
    expect(readFileSync(box.out('conf.d/keep.conf'), 'utf8')).toBe('keep\n');
    expect(readFileSync(box.out('conf.d/new.conf'), 'utf8')).toBe('new\n');
    expect(readFileSync(box.out('conf.d/sub/deep.conf'), 'utf8')).toBe('deep\n');
  });

  it('replaces a destination directory when merge is not set', () => {
    box.source('conf.d/new.conf', 'new\n');
    mkdirSync(box.out('conf.d'));
    writeFileSync(box.out('conf.d/stale.conf'), 'stale\n');
    box.config({ command: 'app', config_files: [{ source: 'conf.d', dest: box.out('conf.d') }] });

    expect(box.setConfigs('COPY_ALWAYS').status).toBe(0);
    expect(readdirSync(box.out('conf.d'))).toEqual(['new.conf']);
    expect(readdirSync(box.dest)).toEqual(['conf.d']);
  });

  it('copies into a directory when dest ends with a slash', () => {
    box.source('app.conf', 'x\n');
    box.config({ command: 'app', config_files: [{ source: 'app.conf', dest: `${box.out('etc/app')}/` }] });

    expect(box.setConfigs('COPY_ALWAYS').status).toBe(0);
    expect(readFileSync(box.out('etc/app/app.conf'), 'utf8')).toBe('x\n');
  });

  it('expands glob sources, and refuses several matches onto one file', () => {
    box.source('a.conf', 'a\n');
    box.source('b.conf', 'b\n');
    box.source('notes.txt', 'n\n');
    box.config({ command: 'app', config_files: [{ source: '*.conf', dest: `${box.out('etc')}/` }] });
    expect(box.setConfigs('COPY_ALWAYS').status).toBe(0);
    expect(readdirSync(box.out('etc')).sort()).toEqual(['a.conf', 'b.conf']);

    box.config({ command: 'app', config_files: [{ source: '*.conf', dest: box.out('one.conf') }] });
    expectError(box.setConfigs('COPY_ALWAYS'), 'config_files[0]', "does not end with '/'");
    expect(existsSync(box.out('one.conf'))).toBe(false);
  });

  it('rebases absolute sources under /var/lib/kolla/config_files onto KOLLA_CONFIG_DIR', () => {
    box.source('app.conf', 'rebased\n');
    box.config({
      command: 'app',
      config_files: [{ source: '/var/lib/kolla/config_files/app.conf', dest: box.out('app.conf') }],
    });
    expect(box.setConfigs('COPY_ALWAYS').status).toBe(0);
    expect(readFileSync(box.out('app.conf'), 'utf8')).toBe('rebased\n');
  });

  it.runIf(isRoot)('applies owner names and perm, with execute bits on directories', () => {
    box.source('app.conf', 'x\n');
    box.source('tree/inner/leaf.conf', 'leaf\n');
    box.config({
      command: 'app',
      config_files: [
        { source: 'app.conf', dest: box.out('app.conf'), owner: 'nobody:nogroup', perm: '0640' },
        { source: 'tree', dest: box.out('tree'), owner: 'nobody', perm: '0600' },
      ],
    });

    expect(box.setConfigs('COPY_ALWAYS').status).toBe(0);
    const file = statSync(box.out('app.conf'));
    expect([file.uid, file.gid]).toEqual([NOBODY_UID, NOGROUP_GID]);
    expect(mode(box.out('app.conf'))).toBe(0o640);
    // `nobody` alone means nobody's primary group
    const leaf = statSync(box.out('tree/inner/leaf.conf'));
    expect([leaf.uid, leaf.gid]).toEqual([NOBODY_UID, NOGROUP_GID]);
    expect(mode(box.out('tree/inner/leaf.conf'))).toBe(0o600);
    expect(mode(box.out('tree/inner'))).toBe(0o700);
    expect(mode(box.out('tree'))).toBe(0o700);
  });

  it.runIf(isRoot)('keeps source mode and owner with preserve_properties', () => {
    const source = box.source('tool.sh', '#!/bin/sh\n');
    chmodSync(source, 0o751);
    box.config({
      command: 'app',
      config_files: [{ source: 'tool.sh', dest: box.out('tool.sh'), preserve_properties: true }],
    });
    expect(box.setConfigs('COPY_ALWAYS').status).toBe(0);
    expect(mode(box.out('tool.sh'))).toBe(0o751);
  });

  it('accepts a missing optional source', () => {
    box.source('present.conf', 'p\n');
    box.config({
      command: 'app',
      config_files: [
        { source: 'absent.conf', dest: box.out('absent.conf'), optional: true },
        { source: 'present.conf', dest: box.out('present.conf') },
      ],
    });
    expect(box.setConfigs('COPY_ALWAYS').status).toBe(0);
    expect(existsSync(box.out('absent.conf'))).toBe(false);
    expect(readFileSync(box.out('present.conf'), 'utf8')).toBe('p\n');
  });

  it('fails on a missing required source before copying anything', () => {
    box.source('present.conf', 'p\n');
    box.config({
      command: 'app',
      config_files: [
        { source: 'present.conf', dest: box.out('present.conf') },
        { source: 'absent.conf', dest: box.out('absent.conf') },
      ],
      directories: [{ path: box.out('logs') }],
    });
    expectError(box.setConfigs('COPY_ALWAYS'), 'config_files[1]', 'absent.conf');
    expect(readdirSync(box.dest)).toEqual([]);
    expect(existsSync(box.runCommand)).toBe(false);
  });

  it('fails on an unknown user or group, naming it, before copying anything', () => {
    box.source('app.conf', 'x\n');
    const withOwner = (owner: string) =>
      box.config({
        command: 'app',
        config_files: [{ source: 'app.conf', dest: box.out('app.conf') }],
        permissions: [{ path: box.out('app.conf'), owner }],
      });

    withOwner('no-such-user-kts');
    expectError(box.setConfigs('COPY_ALWAYS'), 'permissions[0].owner', "unknown user 'no-such-user-kts'");
    withOwner('nobody:no-such-group-kts');
    expectError(box.setConfigs('COPY_ALWAYS'), "unknown group 'no-such-group-kts'");
    expect(readdirSync(box.dest)).toEqual([]);
  });

  it('reports malformed JSON with its line and column', () => {
    box.config('{\n  "command": "app",\n  "config_files": [,]\n}\n');
    expectError(box.setConfigs('COPY_ALWAYS'), 'invalid JSON', 'line 3 column 20');
  });

  it('reports a missing command, wrong types and unknown keys by key and index', () => {
    box.config({ config_files: [] });
    expectError(box.setConfigs('COPY_ALWAYS'), "missing required key 'command'");

    box.config({ command: 'app', config_files: [{ source: 'a', dest: 'b' }, { source: 'a', dest: 'b', perm: 600 }] });
    expectError(box.setConfigs('COPY_ALWAYS'), 'config_files[1].perm', 'expected a string, got number');

    box.config({ command: 'app', permissions: [{ path: '/x', owner: 'root', recurse: 'yes' }] });
    expectError(box.setConfigs('COPY_ALWAYS'), 'permissions[0].recurse', 'expected a boolean');

    box.config({ command: 'app', files: [{ path: '/x', contents: 'typo' }] });
    expectError(box.setConfigs('COPY_ALWAYS'), 'files[0]', "unknown key 'contents'");

    box.config({ command: 'app', directories: [{ path: '/x', perm: 'rw-r--r--' }] });
    expectError(box.setConfigs('COPY_ALWAYS'), 'directories[0].perm');

    box.config({ command: 'app', config_files: [{ dest: 'b' }] });
    expectError(box.setConfigs('COPY_ALWAYS'), 'config_files[0]', "missing required key 'source'");
  });

  it('never echoes a value from config.json in an error', () => {
    box.config({ command: 'app', files: [{ path: box.out('f'), content: 12345678 }] });
    const result = box.setConfigs('COPY_ALWAYS');
    expectError(result, 'files[0].content');
    expect(result.stderr).not.toContain('12345678');
  });

  it('creates directories and files and applies their perm', () => {
    box.config({
      command: 'app',
      directories: [{ path: box.out('var/lib/app'), perm: '0750' }],
      files: [
        { path: box.out('var/lib/app/token'), content: 'tok', perm: '0600' },
        { path: box.out('var/lib/app/empty') },
      ],
    });
    expect(box.setConfigs('COPY_ALWAYS').status).toBe(0);
    expect(mode(box.out('var/lib/app'))).toBe(0o750);
    expect(readFileSync(box.out('var/lib/app/token'), 'utf8')).toBe('tok');
    expect(mode(box.out('var/lib/app/token'))).toBe(0o600);
    expect(readFileSync(box.out('var/lib/app/empty'), 'utf8')).toBe('');
  });

  it.runIf(isRoot)('applies permissions recursively only when asked', () => {
    for (const dir of ['deep/a/b', 'flat/a']) mkdirSync(box.out(dir), { recursive: true });
    writeFileSync(box.out('deep/a/b/log'), '');
    writeFileSync(box.out('flat/a/log'), '');
    box.config({
      command: 'app',
      permissions: [
        { path: box.out('deep'), owner: 'nobody:nogroup', perm: '0640', recurse: true },
        { path: box.out('fl*'), owner: 'nobody:nogroup' },
      ],
    });
    expect(box.setConfigs('COPY_ALWAYS').status).toBe(0);
    for (const path of ['deep', 'deep/a', 'deep/a/b', 'deep/a/b/log', 'flat']) {
      expect(statSync(box.out(path)).uid).toBe(NOBODY_UID);
    }
    expect(mode(box.out('deep/a/b/log'))).toBe(0o640);
    expect(mode(box.out('deep/a/b'))).toBe(0o750);
    expect(statSync(box.out('flat/a')).uid).toBe(0);
    expect(statSync(box.out('flat/a/log')).uid).toBe(0);
  });

  describe('--check', () => {
    beforeEach(() => {
      box.source('app.conf', 'password=check-secret\n');
      box.source('conf.d/one.conf', 'one\n');
      box.config({
        command: 'app',
        config_files: [
          { source: 'app.conf', dest: box.out('app.conf'), perm: '0600' },
          { source: 'conf.d', dest: box.out('conf.d'), perm: '0644' },
        ],
      });
      expect(box.setConfigs('COPY_ALWAYS').status).toBe(0);
    });

    it('exits 0 when everything matches', () => {
      const result = box.check();
      expect(result.status).toBe(0);
      expect(result.stderr).toBe('');
    });

    it('prints the path of a modified file, never its content, and exits 1', () => {
      writeFileSync(box.out('app.conf'), 'password=tampered-secret\n');
      const result = box.check();
      expect(result.status).toBe(1);
      expect(result.stderr).toContain(`differs: ${box.out('app.conf')} (content)`);
      expect(result.stderr).not.toContain(box.out('conf.d'));
      expect(result.stdout + result.stderr).not.toContain('secret');
    });

    it('reports a changed mode, a missing file and an extra file in a replaced tree', () => {
      chmodSync(box.out('app.conf'), 0o644);
      rmSync(box.out('conf.d/one.conf'));
      writeFileSync(box.out('conf.d/extra.conf'), '');
      const result = box.check();
      expect(result.status).toBe(1);
      expect(result.stderr).toContain(`${box.out('app.conf')} (mode)`);
      expect(result.stderr).toContain(`${box.out('conf.d/one.conf')} (missing)`);
      expect(result.stderr).toContain(`${box.out('conf.d/extra.conf')} (not in source)`);
    });

    it.runIf(isRoot)('reports a changed owner where config.json gives one', () => {
      box.config({
        command: 'app',
        config_files: [{ source: 'app.conf', dest: box.out('app.conf'), owner: 'nobody:nogroup', perm: '0600' }],
      });
      expect(box.setConfigs('COPY_ALWAYS').status).toBe(0);
      expect(box.check().status).toBe(0);
      chmodSync(box.out('app.conf'), 0o600); // unchanged mode
      spawnSync('chown', ['root:root', box.out('app.conf')]);
      const result = box.check();
      expect(result.status).toBe(1);
      expect(result.stderr).toContain(`${box.out('app.conf')} (owner)`);
    });
  });
});

// Who may steer the run: through sudo (root with SUDO_UID) nothing of the
// caller's environment counts. The script runs under unshare as a child of
// a shell that is PID 1 of a new pid namespace (the container's dumb-init
// in real use), with an empty tmpfs on /var/lib, so the fixed config.json
// is certainly absent and the fixed-path run stops before writing anything.
describe('kolla_set_configs: whose environment counts', () => {
  let box: Sandbox;
  beforeEach(() => {
    box = new Sandbox();
    box.source('app.conf', 'x\n');
    box.config({ command: 'app', config_files: [{ source: 'app.conf', dest: box.out('app.conf') }] });
  });
  afterEach(() => box.remove());

  const PATH = '/usr/sbin:/usr/bin:/sbin:/bin';
  const asChildOfPid1 = (pid1Env: Record<string, string>, callerEnv: Record<string, string>): Result => {
    const script = 'mount -t tmpfs kolla-test /var/lib || exit 99; env -i "$@"; status=$?; exit $status';
    const callerVars = Object.entries(callerEnv).map(([key, value]) => `${key}=${value}`);
    return run('unshare', ['--pid', '--fork', '--mount-proc', '/bin/sh', '-c', script, 'sh', ...callerVars, SET_CONFIGS], { PATH, ...pid1Env });
  };
  const expectNothingWritten = (): void => {
    expect(existsSync(box.out('app.conf'))).toBe(false);
    expect(existsSync(box.runCommand)).toBe(false);
    expect(existsSync(box.marker)).toBe(false);
  };

  it.runIf(isRoot)('through sudo, fails when PID 1 has no KOLLA_CONFIG_STRATEGY, whatever the caller sets', () => {
    const result = asChildOfPid1({}, { PATH, ...box.env('COPY_ALWAYS'), SUDO_UID: '1000' });
    expectError(result, 'KOLLA_CONFIG_STRATEGY must be set at container creation', '/proc/1/environ');
    expectNothingWritten();
  });

  it.runIf(isRoot)("through sudo, takes the strategy from PID 1 and ignores the caller's KOLLA_* paths", () => {
    const caller = { PATH, ...box.env('COPY_SOMETIMES'), KOLLA_CONFIG_FILE: join(box.src, 'config.json') };
    // SUDO_UID=0 too: sudo always sets it, so its value cannot lift the restriction.
    for (const sudoUid of ['1000', '0']) {
      const result = asChildOfPid1({ KOLLA_CONFIG_STRATEGY: 'COPY_ALWAYS' }, { ...caller, SUDO_UID: sudoUid });
      expectError(result, 'cannot read /var/lib/kolla/config_files/config.json');
      expectNothingWritten();
    }
  });

  it.runIf(isRoot)('through sudo, rejects an unknown strategy in PID 1', () => {
    const result = asChildOfPid1({ KOLLA_CONFIG_STRATEGY: 'COPY_SOMETIMES' }, { PATH, ...box.env('COPY_ALWAYS'), SUDO_UID: '1000' });
    expectError(result, "KOLLA_CONFIG_STRATEGY must be COPY_ALWAYS or COPY_ONCE ('COPY_SOMETIMES')");
    expectNothingWritten();
  });

  it.runIf(isRoot)('run by root without sudo, follows the environment', () => {
    const result = asChildOfPid1({}, { PATH, ...box.env('COPY_ALWAYS') });
    expect(result.status, result.stderr).toBe(0);
    expect(readFileSync(box.out('app.conf'), 'utf8')).toBe('x\n');
  });

  it.runIf(isRoot)('run by an unprivileged user, follows the environment even with SUDO_UID set', () => {
    spawnSync('chown', ['-R', 'nobody:nogroup', box.root]);
    const result = run('setpriv', ['--reuid', 'nobody', '--regid', 'nogroup', '--clear-groups', SET_CONFIGS], {
      ...box.env('COPY_ALWAYS'),
      SUDO_UID: '1000',
    });
    expect(result.status, result.stderr).toBe(0);
    expect(statSync(box.out('app.conf')).uid).toBe(NOBODY_UID);
    expect(readFileSync(box.runCommand, 'utf8').trim()).toBe('app');
  });

  it('runs Python isolated: PYTHONPATH and modules planted there are not loaded', () => {
    const planted = join(box.root, 'planted');
    mkdirSync(planted);
    const touched = join(box.root, 'imported');
    for (const module of ['sitecustomize.py', 'json.py']) {
      writeFileSync(join(planted, module), `open(${JSON.stringify(touched)}, 'w').write('${module}')\n`);
    }
    const result = run(SET_CONFIGS, [], { ...box.env('COPY_ALWAYS'), PYTHONPATH: planted });
    expect(result.status, result.stderr).toBe(0);
    expect(existsSync(touched)).toBe(false);
  });
});

describe('kolla_start', () => {
  let box: Sandbox;
  let hook: string;
  beforeEach(() => {
    box = new Sandbox();
    hook = join(box.root, 'kolla_extend_start');
    writeFileSync(
      hook,
      [
        'if [ -n "$KOLLA_BOOTSTRAP" ]; then echo "bootstrap ran"; exit 0; fi',
        'ARGS="--from-hook"',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
  });
  afterEach(() => box.remove());

  const start = (extra: Record<string, string> = {}) =>
    run(join(BASE, 'kolla_start'), [], {
      ...box.env('COPY_ALWAYS'),
      KOLLA_EXTEND_START_FILE: hook,
      ...extra,
    });

  it('installs the config, then execs the command with the arguments the hook adds', () => {
    const service = join(box.root, 'service.sh');
    writeFileSync(service, 'cat "$1"; echo "args: $*"\n');
    box.source('motd', 'hello from config\n');
    box.config({
      command: `/bin/sh ${service} ${box.out('motd')}`,
      config_files: [{ source: 'motd', dest: box.out('motd') }],
    });
    const result = start();
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('hello from config');
    expect(result.stdout).toContain(`args: ${box.out('motd')} --from-hook`);
  });

  it('splits the command on whitespace without globbing', () => {
    box.config({ command: '/bin/echo  one  *' });
    chmodSync(hook, 0o644); // not executable: not sourced
    const result = start();
    expect(result.status).toBe(0);
    expect(result.stdout.trim().split('\n').at(-1)).toBe('one *');
  });

  it('lets the hook end a one-shot bootstrap before the command runs', () => {
    box.config({ command: '/bin/echo service ran' });
    const result = start({ KOLLA_BOOTSTRAP: '1' });
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('bootstrap ran');
    expect(result.stdout).not.toContain('service ran');
  });

  it('stops without running the command when kolla_set_configs fails', () => {
    box.config({ command: '/bin/echo service ran', config_files: [{ source: 'absent', dest: box.out('x') }] });
    const result = start();
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('kolla_set_configs: ERROR:');
    expect(result.stdout).not.toContain('service ran');
  });
});

// Health-check helpers against real processes on loopback.
describe('health-check helpers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kolla-healthcheck-'));
  const children: ChildProcess[] = [];
  const healthcheck = (tool: string, args: string[], env: Record<string, string> = {}) =>
    run(join(BASE, tool), args, env);

  const fixtures = {
    // GET /broken answers 503, /missing 404, /slow after 3 s, anything else 200.
    'kts_fixture_api.py': `
import http.server, sys, time
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == '/slow':
            time.sleep(3)
        code = {'/broken': 503, '/missing': 404}.get(self.path, 200)
        self.send_response(code)
        self.send_header('Content-Length', '0')
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
`,
    'kts_fixture_client.py': `
import socket, sys, time
connection = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
print('connected', flush=True)
time.sleep(300)
`,
    'kts_fixture_unix.py': `
import socket, sys, time
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(sys.argv[1])
server.listen()
print('listening', flush=True)
time.sleep(300)
`,
  };
  for (const [name, code] of Object.entries(fixtures)) writeFileSync(join(dir, name), code);

  /** Starts a fixture (under a wrapper such as unshare when given) and resolves with the first line it prints. */
  function startFixture(name: string, args: string[] = [], wrapper: string[] = []): Promise<string> {
    const [command, ...rest] = [...wrapper, 'python3', join(dir, name), ...args];
    const child = spawn(command!, rest, { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    return new Promise((resolve, reject) => {
      let output = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('\n')) resolve(output.split('\n')[0]!);
      });
      child.on('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
    });
  }

  function closedPort(): Promise<number> {
    return new Promise((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
  }

  afterAll(() => {
    for (const child of children) child.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  let apiPort: number;
  const socketPath = join(dir, 'fixture.sock');
  beforeAll(async () => {
    apiPort = Number(await startFixture('kts_fixture_api.py'));
    await startFixture('kts_fixture_client.py', [String(apiPort)]);
    await startFixture('kts_fixture_unix.py', [socketPath]);
  });

  it('healthcheck_listen finds the listener by argv or comm, and only on its port', () => {
    expect(healthcheck('healthcheck_listen', ['kts_fixture_api', String(apiPort)]).status).toBe(0);
    expect(healthcheck('healthcheck_listen', ['python3', String(apiPort)]).status).toBe(0);
    expect(healthcheck('healthcheck_listen', ['kts_fixture_api', String(apiPort + 1)]).status).toBe(1);
    // the client is connected to the port but does not listen on it
    expect(healthcheck('healthcheck_listen', ['kts_fixture_client', String(apiPort)]).status).toBe(1);
    const missing = healthcheck('healthcheck_listen', ['kts_no_such_service', String(apiPort)]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('no matching process');
  });

  it('healthcheck_port needs a connection to that remote port', () => {
    expect(healthcheck('healthcheck_port', ['kts_fixture_client', String(apiPort)]).status).toBe(0);
    expect(healthcheck('healthcheck_port', ['kts_fixture_client', String(apiPort + 1)]).status).toBe(1);
    // the server's side of that connection has the port as its local port
    expect(healthcheck('healthcheck_port', ['kts_fixture_api', String(apiPort)]).status).toBe(1);
  });

  it('healthcheck_socket needs the process to hold that unix socket', () => {
    expect(healthcheck('healthcheck_socket', ['kts_fixture_unix', socketPath]).status).toBe(0);
    expect(healthcheck('healthcheck_socket', ['kts_fixture_unix', join(dir, 'other.sock')]).status).toBe(1);
    expect(healthcheck('healthcheck_socket', ['kts_fixture_api', socketPath]).status).toBe(1);
  });

  it('counts only processes of its own container (mount namespace): a libvirtd left by the previous container does not make the new one healthy', async () => {
    // The same program holding another socket, from a mount namespace of its own, as a process of another container seen through the host's pid namespace.
    const otherSocket = join(dir, 'other-container.sock');
    await startFixture('kts_fixture_unix.py', [otherSocket], ['unshare', '--mount', '--propagation', 'unchanged']);
    const refused = healthcheck('healthcheck_socket', ['kts_fixture_unix', otherSocket]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('1 matching process(es), none holds');
    expect(healthcheck('healthcheck_socket', ['kts_fixture_unix', socketPath]).status).toBe(0);
  });

  it('healthcheck_curl passes below 500 and fails on 5xx, no answer or timeout', async () => {
    const url = (path: string) => `http://127.0.0.1:${apiPort}${path}`;
    expect(healthcheck('healthcheck_curl', [url('/')]).status).toBe(0);
    expect(healthcheck('healthcheck_curl', [url('/missing')]).status).toBe(0);
    const broken = healthcheck('healthcheck_curl', [url('/broken')]);
    expect(broken.status).toBe(1);
    expect(broken.stdout).toContain('503');
    expect(healthcheck('healthcheck_curl', [`http://127.0.0.1:${await closedPort()}/`]).status).toBe(1);

    const started = Date.now();
    const slow = healthcheck('healthcheck_curl', [url('/slow')], { HEALTHCHECK_CURL_TIMEOUT: '1' });
    expect(slow.status).toBe(1);
    expect(Date.now() - started).toBeLessThan(2900);
  });
});
