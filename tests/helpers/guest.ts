/**
 * User data (sh, for scripts/guest-image.sh's guest) that waits up to
 * `waitSeconds` for an attached volume (/dev/vdb), writes 4 MiB of random
 * bytes to it, drops the page cache, reads them back and prints on the
 * console whether they match, with their md5 (compare it with the volume's
 * RBD export).
 */
export function volumeCheckScript(waitSeconds: number): string {
  return [
    `for i in $(seq ${waitSeconds}); do [ -b /dev/vdb ] && break; sleep 1; done`,
    '[ -b /dev/vdb ] || { echo "no /dev/vdb"; exit 1; }',
    'echo "vdb appeared: $(cat /sys/block/vdb/size) sectors"',
    'dd if=/dev/urandom of=/tmp/pattern bs=1048576 count=4 2>/dev/null',
    'dd if=/tmp/pattern of=/dev/vdb bs=1048576 count=4 conv=fsync 2>/dev/null',
    'echo 3 > /proc/sys/vm/drop_caches',
    'dd if=/dev/vdb of=/tmp/back bs=1048576 count=4 2>/dev/null',
    'if cmp -s /tmp/pattern /tmp/back; then echo "vdb wrote and read back md5 $(md5sum < /tmp/pattern | cut -c1-32)"; else echo "vdb read back differs"; fi',
    '',
  ].join('\n');
}

/** The console line volumeCheckScript ends with; group 1 holds the md5 when the bytes matched. */
export const VOLUME_CHECK_RESULT = /vdb wrote and read back md5 ([0-9a-f]{32})|vdb read back differs|no \/dev\/vdb/;
