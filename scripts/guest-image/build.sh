#!/bin/bash
# Runs inside the throwaway container started by scripts/guest-image.sh
# (a Debian bookworm root with apt pointing at the Debian archive).
# In:  /src (this directory, read-only), KERNEL_META, GUEST_MODULES.
# Out: /out/vmlinuz, /out/initrd.img, /out/disk.raw, /out/build-info.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

log() { echo "guest-image (container): $*" >&2; }

kernel_meta=${KERNEL_META:-linux-image-cloud-amd64}
read -r -a want <<<"${GUEST_MODULES:-virtio_pci virtio_net virtio_blk button evdev}"

# --error-on=any: an unreachable archive must stop here with apt's own
# message, not later as "no packages found".
apt-get update -qq --error-on=any || {
	log "apt-get update failed: is the Debian archive reachable from this host?"
	exit 1
}
# The metapackage only names the versioned kernel package. Download that
# and unpack it with dpkg-deb instead of installing it: installing would run
# its postinst (depmod, initramfs-tools) and pull packages we never use.
if [[ $kernel_meta =~ ^linux-image-[0-9] ]]; then
	kpkg=$kernel_meta # already a versioned package
else
	kpkg=$(apt-cache depends "$kernel_meta" |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ && !n++ { print $2 }')
fi
[ -n "$kpkg" ] || { log "$kernel_meta names no linux-image package"; exit 1; }
dl=/tmp/dl
mkdir -p "$dl"
chown _apt "$dl" # apt-get download drops to _apt and must write here
cd "$dl"
apt-get download -qq "$kpkg" busybox-static
kdeb=$(ls "$dl"/"$kpkg"_*.deb)
bdeb=$(ls "$dl"/busybox-static_*.deb)
dpkg-deb -x "$kdeb" /tmp/k
dpkg-deb -x "$bdeb" /tmp/bb
bb=/tmp/bb/bin/busybox

kver=$(ls /tmp/k/lib/modules)
[ "$(echo "$kver" | wc -w)" = 1 ] || { log "expected one module tree, got: $kver"; exit 1; }
mods=/tmp/k/lib/modules/$kver
log "kernel $kpkg $(dpkg-deb -f "$kdeb" Version) ($kver), busybox $(dpkg-deb -f "$bdeb" Version)"

# busybox insmod takes plain .ko only. Bookworm ships them uncompressed; a
# kernel with compressed modules gets them unpacked before depmod, so that
# modules.dep names the plain files.
if [ -n "$(find "$mods" -name '*.ko.xz' -print -quit)" ]; then
	log "unpacking .ko.xz modules"
	find "$mods" -name '*.ko.xz' -exec "$bb" unxz {} +
fi
if [ -n "$(find "$mods" \( -name '*.ko.zst' -o -name '*.ko.gz' \) -print -quit)" ]; then
	log "modules compressed with zstd/gzip are not handled"
	exit 1
fi
# The package ships no modules.dep (its postinst would make it).
"$bb" depmod -b /tmp/k "$kver"

# Resolve the wanted modules through modules.dep, dependencies first.
declare -A dep_of path_of seen
while IFS= read -r line; do
	file=${line%%:*}
	name=${file##*/}
	name=${name%.ko}
	name=${name//-/_}
	path_of[$name]=$file
	dep_of[$name]=${line#*:}
done <"$mods/modules.dep"
order=()
add() {
	local m=${1//-/_} d dn
	[ -z "${seen[$m]:-}" ] || return 0
	seen[$m]=1
	if [ -z "${path_of[$m]:-}" ]; then
		if grep -q "/$m\.ko\$" "$mods/modules.builtin"; then
			log "$m is built into the kernel"
			return 0
		fi
		log "module $m not found"
		exit 1
	fi
	for d in ${dep_of[$m]}; do
		dn=${d##*/}
		add "${dn%.ko}"
	done
	order+=("$m")
}
for m in "${want[@]}"; do add "$m"; done
log "modules in load order: ${order[*]}"

# The initramfs: busybox with a link per applet, the modules, our scripts.
r=/tmp/root
mkdir -p "$r"/{bin,dev,etc/acpi/PWRF,lib/modules,proc,run,srv/www,sys,tmp,usr}
ln -s bin "$r/sbin"
ln -s ../bin "$r/usr/bin"
ln -s ../bin "$r/usr/sbin"
cp "$bb" "$r/bin/busybox"
for a in $("$bb" --list); do
	[ "$a" = busybox ] || ln -s busybox "$r/bin/$a"
done
for m in "${order[@]}"; do
	cp "$mods/${path_of[$m]}" "$r/lib/modules/$m.ko"
	echo "$m"
done >"$r/etc/modules.order"
install -m 0755 /src/init "$r/init"
install -m 0755 /src/udhcpc.script "$r/etc/udhcpc.script"
install -m 0755 /src/power-button "$r/etc/acpi/PWRF/00000080"
install -m 0644 /src/jsonflat.awk "$r/lib/jsonflat.awk"
echo "root:x:0:0:root:/root:/bin/sh" >"$r/etc/passwd"
echo "root:x:0:" >"$r/etc/group"
echo "$kver" >"$r/etc/kolla-ts-guest-kernel"
# The kernel opens /dev/console for /init before anything is mounted.
mknod -m 0600 "$r/dev/console" c 5 1
mknod -m 0666 "$r/dev/null" c 1 3
chmod 1777 "$r/tmp"

# gzip'd newc cpio, the format the kernel unpacks into its rootfs.
# (busybox cpio reports its block count on stderr; keep that for failures.)
(cd "$r" && find . -mindepth 1 | sort |
	"$bb" cpio -o -H newc -R 0:0 2>/tmp/cpio.err || { cat /tmp/cpio.err >&2; exit 1; }) |
	gzip -9 -n >/out/initrd.img
cp "/tmp/k/boot/vmlinuz-$kver" /out/vmlinuz
# nova wants a root disk to create from the image; /init never reads it.
head -c 1048576 /dev/zero >/out/disk.raw

cat >/out/build-info <<EOF
kernel_version=$kver
kernel_package=$kpkg
kernel_package_version=$(dpkg-deb -f "$kdeb" Version)
busybox_package_version=$(dpkg-deb -f "$bdeb" Version)
modules=${order[*]}
EOF
