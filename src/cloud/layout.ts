import { createHash } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { InputError } from '../errors.ts';
import { DEFAULT_FLAVORS, DEFAULT_INGRESS, type CloudLayout, type GuestImage } from './init-cloud.ts';

/** init-cloud's flags, as kolla-ansible's init-runonce names its variables (EXT_NET_CIDR, ...). */
export interface LayoutFlags {
  extNetCidr: string;
  extNetGateway?: string;
  /** "first-last" addresses for routers and floating IPs. */
  extNetRange?: string;
  demoNetCidr: string;
  /** A directory made by scripts/guest-image.sh; undefined: no image. */
  guestImage?: string;
  /** A public key file; undefined: the user's own key, or one made in the config dir. */
  publicKey?: string;
  configDir: string;
}

interface Cidr {
  network: number;
  prefix: number;
}

function parseAddress(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return undefined;
  return parts.reduce((value, part) => value * 256 + Number(part), 0);
}

function formatAddress(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

function parseCidr(text: string, flag: string): Cidr {
  const [address, prefixText] = text.split('/');
  const base = address === undefined ? undefined : parseAddress(address);
  const prefix = Number(prefixText);
  if (base === undefined || !/^\d{1,2}$/.test(prefixText ?? '') || prefix < 8 || prefix > 29) {
    throw new InputError(`${flag}: expected an IPv4 network such as 203.0.113.0/24 (prefix 8 to 29), got "${text}"`);
  }
  const size = 2 ** (32 - prefix);
  if (base % size !== 0) throw new InputError(`${flag}: ${text} has host bits set; the network is ${formatAddress(base - (base % size))}/${prefix}`);
  return { network: base, prefix };
}

function contains(cidr: Cidr, address: number): boolean {
  const size = 2 ** (32 - cidr.prefix);
  // Neither the network's own address nor its broadcast address.
  return address > cidr.network && address < cidr.network + size - 1;
}

function addressIn(cidr: Cidr, text: string, flag: string, cidrText: string): number {
  const address = parseAddress(text);
  if (address === undefined) throw new InputError(`${flag}: expected an IPv4 address, got "${text}"`);
  if (!contains(cidr, address)) throw new InputError(`${flag}: ${text} is not a host address of ${cidrText}`);
  return address;
}

/**
 * The layout init-cloud makes, from its flags: checked before anything is
 * asked of the cloud (a gateway outside its network is refused here, not
 * half-way through). Defaults: the gateway is the network's first address,
 * routers and floating IPs take the upper half.
 */
export function cloudLayout(flags: LayoutFlags): CloudLayout {
  const external = parseCidr(flags.extNetCidr, '--ext-net-cidr');
  const demo = parseCidr(flags.demoNetCidr, '--demo-net-cidr');
  const overlap = external.network < demo.network + 2 ** (32 - demo.prefix) && demo.network < external.network + 2 ** (32 - external.prefix);
  if (overlap) throw new InputError(`--demo-net-cidr ${flags.demoNetCidr} overlaps --ext-net-cidr ${flags.extNetCidr}`);

  const size = 2 ** (32 - external.prefix);
  const gateway = flags.extNetGateway ? addressIn(external, flags.extNetGateway, '--ext-net-gateway', flags.extNetCidr) : external.network + 1;
  let [poolStart, poolEnd] = [external.network + size / 2, external.network + size - 2];
  if (flags.extNetRange) {
    const [first, last] = flags.extNetRange.split('-');
    if (!first || !last) throw new InputError(`--ext-net-range: expected FIRST-LAST (two addresses), got "${flags.extNetRange}"`);
    poolStart = addressIn(external, first, '--ext-net-range', flags.extNetCidr);
    poolEnd = addressIn(external, last, '--ext-net-range', flags.extNetCidr);
    if (poolStart > poolEnd) throw new InputError(`--ext-net-range: ${first} comes after ${last}`);
  }
  if (gateway >= poolStart && gateway <= poolEnd) throw new InputError(`--ext-net-gateway ${formatAddress(gateway)} lies inside --ext-net-range`);

  return {
    external: {
      name: 'public1',
      physicalNetwork: 'physnet1',
      cidr: flags.extNetCidr,
      gateway: formatAddress(gateway),
      poolStart: formatAddress(poolStart),
      poolEnd: formatAddress(poolEnd),
    },
    demo: { name: 'demo-net', cidr: flags.demoNetCidr, gateway: formatAddress(demo.network + 1) },
    router: 'demo-router',
    keypair: { name: 'mykey', publicKey: publicKey(flags) },
    flavors: DEFAULT_FLAVORS,
    ingress: DEFAULT_INGRESS,
    ...(flags.guestImage ? { guest: readGuestImage(flags.guestImage) } : {}),
  };
}

const GUEST_FILES = { kernel: 'vmlinuz', ramdisk: 'initrd.img', disk: 'disk.raw' } as const;

/** The guest scripts/guest-image.sh built: its three files and the manifest that fingerprints them. */
export function readGuestImage(dir: string): GuestImage {
  const manifest = join(dir, 'manifest.json');
  const missing = [manifest, ...Object.values(GUEST_FILES).map((f) => join(dir, f))].filter((f) => !existsSync(f));
  if (missing.length > 0) {
    throw new InputError(`no guest image in ${dir} (missing ${missing.join(', ')}): build one with scripts/guest-image.sh ${dir}, or pass --no-guest-image`);
  }
  return {
    name: 'kolla-ts-guest',
    kernel: readFileSync(join(dir, GUEST_FILES.kernel)),
    ramdisk: readFileSync(join(dir, GUEST_FILES.ramdisk)),
    disk: readFileSync(join(dir, GUEST_FILES.disk)),
    buildId: createHash('sha256').update(readFileSync(manifest)).digest('hex').slice(0, 16),
    commandLine: 'console=ttyS0',
  };
}

/**
 * The key the keypair gets: the file given, else the user's own (~/.ssh),
 * else one generated once into the config directory (private part 0600).
 */
function publicKey(flags: LayoutFlags): string {
  const candidates = flags.publicKey ? [flags.publicKey] : ['id_ed25519.pub', 'id_ecdsa.pub', 'id_rsa.pub'].map((f) => join(homedir(), '.ssh', f));
  for (const file of candidates) {
    if (existsSync(file)) return readPublicKey(file);
  }
  if (flags.publicKey) throw new InputError(`--public-key: ${flags.publicKey} does not exist`);
  const generated = join(flags.configDir, 'id_ed25519');
  if (!existsSync(`${generated}.pub`)) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'kolla-ts init-cloud' });
    writeFileSync(generated, pair.private, { mode: 0o600 });
    chmodSync(generated, 0o600);
    writeFileSync(`${generated}.pub`, `${pair.public}\n`);
  }
  return readPublicKey(`${generated}.pub`);
}

function readPublicKey(file: string): string {
  const key = readFileSync(file, 'utf8').trim();
  if (!/^(ssh-(ed25519|rsa)|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+( .*)?$/.test(key)) throw new InputError(`${file}: not an OpenSSH public key`);
  return key;
}
