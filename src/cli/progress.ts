import { Listr } from 'listr2';

/** Progress of many named items (images, containers): started, finished, failed. */
export interface Progress {
  start(name: string, detail?: string): void;
  finish(name: string, ok: boolean, detail?: string): void;
  /** A line that belongs to no item. */
  note(line: string): void;
  close(): Promise<void>;
}

/** Plain lines, one per event: for CI logs and pipes. */
export class LineProgress implements Progress {
  private done = 0;
  private readonly startedAt = new Map<string, number>();

  constructor(
    private readonly total: number,
    private readonly write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
  ) {}

  start(name: string, detail?: string): void {
    if (!this.startedAt.has(name)) this.startedAt.set(name, Date.now());
    this.write(`[${this.done}/${this.total}] ${name}: ${detail ?? 'started'}`);
  }

  finish(name: string, ok: boolean, detail?: string): void {
    this.done++;
    const began = this.startedAt.get(name);
    const took = began ? ` (${((Date.now() - began) / 1000).toFixed(1)}s)` : '';
    this.write(`[${this.done}/${this.total}] ${name}: ${ok ? 'ok' : 'FAILED'}${detail ? ` - ${detail}` : ''}${took}`);
  }

  note(line: string): void {
    this.write(line);
  }

  async close(): Promise<void> {}
}

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(error: Error): void;
}

/**
 * listr2 on a terminal. The work is scheduled elsewhere (a tree, not a list),
 * so each listr task only waits for its item's outcome and shows it.
 */
export class ListrProgress implements Progress {
  private readonly items = new Map<string, Deferred & { title?: (t: string) => void; output?: (t: string) => void }>();
  private readonly run: Promise<unknown>;

  constructor(names: readonly string[]) {
    for (const name of names) {
      let resolve!: () => void;
      let reject!: (error: Error) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      promise.catch(() => {});
      this.items.set(name, { promise, resolve, reject });
    }
    const list = new Listr(
      names.map((name) => ({
        title: `${name}: waiting`,
        task: async (_ctx: unknown, task: { title: string; output: string }) => {
          const item = this.items.get(name)!;
          item.title = (t) => (task.title = t);
          item.output = (t) => (task.output = t);
          await item.promise;
        },
      })),
      { concurrent: true, exitOnError: false, rendererOptions: { collapseErrors: false } },
    );
    this.run = list.run().catch(() => {});
  }

  start(name: string, detail?: string): void {
    this.items.get(name)?.title?.(`${name}: ${detail ?? 'started'}`);
  }

  finish(name: string, ok: boolean, detail?: string): void {
    const item = this.items.get(name);
    if (!item) return;
    item.title?.(`${name}${detail ? `: ${detail}` : ''}`);
    if (ok) item.resolve();
    else item.reject(new Error(detail ?? 'failed'));
  }

  note(line: string): void {
    process.stderr.write(`${line}\n`);
  }

  async close(): Promise<void> {
    await this.run;
  }
}

export function createProgress(names: readonly string[], json: boolean): Progress {
  return process.stderr.isTTY && !json && !process.env.CI ? new ListrProgress(names) : new LineProgress(names.length);
}
