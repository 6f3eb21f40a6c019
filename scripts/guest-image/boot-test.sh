#!/usr/bin/env bash
# Boot the guest built by scripts/guest-image.sh under qemu (TCG: /dev/kvm
# is not usable here) and check what a cloud test will rely on.
#
#   scripts/guest-image/boot-test.sh OUTDIR [user|cloudlike]
#
# user (default): qemu user-mode networking on 198.18.250.0/24 (never
#   qemu's default subnet, a private range) with restrict=on, so nothing the guest sends
#   leaves qemu: DHCP answers, the metadata fetch must time out and the boot
#   go on; the page must answer on http://127.0.0.1:$BOOT_TEST_PORT/ (18080).
# cloudlike: what neutron and nova give the guest, inside a network
#   namespace of its own (container with --network none): a tap on
#   198.18.251.0/24, dnsmasq with neutron's options (MTU 1450, classless
#   static routes with the metadata route), a metadata service on
#   169.254.169.254 that starts late like a slow metadata proxy
#   (BOOT_TEST_METADATA_DELAY, 20 s), meta_data.json with a public key, and
#   a user-data script that pings the gateway.
#
# Both boot with nova's kernel command line, power the guest off with the
# ACPI button at the end (nova stop) and remove only the containers they
# created, by id. qemu comes from the nova-libvirt image (BOOT_TEST_IMAGE),
# dnsmasq from the neutron-dhcp-agent image (BOOT_TEST_DHCP_IMAGE).
set -euo pipefail

outdir=$(cd "${1:?usage: $0 OUTDIR [user|cloudlike]}" && pwd)
mode=${2:-user}
qemu_image=${BOOT_TEST_IMAGE:-127.0.0.1:4000/kolla/nova-libvirt:zed}
dhcp_image=${BOOT_TEST_DHCP_IMAGE:-127.0.0.1:4000/kolla/neutron-dhcp-agent:zed}
port=${BOOT_TEST_PORT:-18080}
timeout_s=${BOOT_TEST_TIMEOUT:-300}
uuid=5f0c2d1e-8a43-4b7e-9c61-3d2a7b9e4f10
mac=fa:16:3e:12:34:56
cmdline="root=/dev/vda console=tty0 console=ttyS0 console=hvc0" # nova's

log() { echo "boot-test: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

run=$(mktemp -d /tmp/guest-boot-test.XXXXXX)
cids=()
cleanup() {
	local c
	for c in "${cids[@]}"; do
		docker logs "$c" >"$run/container-${c:0:12}.log" 2>&1 || true
		docker rm -f "$c" >/dev/null 2>&1 || true
	done
	log "console and container logs kept in $run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

qemu_args=(-accel tcg -m 256 -smp 1 -nographic -no-reboot
	-kernel /img/vmlinuz -initrd /img/initrd.img -append "$cmdline"
	-drive file=/img/disk.raw,format=raw,if=virtio,readonly=on
	-uuid "$uuid"
	-serial file:/run-out/console.log -monitor unix:/run-out/monitor.sock,server,nowait)

monitor() { # send one monitor command through the socket in $run
	python3 - "$run/monitor.sock" "$1" <<'EOF'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
time.sleep(0.3)
s.sendall(sys.argv[2].encode() + b"\n")
time.sleep(0.5)
s.close()
EOF
}

wait_console() { # PATTERN SECONDS: wait for a console line
	local end=$((SECONDS + $2))
	while ! grep -aq "$1" "$run/console.log" 2>/dev/null; do
		[ $SECONDS -lt $end ] || return 1
		if grep -aq 'Kernel panic' "$run/console.log" 2>/dev/null; then return 1; fi
		sleep 1
	done
}

case $mode in
user)
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then fail "127.0.0.1:$port is taken"; fi
	t0=$SECONDS
	cids+=("$(docker run -d --network host --entrypoint qemu-system-x86_64 \
		-v "$outdir:/img:ro" -v "$run:/run-out" "$qemu_image" "${qemu_args[@]}" \
		-netdev "user,id=n0,net=198.18.250.0/24,restrict=on,hostfwd=tcp:127.0.0.1:$port-:80" \
		-device "virtio-net-pci,netdev=n0,mac=$mac")")
	page_cmd=(curl -sS -m 10 "http://127.0.0.1:$port/")
	;;
cloudlike)
	ip=198.18.251.12
	gw=198.18.251.1
	md=$run/md
	mkdir -p "$md/openstack/latest" "$md/latest/meta-data/public-keys/0"
	key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKoltsTsGuestBootTestKeyOnlyNotUsedAnywhere0 boot-test@kolla-ts"
	# Laid out like nova's: one line; "name" also inside "keys" and "meta".
	printf '%s' "{\"uuid\": \"$uuid\", \"meta\": {\"name\": \"not-this-one\"}," \
		"\"keys\": [{\"name\": \"bt\", \"type\": \"ssh\", \"data\": \"$key\\n\"}]," \
		"\"public_keys\": {\"bt\": \"$key\\n\"}, \"hostname\": \"guest-1.novalocal\"," \
		"\"name\": \"guest-1\", \"launch_index\": 0, \"availability_zone\": \"nova\"," \
		"\"project_id\": \"0123456789abcdef0123456789abcdef\", \"devices\": [], \"dedicated_cpus\": []}" \
		>"$md/openstack/latest/meta_data.json"
	echo "$key" >"$md/latest/meta-data/public-keys/0/openssh-key"
	cat >"$md/openstack/latest/user_data" <<EOF
#!/bin/sh
echo "hello from user-data on \$(hostname)"
ping -c 2 -W 3 $gw && echo "gateway $gw answers"
EOF
	t0=$SECONDS
	c1=$(docker run -d --network none --cap-add NET_ADMIN --device /dev/net/tun \
		-v "$outdir:/img:ro" -v "$run:/run-out" --entrypoint sleep "$qemu_image" infinity)
	cids+=("$c1")
	docker exec "$c1" sh -ec "
		ip link set lo up
		ip tuntap add tap0 mode tap
		ip link set tap0 mtu 1450 up
		ip addr add $gw/24 dev tap0
		ip addr add 169.254.169.254/32 dev lo"
	# neutron's dnsmasq options, in short.
	cids+=("$(docker run -d --user root --network "container:$c1" --cap-add NET_ADMIN \
		--entrypoint dnsmasq "$dhcp_image" --keep-in-foreground --no-hosts \
		--no-resolv --port=0 --user=root --interface=tap0 --bind-interfaces \
		--dhcp-authoritative --leasefile-ro --log-dhcp --log-facility=- \
		--dhcp-range=198.18.251.0,static,255.255.255.0,86400s \
		--dhcp-host="$mac,$ip,guest-1" \
		--dhcp-option-force=option:mtu,1450 \
		--dhcp-option=option:router,$gw \
		--dhcp-option=option:classless-static-route,169.254.169.254/32,$gw,0.0.0.0/0,$gw)")
	# The metadata service comes up late (20 s), like a slow metadata proxy.
	docker exec -d "$c1" sh -c "sleep ${BOOT_TEST_METADATA_DELAY:-20}; cd /run-out/md && exec python3 -m http.server --bind 169.254.169.254 80 >/run-out/metadata.log 2>&1"
	docker exec -d "$c1" qemu-system-x86_64 "${qemu_args[@]}" \
		-netdev tap,id=n0,ifname=tap0,script=no,downscript=no \
		-device "virtio-net-pci,netdev=n0,mac=$mac"
	page_cmd=(docker exec "$c1" curl -sS -m 10 "http://$ip/")
	;;
*) fail "unknown mode $mode" ;;
esac

log "mode $mode, qemu (TCG) started, waiting up to ${timeout_s} s for 'ready'"
wait_console 'kolla-ts-guest: ready' "$timeout_s" || {
	tail -n 30 "$run/console.log" >&2 || true
	fail "no 'kolla-ts-guest: ready' on the console"
}
wall=$((SECONDS - t0))
grep -a 'kolla-ts-guest:' "$run/console.log" >&2
log "ready ${wall} s after qemu start (wall clock, incl. container start)"

grep -aq 'kolla-ts-guest: lease ' "$run/console.log" || fail "no lease line"
page=$("${page_cmd[@]}") || fail "the page did not answer"
echo "$page" | grep -q "uuid=$uuid" || fail "the page lacks the uuid: $page"
log "page: $(echo "$page" | grep -E 'uuid=|name=' | tr -d '\n')"
if [ "$mode" = cloudlike ]; then
	for want in "lease $ip/24 router $gw mtu 1450" \
		"metadata uuid=$uuid name=guest-1 hostname=guest-1.novalocal" \
		"public-key ssh-ed25519 boot-test@kolla-ts" \
		"user-data: hello from user-data on guest-1" \
		"user-data: gateway $gw answers"; do
		grep -aqF "kolla-ts-guest: $want" "$run/console.log" || fail "missing console line: $want"
	done
	echo "$page" | grep -q 'name=guest-1' || fail "the page lacks the name"
fi

monitor system_powerdown
wait_console 'reboot: Power down' 30 || fail "the guest did not power off on the ACPI button"
log "powered off on the ACPI button"
! grep -aq 'Kernel panic' "$run/console.log" || fail "kernel panic"
log "PASS ($mode)"
