import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { HostFacts } from '../config/context.ts';
import { InputError, UnreachableError } from '../errors.ts';
import type { HostPool } from '../fleet/hosts.ts';
import { forEachHost, type Recap } from '../fleet/runner.ts';
import type { Inventory } from '../inventory/inventory.ts';
import { isIpAddress } from '../util/values.ts';

/**
 * What kolla-ts learns from each host before planning: its API address, and
 * its tunnel address (VXLAN's local end) when that is another interface.
 * Kept in the config directory (`facts.json`) so a command limited to some
 * hosts can still render templates that name the others.
 */
export interface FactsCache {
  [host: string]: HostFacts & { gatheredAt: string };
}

export function readFactsCache(file: string): FactsCache {
  if (!existsSync(file)) return {};
  try {
    const data = JSON.parse(readFileSync(file, 'utf8')) as FactsCache;
    return Object.fromEntries(
      Object.entries(data).filter(
        ([, facts]) => typeof facts?.apiAddress === 'string' && isIpAddress(facts.apiAddress) && (facts.tunnelAddress === undefined || isIpAddress(facts.tunnelAddress)),
      ),
    );
  } catch {
    return {}; // A damaged cache is only a cache: gather again.
  }
}

function writeFactsCache(file: string, cache: FactsCache): void {
  const temp = `${file}.tmp-${process.pid}`;
  writeFileSync(temp, `${JSON.stringify(cache, null, 2)}\n`, { mode: 0o600 });
  chmodSync(temp, 0o600);
  renameSync(temp, file);
}

export interface GatherInput {
  inventory: Inventory;
  pool: HostPool;
  /** Every host the desired state places something on. */
  hosts: readonly string[];
  /** Hosts this command may contact (--limit); the rest come from the cache. */
  targets: ReadonlySet<string>;
  /** globals.yml's api_interface and tunnel_interface, and where each is set (for the error when a host has no address there). */
  interfaces: Record<AddressKind, { name: string; location: { file: string; line?: number; key: string } }>;
  cacheFile: string;
  /**
   * Targets asked at the same time. Every target is asked (no
   * --max-fail-percentage here): one left out would have no fresh facts and
   * no visit, yet still be worked on.
   */
  forks: number;
  recap: Recap;
  /**
   * The rest of the command's first visit to each target (session: the
   * engine, the owner check, the lock), sent together with the facts'
   * questions, so that each host's round trips come in a row and the fleet
   * is walked once. A host it fails on keeps its facts; unreachable, the
   * host is down; any other error stops the run, after the facts' own.
   */
  visit?: (host: string) => Promise<void>;
}

type AddressKind = 'api' | 'tunnel';

/**
 * Facts of every host: asked of the targets (in parallel, each with its
 * visit), read from the inventory or the cache for the others, and for
 * targets that do not answer (those are recorded unreachable). Returns the
 * facts and the hosts that did not answer, to the facts or to the visit.
 */
export async function gatherFacts(input: GatherInput): Promise<{ facts: Map<string, HostFacts>; down: Set<string> }> {
  const cache = readFactsCache(input.cacheFile);
  const facts = new Map<string, HostFacts>();
  const down = new Set<string>();
  const asked = input.hosts.filter((h) => input.targets.has(h));
  // A host's own <kind>_interface, then its network_interface (both default to it), then globals.yml's.
  const interfaceOf = (name: string, kind: AddressKind): string => {
    const vars = input.inventory.hosts.get(name)!.vars;
    return String(vars[`${kind}_interface`] ?? vars.network_interface ?? input.interfaces[kind].name);
  };
  const ask = async (name: string): Promise<HostFacts> => {
    const spec = input.inventory.hosts.get(name)!;
    const sameInterface = interfaceOf(name, 'tunnel') === interfaceOf(name, 'api');
    if (spec.apiAddress && sameInterface) return { apiAddress: spec.apiAddress };
    // Only the host is asked, not its engine: an engine that is down is reported where it is used.
    const connection = await input.pool.connection(name);
    const [apiAddress, tunnelAddress] = await Promise.all([
      spec.apiAddress ?? connection.interfaceAddress(interfaceOf(name, 'api')),
      sameInterface ? undefined : connection.interfaceAddress(interfaceOf(name, 'tunnel')),
    ]);
    if (!apiAddress) throw missingAddress(name, 'api');
    if (sameInterface) return { apiAddress };
    if (!tunnelAddress) throw missingAddress(name, 'tunnel');
    return { apiAddress, tunnelAddress };
  };
  const answered = new Map<string, HostFacts>();
  const settled = await forEachHost(asked, { forks: input.forks }, async (name) => {
    // Both settled before the host is done: nothing of its visit (a lock being taken) outlives the pass.
    const [asking, visiting] = await Promise.allSettled([ask(name), input.visit?.(name)]);
    if (asking.status === 'rejected') throw asking.reason;
    answered.set(name, asking.value);
    if (visiting.status === 'rejected') throw visiting.reason;
  });
  function missingAddress(host: string, kind: AddressKind): InputError {
    return new InputError(`host ${host} has no IPv4 address on ${kind}_interface "${interfaceOf(host, kind)}"`, input.interfaces[kind].location);
  }
  const failedVisits: { host: string; error: unknown }[] = [];
  for (const result of settled) {
    const known = answered.get(result.host);
    if (known) {
      facts.set(result.host, known);
      cache[result.host] = { ...known, gatheredAt: new Date().toISOString() };
      if (result.status === 'failed') failedVisits.push(result);
    } else if (result.status === 'failed') {
      if (!(result.error instanceof UnreachableError)) throw result.error;
      input.recap.fail(result.host, result.error);
      down.add(result.host);
    }
  }
  for (const name of input.hosts) {
    if (facts.has(name)) continue;
    const known = input.inventory.hosts.get(name)?.apiAddress ?? cache[name]?.apiAddress;
    if (known) {
      const tunnelAddress = cache[name]?.tunnelAddress;
      facts.set(name, { apiAddress: known, ...(tunnelAddress ? { tunnelAddress } : {}) });
      continue;
    }
    const why = down.has(name) ? `it does not answer: ${input.recap.rows().find((row) => row.host === name)?.errors[0] ?? 'unreachable'}` : 'it is outside --limit';
    throw new UnreachableError(
      `no facts for host ${name} (${why}) and none cached in ${input.cacheFile}; templates of other hosts name its address. ` +
        `Run once without --limit while it answers, or set api_address for it in the inventory`,
    );
  }
  if (asked.length > 0) writeFactsCache(input.cacheFile, cache);
  // The visits' failures come after the facts are settled and cached, as when the visit was a pass of its own.
  for (const { host, error } of failedVisits) {
    if (!(error instanceof UnreachableError)) throw error;
    input.recap.fail(host, error);
    down.add(host);
  }
  return { facts, down };
}
