import { Listr } from 'listr2';

/** Progress of many named items (images, containers): started, finished, failed. */
export interface Progress {
  start(name: string, detail?: string): void;
  finish(name: string, ok: boolean, detail?: string): void;
  /** A line that belongs to no item. */
  note(line: string): void;
  /** Ends the display; `stoppedEarly` when work ended on an error. */
  close(stoppedEarly?: boolean): Promise<void>;
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
  private readonly items = new Map<string, Deferred & { settled?: boolean; notReached?: boolean; title: string; show?: (title: string) => void }>();
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
      this.items.set(name, { promise, resolve, reject, title: `${name}: waiting` });
    }
    const list = new Listr(
      names.map((name) => ({
        title: `${name}: waiting`,
        task: async (_ctx: unknown, task: { title: string; skip(message?: string): void }) => {
          // listr starts tasks a tick later: show what happened meanwhile, then follow.
          const item = this.items.get(name)!;
          item.show = (title) => (task.title = title);
          item.show(item.title);
          await item.promise;
          if (item.notReached) task.skip(item.title);
        },
      })),
      { concurrent: true, exitOnError: false, rendererOptions: { collapseErrors: false } },
    );
    this.run = list.run().catch(() => {});
  }

  start(name: string, detail?: string): void {
    const item = this.items.get(name);
    if (item) this.retitle(item, `${name}: ${detail ?? 'started'}`);
  }

  private retitle(item: { title: string; show?: (title: string) => void }, title: string): void {
    item.title = title;
    item.show?.(title);
  }

  finish(name: string, ok: boolean, detail?: string): void {
    const item = this.items.get(name);
    if (!item || item.settled) return;
    item.settled = true;
    this.retitle(item, `${name}${detail ? `: ${detail}` : ''}`);
    if (ok) item.resolve();
    else item.reject(new Error(detail ?? 'failed'));
  }

  note(line: string): void {
    process.stderr.write(`${line}\n`);
  }

  /** Items never finished close as "nothing to do", or as skipped ("not reached") after an error. */
  async close(stoppedEarly = false): Promise<void> {
    for (const [name, item] of this.items) {
      if (!item.settled && stoppedEarly) item.notReached = true;
      this.finish(name, true, stoppedEarly ? 'not reached' : 'nothing to do');
    }
    await this.run;
  }
}

export function createProgress(names: readonly string[], json: boolean): Progress {
  return process.stderr.isTTY && !json && !process.env.CI ? new ListrProgress(names) : new LineProgress(names.length);
}
