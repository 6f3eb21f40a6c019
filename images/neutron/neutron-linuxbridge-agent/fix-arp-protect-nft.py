"""Make the Linux bridge agent's MAC spoofing rules replaceable under ebtables-nft.

Debian bookworm's ebtables is the nf_tables one, and it cannot delete an
`--among-src` rule by its spec ("RULE_DELETE failed (Invalid argument)").
The agent deletes exactly such rules whenever it re-installs a port's
protection (a port update, a resync), fails, and keeps resyncing, so new
ports are never wired and new servers never boot. A port's MAC chain holds
only these rules and a final DROP: flush it and put the DROP back instead.
Fails the build when the code it replaces is not found, so that a newer
neutron package is looked at rather than silently left as it is.
"""
import sys

import neutron.plugins.ml2.drivers.linuxbridge.agent.arp_protect as arp_protect

ORIGINAL = """def _delete_vif_mac_rules(vif, current_rules):
    chain = _mac_chain_name(vif)
    for rule in current_rules:
        if '-i %s' % vif in rule and '--among-src' in rule:
            ebtables(['-D', chain] + rule.split())
"""

REPLACEMENT = """def _delete_vif_mac_rules(vif, current_rules):
    # kolla-ts: ebtables-nft cannot delete --among-src rules by spec.
    chain = _mac_chain_name(vif)
    if any('-i %s' % vif in rule and '--among-src' in rule
           for rule in current_rules):
        ebtables(['-F', chain])
        ebtables(['-A', chain, '-j', 'DROP'])
"""

path = arp_protect.__file__
with open(path) as source:
    text = source.read()
if ORIGINAL not in text:
    sys.exit(f"{path}: _delete_vif_mac_rules is not the expected code; review this fix")
with open(path, "w") as target:
    target.write(text.replace(ORIGINAL, REPLACEMENT))
