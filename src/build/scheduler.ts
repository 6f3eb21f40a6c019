import type { ImageGraph } from './graph.ts';

export type ImageStatus = 'built' | 'skipped' | 'error' | 'parent_error' | 'push_error';

export interface ImageResult {
  status: ImageStatus;
  attempts: number;
  /** Why an image was skipped or failed; never secret (build output stays in the log). */
  reason?: string;
}

/** What the scheduler asks of the build side for one image. */
export interface ImageWork {
  /** Builds (or finds up to date) one image. Resolves `skipped` when nothing had to be built. */
  build(name: string, attempt: number): Promise<{ status: 'built' | 'skipped'; reason?: string }>;
  /** Pushes one image; called only after a successful build or skip. */
  push?(name: string, attempt: number): Promise<void>;
}

export interface SchedulerEvents {
  onStart?(name: string, attempt: number): void;
  onPushStart?(name: string): void;
  onFinish?(name: string, result: ImageResult): void;
}

/**
 * Runs the selected part of the tree with at most `threads` images at a
 * time. A child starts as soon as its parent is done; a failed image marks
 * every selected descendant parent_error and the rest of the tree goes on.
 */
export async function runTree(
  graph: ImageGraph,
  selected: ReadonlySet<string>,
  options: { threads: number; retries: number },
  work: ImageWork,
  events: SchedulerEvents = {},
): Promise<Map<string, ImageResult>> {
  const results = new Map<string, ImageResult>();
  const ready: string[] = [];
  let running = 0;

  const enqueueChildren = (name: string): void => {
    for (const child of graph.get(name)!.children) if (selected.has(child)) ready.push(child);
  };
  const failDescendants = (name: string): void => {
    for (const child of graph.get(name)!.children) {
      if (!selected.has(child)) continue;
      const result: ImageResult = { status: 'parent_error', attempts: 0, reason: `parent ${name} failed` };
      results.set(child, result);
      events.onFinish?.(child, result);
      failDescendants(child);
    }
  };
  for (const name of selected) {
    const parent = graph.get(name)!.parent;
    if (!parent || !selected.has(parent)) ready.push(name);
  }
  ready.sort();

  const runOne = async (name: string): Promise<ImageResult> => {
    let attempts = 0;
    let outcome: { status: 'built' | 'skipped'; reason?: string } | undefined;
    let lastError: unknown;
    while (attempts <= options.retries && !outcome) {
      attempts++;
      events.onStart?.(name, attempts);
      try {
        outcome = await work.build(name, attempts);
      } catch (error) {
        lastError = error;
      }
    }
    if (!outcome) return { status: 'error', attempts, reason: messageOf(lastError) };
    if (work.push) {
      events.onPushStart?.(name);
      let pushError: unknown;
      for (let pushAttempt = 1; pushAttempt <= options.retries + 1; pushAttempt++) {
        try {
          await work.push(name, pushAttempt);
          pushError = undefined;
          break;
        } catch (error) {
          pushError = error;
        }
      }
      if (pushError) return { status: 'push_error', attempts, reason: messageOf(pushError) };
    }
    return { status: outcome.status, attempts, ...(outcome.reason ? { reason: outcome.reason } : {}) };
  };

  await new Promise<void>((resolve) => {
    const pump = (): void => {
      while (running < options.threads && ready.length > 0) {
        const name = ready.shift()!;
        running++;
        void runOne(name).then((result) => {
          running--;
          results.set(name, result);
          events.onFinish?.(name, result);
          // A push failure leaves a good local image: children can still build on it.
          if (result.status === 'error') failDescendants(name);
          else enqueueChildren(name);
          pump();
        });
      }
      if (running === 0 && ready.length === 0) resolve();
    };
    pump();
  });
  return results;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
