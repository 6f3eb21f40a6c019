import type { HostVars } from './vars.ts';

/** A host as the inventory file itself declares it: the variables on its line or entry. */
export interface SourceHost {
  vars: HostVars;
}

/** A group as the inventory file declares it, before children are flattened. */
export interface SourceGroup {
  hosts: string[];
  /** Child groups, with the line that names each (for a cycle's error). */
  children: { name: string; line?: number }[];
  vars: HostVars;
}

/**
 * What a reader (YAML or INI) makes of one inventory file, before
 * group_vars/, host_vars/ and inheritance are applied. Every value in it has
 * been checked where it was read.
 */
export interface InventorySource {
  file: string;
  hosts: Map<string, SourceHost>;
  /** May hold Ansible's implicit `all` (vars for every host) and `ungrouped`. */
  groups: Map<string, SourceGroup>;
  placement: Map<string, string>;
  lineOf(path: readonly (string | number)[]): number | undefined;
}
