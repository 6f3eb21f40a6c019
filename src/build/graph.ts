import { SelectionError, InputError } from '../errors.ts';

export interface GraphNode {
  name: string;
  /** Parent image name, or null for a root (FROM an external image). */
  parent: string | null;
  /** The external image a root starts from. */
  externalFrom: string | null;
  children: string[];
}

export type ImageGraph = Map<string, GraphNode>;

/** Builds the tree from each image's FROM reference. */
export function buildGraph(froms: ReadonlyMap<string, string>, imagePrefix: string, tag: string): ImageGraph {
  const graph: ImageGraph = new Map();
  for (const [name, from] of froms) {
    const parent = parentName(from, imagePrefix, tag, froms);
    graph.set(name, { name, parent, externalFrom: parent ? null : from, children: [] });
  }
  for (const node of graph.values()) if (node.parent) graph.get(node.parent)!.children.push(node.name);
  for (const node of graph.values()) node.children.sort();
  assertAcyclic(graph);
  return graph;
}

function parentName(from: string, imagePrefix: string, tag: string, known: ReadonlyMap<string, string>): string | null {
  if (!from.startsWith(imagePrefix)) return null;
  const rest = from.slice(imagePrefix.length);
  const suffix = `:${tag}`;
  if (!rest.endsWith(suffix)) return null;
  const name = rest.slice(0, -suffix.length);
  return known.has(name) ? name : null;
}

function assertAcyclic(graph: ImageGraph): void {
  for (const start of graph.keys()) {
    const seen = new Set<string>();
    for (let name: string | null = start; name; name = graph.get(name)!.parent) {
      if (seen.has(name)) throw new InputError(`images form a cycle through "${name}"`);
      seen.add(name);
    }
  }
}

export function ancestors(graph: ImageGraph, name: string): string[] {
  const chain: string[] = [];
  for (let parent = graph.get(name)?.parent ?? null; parent; parent = graph.get(parent)!.parent) chain.push(parent);
  return chain;
}

export interface Selection {
  /** Images to build: the matched ones and their ancestors. */
  selected: Set<string>;
  /** Images not selected. */
  unmatched: string[];
}

/**
 * Images whose name a regex finds (anywhere in the name, as Kolla does), plus
 * their ancestors. No regex and no profile selects everything.
 */
export function selectImages(graph: ImageGraph, patterns: readonly string[], profilePatterns?: { name: string; patterns: string[] }): Selection {
  const all = [...graph.keys()];
  const wanted: { source: string; regex: RegExp }[] = [];
  for (const pattern of patterns) wanted.push({ source: `regex "${pattern}"`, regex: compile(pattern) });
  for (const pattern of profilePatterns?.patterns ?? []) {
    wanted.push({ source: `profile "${profilePatterns!.name}" entry "${pattern}"`, regex: compile(pattern) });
  }
  const selected = new Set<string>();
  if (wanted.length === 0) {
    all.forEach((n) => selected.add(n));
  } else {
    const nothing = wanted.filter(({ regex }) => !all.some((n) => regex.test(n)));
    if (nothing.length > 0) throw new SelectionError(`${nothing.map((w) => w.source).join(', ')} matches no image`);
    for (const name of all) {
      if (wanted.some(({ regex }) => regex.test(name))) {
        selected.add(name);
        ancestors(graph, name).forEach((a) => selected.add(a));
      }
    }
  }
  return { selected, unmatched: all.filter((n) => !selected.has(n)).sort() };
}

function compile(pattern: string): RegExp {
  try {
    return new RegExp(pattern);
  } catch {
    throw new SelectionError(`invalid regex "${pattern}"`);
  }
}

/** Parents before children, siblings by name: a stable order for listings and plain output. */
export function topologicalOrder(graph: ImageGraph, only?: ReadonlySet<string>): string[] {
  const order: string[] = [];
  const visit = (name: string): void => {
    if (!only || only.has(name)) order.push(name);
    for (const child of graph.get(name)!.children) visit(child);
  };
  [...graph.values()]
    .filter((n) => !n.parent)
    .map((n) => n.name)
    .sort()
    .forEach(visit);
  return order;
}

export type DependencyTree = { [name: string]: DependencyTree };

export function dependencyTree(graph: ImageGraph, only?: ReadonlySet<string>): DependencyTree {
  const subtree = (name: string): DependencyTree => {
    const tree: DependencyTree = {};
    for (const child of graph.get(name)!.children) if (!only || only.has(child)) tree[child] = subtree(child);
    return tree;
  };
  const tree: DependencyTree = {};
  for (const node of graph.values()) if (!node.parent && (!only || only.has(node.name))) tree[node.name] = subtree(node.name);
  return tree;
}

export function toDot(graph: ImageGraph, only?: ReadonlySet<string>): string {
  const lines = ['digraph images {', '  rankdir=LR;', '  node [shape=box];'];
  for (const name of topologicalOrder(graph, only)) {
    const node = graph.get(name)!;
    if (node.parent) lines.push(`  "${node.parent}" -> "${name}";`);
    else lines.push(`  "${name}";`);
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}
