#!/usr/bin/env bash
# Makes an SD-card image for the lm3s6965evb board: a FAT32 volume in an MBR
# partition (type 0x0C, starting at 1 MiB), or with --bare a FAT32 volume
# without a partition table (as `mkfs.fat` alone makes it).
#
#   qemu/mkimage.sh [--bare] IMAGE [SIZE_MIB]     (default 64 MiB)
#
# QEMU's SD model wants a power-of-two size; images of 2 GiB or less are
# standard-capacity cards (byte addressing), larger ones SDHC.
# Needs: mkfs.fat (dosfstools); reading back: mtools (mdir -i IMAGE@@1M ::).
set -euo pipefail

bare=0
if [[ "${1:-}" == "--bare" ]]; then bare=1; shift; fi
img="${1:?usage: mkimage.sh [--bare] IMAGE [SIZE_MIB]}"
mib="${2:-64}"

if ! [[ "$mib" =~ ^[0-9]+$ ]] || (( mib < 64 )) || (( (mib & (mib - 1)) != 0 )); then
    echo "mkimage.sh: SIZE_MIB must be a power of two, at least 64 (QEMU's SD model and FAT32 need it); got '$mib'" >&2
    exit 2
fi
mkfs=$(command -v mkfs.fat || command -v /sbin/mkfs.fat || command -v /usr/sbin/mkfs.fat || true)
if [[ -z "$mkfs" ]]; then
    echo "mkimage.sh: mkfs.fat not found (apt-get install dosfstools)" >&2
    exit 2
fi

rm -f "$img"
truncate -s "${mib}M" "$img"
total=$(( mib * 2048 ))
if (( bare )); then
    "$mkfs" -F 32 -s 1 -n FTPD "$img" >/dev/null
else
    start=2048
    count=$(( total - start ))
    le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(( $1 & 255 )) $(( ($1 >> 8) & 255 )) $(( ($1 >> 16) & 255 )) $(( ($1 >> 24) & 255 )); }
    # Partition entry 1: not bootable, CHS fields saturated (LBA only), type 0x0C.
    entry="\\x00\\xfe\\xff\\xff\\x0c\\xfe\\xff\\xff$(le32 $start)$(le32 $count)"
    printf "$entry" | dd of="$img" bs=1 seek=446 conv=notrunc status=none
    printf '\x55\xaa' | dd of="$img" bs=1 seek=510 conv=notrunc status=none
    "$mkfs" -F 32 -s 1 -n FTPD --offset "$start" "$img" $(( count / 2 )) >/dev/null
fi
echo "$img: ${mib} MiB FAT32$( (( bare )) && echo ' (no partition table)' || echo ', MBR partition at 1 MiB')"
