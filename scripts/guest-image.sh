#!/usr/bin/env bash
# Build the kolla-ts test guest: a Debian kernel and a busybox initramfs,
# to be uploaded to glance as an AKI/ARI pair plus a tiny raw root disk
# (properties kernel_id/ramdisk_id), booted by nova with direct kernel boot.
# Why not CirrOS: this machine reaches only Debian's archive and npm, so the
# guest is made of Debian packages.
#
#   scripts/guest-image.sh OUTDIR
#
# Writes OUTDIR/vmlinuz, initrd.img (gzip newc cpio), disk.raw (1 MiB of
# zeros) and manifest.json (kernel version, sha256 of each file, the recipe
# hash). Idempotent: when manifest.json carries the same recipe hash and the
# files still match their sha256, it exits at once. GUEST_IMAGE_FORCE=1
# rebuilds anyway (e.g. to pick up a new kernel from the archive).
#
# The build runs in a throwaway container (GUEST_IMAGE_BUILDER, default the
# local registry's kolla base image, Debian bookworm with apt set up), so the
# host needs nothing but a Docker engine. The guest's /init and helpers live
# in scripts/guest-image/; boot-test.sh there boots the result under qemu.
#
# Upload (nova boots the raw image with the kernel and ramdisk it names):
#   openstack image create --disk-format aki --container-format aki --file vmlinuz K
#   openstack image create --disk-format ari --container-format ari --file initrd.img R
#   openstack image create --disk-format raw --container-format bare --file disk.raw \
#     --property kernel_id=<id of K> --property ramdisk_id=<id of R> GUEST
# Any flavor with 128 MiB of RAM and a root disk of 1 GB or more will do.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$here/guest-image
builder=${GUEST_IMAGE_BUILDER:-127.0.0.1:4000/kolla/base:zed}
kernel_meta=${GUEST_KERNEL_PACKAGE:-linux-image-cloud-amd64}
modules=${GUEST_MODULES:-virtio_pci virtio_net virtio_blk button evdev}

log() { echo "guest-image: $*" >&2; }

if [ $# -ne 1 ] || [ "${1#-}" != "$1" ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
mkdir -p "$1"
outdir=$(cd "$1" && pwd) # docker -v needs an absolute path
files=(vmlinuz initrd.img disk.raw)

# The recipe: every input that shapes the output. A change to any of them,
# or to the knobs above, means a rebuild.
inputs=("$here/guest-image.sh" "$src/build.sh" "$src/init" "$src/udhcpc.script"
	"$src/jsonflat.awk" "$src/power-button")
recipe=$({
	for f in "${inputs[@]}"; do
		echo "${f#"$here"/}"
		sha256sum <"$f"
	done
	echo "kernel_meta=$kernel_meta modules=$modules"
} | sha256sum | cut -d' ' -f1)

# Serialise runs on the same OUTDIR (two test workers may ask at once).
exec 9>"$outdir/.guest-image.lock"
flock 9

up_to_date() {
	local m=$outdir/manifest.json f sum list=
	[ -f "$m" ] || return 1
	grep -q "\"recipe_sha256\": \"$recipe\"" "$m" || return 1
	for f in "${files[@]}"; do
		sum=$(sed -n "s/^ *\"$f\": {\"sha256\": \"\([0-9a-f]*\)\".*/\1/p" "$m")
		[ -n "$sum" ] && [ -f "$outdir/$f" ] || return 1
		list+="$sum  $outdir/$f"$'\n'
	done
	sha256sum --check --status <<<"$list" 2>/dev/null
}
if [ "${GUEST_IMAGE_FORCE:-0}" != 1 ] && up_to_date; then
	log "$outdir is up to date (recipe ${recipe:0:12})"
	exit 0
fi

if ! docker info >/dev/null 2>&1; then
	log "Docker engine not answering: running scripts/engine-up.sh"
	bash "$here/engine-up.sh"
fi
if ! docker image inspect "$builder" >/dev/null 2>&1; then
	docker pull -q "$builder" >/dev/null || {
		log "builder image $builder is neither local nor pullable"
		log "(build it with 'kolla-ts build ^base\$ --push', or set GUEST_IMAGE_BUILDER to a Debian bookworm image)"
		exit 1
	}
fi

work=$(mktemp -d "$outdir/.build.XXXXXX")
cid=
cleanup() {
	# Only the container this run created, by its id.
	if [ -n "$cid" ]; then docker rm -f "$cid" >/dev/null 2>&1 || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Host networking: that is how a container reaches Debian's archive here.
# mknod for /dev/console in the initramfs is in Docker's default caps.
cid=$(docker create --name "kolla-ts-guest-image-$$-$RANDOM" --network host \
	-e KERNEL_META="$kernel_meta" -e GUEST_MODULES="$modules" \
	-v "$src:/src:ro" -v "$work:/out" \
	"$builder" bash /src/build.sh)
# In the background and waited for, so that a TERM reaches the trap (and
# the container is removed) at once rather than when the build ends.
docker start -a "$cid" >&2 &
wait $!
docker rm "$cid" >/dev/null
cid=

# Publish: files first, manifest last, so an interrupted run never leaves a
# manifest that vouches for files it did not write.
declare -A info
while IFS='=' read -r k v; do info[$k]=$v; done <"$work/build-info"
rm -f "$outdir/manifest.json"
for f in "${files[@]}"; do mv -f "$work/$f" "$outdir/$f"; done
{
	echo "{"
	echo "  \"recipe_sha256\": \"$recipe\","
	echo "  \"built_at\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
	echo "  \"kernel_version\": \"${info[kernel_version]}\","
	echo "  \"kernel_package\": \"${info[kernel_package]}\","
	echo "  \"kernel_package_version\": \"${info[kernel_package_version]}\","
	echo "  \"busybox_package_version\": \"${info[busybox_package_version]}\","
	echo "  \"modules\": [$(printf '"%s", ' ${info[modules]} | sed 's/, $//')],"
	echo "  \"glance\": {\"vmlinuz\": \"aki\", \"initrd.img\": \"ari\", \"disk.raw\": \"raw\"},"
	echo "  \"files\": {"
	n=0
	for f in "${files[@]}"; do
		n=$((n + 1))
		sep=,
		[ $n -lt ${#files[@]} ] || sep=
		echo "    \"$f\": {\"sha256\": \"$(sha256sum <"$outdir/$f" | cut -d' ' -f1)\", \"bytes\": $(stat -c %s "$outdir/$f")}$sep"
	done
	echo "  }"
	echo "}"
} >"$work/manifest.json"
mv -f "$work/manifest.json" "$outdir/manifest.json"
log "wrote $outdir: kernel ${info[kernel_version]}, $(du -sh "$outdir/initrd.img" | cut -f1) initramfs"
