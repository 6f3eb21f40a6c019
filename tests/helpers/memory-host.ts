import type { ContainerEngine, ContainerSpec, ContainerState } from '../../src/engine/containers.ts';
import type { CommandResult, HostConnection } from '../../src/transport/host.ts';

/** A host whose files live in memory and whose commands all succeed: for unit tests of apply and upgrade with a fake engine. */
export class MemoryHost implements HostConnection {
  readonly docker = undefined as never;
  readonly engineAddress = 'memory';
  readonly lost = false;
  readonly files = new Map<string, string>();

  constructor(readonly name: string) {}

  async readFile(path: string) {
    return this.files.has(path) ? Buffer.from(this.files.get(path)!) : null;
  }
  async writeFileAtomic(path: string, content: string | Buffer) {
    this.files.set(path, content.toString());
  }
  async createExclusive(path: string, content: string) {
    if (this.files.has(path)) return false;
    this.files.set(path, content);
    return true;
  }
  async ensureDir() {}
  async listDir(path: string) {
    const prefix = `${path}/`;
    return [...new Set([...this.files.keys()].filter((p) => p.startsWith(prefix)).map((p) => p.slice(prefix.length).split('/')[0]!))];
  }
  async remove(path: string) {
    for (const p of [...this.files.keys()]) if (p === path || p.startsWith(`${path}/`)) this.files.delete(p);
  }
  async exec(): Promise<CommandResult> {
    return { code: 0, stdout: '', stderr: '' };
  }
  async interfaceAddress() {
    return undefined;
  }
  async close() {}
}

/** An engine whose containers live in memory and log what is done to them (`calls`); an image named *broken* never gets healthy. */
export class MemoryEngine implements ContainerEngine {
  containers = new Map<string, { id: string; spec: ContainerSpec; running: boolean }>();
  private ids = 0;
  readonly calls: string[] = [];

  private state(name: string): ContainerState | null {
    const c = this.containers.get(name);
    if (!c) return null;
    const healthy = !c.spec.image.includes('broken');
    return {
      id: c.id,
      name,
      image: c.spec.image,
      imageId: `sha256:${c.spec.image.replace(/\W/g, '')}`,
      labels: c.spec.labels,
      running: c.running,
      status: c.running ? 'running' : 'exited',
      health: healthy ? 'healthy' : 'starting',
      exitCode: 0,
      restartCount: 0,
      startedAt: new Date().toISOString(),
      createdAt: new Date().toISOString(),
    };
  }
  async inspect(name: string) {
    return this.state(name);
  }
  async specOf(name: string) {
    return this.containers.get(name)?.spec ?? null;
  }
  async listByLabel() {
    return [...this.containers.keys()].map((n) => this.state(n)!);
  }
  async image(ref: string) {
    return { id: ref, digests: [], labels: {} };
  }
  async registryDigest() {
    return null;
  }
  async pull() {}
  async create(spec: ContainerSpec) {
    if (this.containers.has(spec.name)) throw new Error(`name ${spec.name} in use`);
    this.containers.set(spec.name, { id: `id${++this.ids}`, spec, running: false });
    this.calls.push(`create ${spec.name} ${spec.image}`);
  }
  async start(name: string) {
    this.containers.get(name)!.running = true;
    this.calls.push(`start ${name}`);
  }
  async stop(name: string) {
    const c = this.containers.get(name);
    if (c) c.running = false;
    this.calls.push(`stop ${name}`);
  }
  async restart() {}
  async remove(name: string) {
    if (this.containers.delete(name)) this.calls.push(`remove ${name}`);
  }
  async rename(name: string, newName: string) {
    const c = this.containers.get(name);
    if (!c) throw new Error(`no container ${name}`);
    if (this.containers.has(newName)) throw new Error(`name ${newName} in use`);
    this.containers.delete(name);
    this.containers.set(newName, { ...c, spec: { ...c.spec, name: newName } });
    this.calls.push(`rename ${name} ${newName}`);
  }
  async runOnce() {
    return { exitCode: 0, output: '' };
  }
  async exec(name: string) {
    return { exitCode: this.containers.get(name)!.spec.image.includes('broken') ? 1 : 0, output: '' };
  }
  async logsTail(name: string) {
    return `log of ${name}`;
  }
  async removeVolume() {}
  async removeImage() {}
}
