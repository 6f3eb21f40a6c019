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
