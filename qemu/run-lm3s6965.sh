#!/usr/bin/env bash
# Boots the FTP server firmware on QEMU's lm3s6965evb (Stellaris LM3S6965:
# Cortex-M3, 256 KiB flash, 64 KiB SRAM, stellaris_enet NIC, SD card in SPI
# mode on SSI0). The single description of how the QEMU board is started:
# the board crate's cargo runner (`cargo run --release`), the boot test and
# the harness all come through here. The script ends with `exec`, so its PID
# is QEMU's: kill it to stop the board.
#
#   qemu/run-lm3s6965.sh [options] [--kernel] FIRMWARE.elf
#
# Options (environment variable in brackets):
#   --image FILE        SD-card image, raw, power-of-two size  [SD_IMAGE]
#                       default: target/sd.img next to the firmware, made by
#                       mkimage.sh (64 MiB FAT32) when missing; "none" = no card
#                       slot at all; "empty" = an empty slot (drive sd0) to
#                       insert a card into later, over QMP:
#                       {"execute":"blockdev-change-medium","arguments":
#                        {"device":"sd0","filename":"IMG","format":"raw"}}
#   --net user|tap:IF   user: QEMU user networking, ports forwarded on
#                       127.0.0.1 (no root); tap:IF: an existing TAP device IF
#                       (inside the caller's network namespace)  [QEMU_NET]
#   --ftp-port N        user mode: host port forwarded to the board's FTP
#                       port, default 2121  [FTP_PORT]
#   --pasv-ports A-B    the board's passive range, forwarded 1:1 in user mode
#                       (default 50000-50009)  [PASV_PORTS]
#   --pasv-address IP   address the board advertises in 227 replies
#                       (default 127.0.0.1 in user mode, none with tap)
#   --ip ADDR/PREFIX    the board's address (default 10.0.2.15/24 user,
#                       192.0.2.2/24 tap)
#   --gateway IP        default route (default 10.0.2.2 user, none tap)
#   --forward H:G       user mode: also forward 127.0.0.1:H to the board's port G
#                       (repeatable; e.g. the diag build's discard 9 / chargen 19)
#   --mac MAC           NIC address (default 52:54:00:12:34:56)
#   --serial stdio|FILE the console (UART0)  [QEMU_SERIAL]
#   --console-socket PATH  with --serial FILE: the console's input (and a
#                       copy of its output) on a unix socket as well, for
#                       commands such as `s` (statistics)
#   --idle-timeout S    the engine's idle timeout in seconds (default 300)
#   --data-timeout S    the engine's data timeout in seconds (default 30)
#   --qmp PATH          QMP server on a unix socket: cable pull with
#                       {"execute":"set_link","arguments":{"name":"stellaris_enet.0","up":false}}
#   --monitor PATH      HMP monitor on a unix socket (set_link stellaris_enet.0 off)
#   --qemu BINARY       qemu-system-arm to use  [QEMU]
#   --print             print the command line (one argument per line), do not run
#
# Boot parameters (address, gateway, passive address and ports, the time of
# day, timeouts) reach the firmware through QEMU's generic loader, which writes them
# into the top of SRAM before the CPU starts
# (firmware/board-lm3s6965/src/params.rs).
# Works with QEMU 7.2 (Debian bookworm) and 10.0.2 (bookworm-backports).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
qemu="${QEMU:-qemu-system-arm}"
image="${SD_IMAGE:-}"
net="${QEMU_NET:-user}"
ftp_port="${FTP_PORT:-2121}"
pasv_ports="${PASV_PORTS:-50000-50009}"
pasv_address=""
ip=""
gateway=""
mac="52:54:00:12:34:56"
serial="${QEMU_SERIAL:-stdio}"
qmp=""
console_socket=""
monitor=""
print=0
kernel=""
forwards=()
idle_timeout=0
data_timeout=0

die() { echo "run-lm3s6965.sh: $*" >&2; exit 2; }

while (($#)); do
    case "$1" in
        --image) image="$2"; shift 2 ;;
        --net) net="$2"; shift 2 ;;
        --ftp-port) ftp_port="$2"; shift 2 ;;
        --pasv-ports) pasv_ports="$2"; shift 2 ;;
        --pasv-address) pasv_address="$2"; shift 2 ;;
        --ip) ip="$2"; shift 2 ;;
        --gateway) gateway="$2"; shift 2 ;;
        --mac) mac="$2"; shift 2 ;;
        --forward) [[ "$2" =~ ^[0-9]+:[0-9]+$ ]] || die "--forward wants HOSTPORT:GUESTPORT, got $2"
                   forwards+=("$2"); shift 2 ;;
        --serial) serial="$2"; shift 2 ;;
        --console-socket) console_socket="$2"; shift 2 ;;
        --idle-timeout|--data-timeout)
            [[ "$2" =~ ^[0-9]+$ ]] && (($2 > 0 && $2 < 65536)) || die "$1 wants seconds (1-65535), got $2"
            if [[ "$1" == --idle-timeout ]]; then idle_timeout="$2"; else data_timeout="$2"; fi
            shift 2 ;;
        --qmp) qmp="$2"; shift 2 ;;
        --monitor) monitor="$2"; shift 2 ;;
        --qemu) qemu="$2"; shift 2 ;;
        --print) print=1; shift ;;
        --kernel) kernel="$2"; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//;/^set -euo/d'; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) [[ -z "$kernel" ]] || die "one firmware file only"; kernel="$1"; shift ;;
    esac
done

[[ -n "$kernel" ]] || die "no firmware ELF given (see --help)"
[[ -f "$kernel" ]] || die "firmware $kernel not found"
if ((print == 0)) && ! command -v "$qemu" >/dev/null; then
    die "$qemu not found: apt-get install qemu-system-arm (or set QEMU=/path/to/qemu-system-arm)"
fi

# --- SD card ---------------------------------------------------------------
if [[ -z "$image" ]]; then
    # Next to the firmware: target/<triple>/<profile>/board -> target/sd.img
    image="$(cd "$(dirname "$kernel")/../.." && pwd)/sd.img"
    if [[ ! -f "$image" ]]; then
        "$here/mkimage.sh" "$image" 64 >&2
    fi
fi
drive=()
if [[ "$image" == "empty" ]]; then
    drive=(-drive "if=sd,index=0,id=sd0")
elif [[ "$image" != "none" ]]; then
    [[ -f "$image" ]] || die "SD image $image not found (make one with $here/mkimage.sh IMAGE 64)"
    size=$(stat -L -c %s "$image")
    if ((size == 0 || (size & (size - 1)) != 0)); then
        die "SD image $image is $size bytes: QEMU's SD card needs a power-of-two size (e.g. truncate -s 64M, or make it with $here/mkimage.sh)"
    fi
    [[ -w "$image" ]] || die "SD image $image is not writable (QEMU refuses read-only SD cards)"
    drive=(-drive "if=sd,index=0,format=raw,file=$image")
fi

# --- network ---------------------------------------------------------------
pasv_lo="${pasv_ports%-*}"
pasv_hi="${pasv_ports#*-}"
[[ "$pasv_lo" =~ ^[0-9]+$ && "$pasv_hi" =~ ^[0-9]+$ ]] && ((pasv_lo <= pasv_hi)) \
    || die "--pasv-ports wants A-B, got $pasv_ports"
case "$net" in
    user)
        ip="${ip:-10.0.2.15/24}"
        gateway="${gateway:-10.0.2.2}"
        pasv_address="${pasv_address:-127.0.0.1}"
        nic="user,model=stellaris,mac=$mac,hostfwd=tcp:127.0.0.1:$ftp_port-:21"
        for ((p = pasv_lo; p <= pasv_hi; p++)); do
            nic+=",hostfwd=tcp:127.0.0.1:$p-:$p"
        done
        for f in "${forwards[@]}"; do
            nic+=",hostfwd=tcp:127.0.0.1:${f%%:*}-:${f##*:}"
        done
        ;;
    tap:*)
        ifname="${net#tap:}"
        [[ -n "$ifname" ]] || die "--net tap:IFNAME needs a name"
        ip="${ip:-192.0.2.2/24}"
        nic="tap,ifname=$ifname,script=no,downscript=no,model=stellaris,mac=$mac"
        ;;
    *) die "--net must be user or tap:IFNAME, got $net" ;;
esac

# Dotted quad -> the little-endian word the firmware reads (a.b.c.d = bytes in order).
word() {
    local a b c d
    [[ -z "$1" ]] && { echo 0; return; }
    IFS=. read -r a b c d <<<"$1"
    for x in "$a" "$b" "$c" "$d"; do
        [[ "$x" =~ ^[0-9]+$ ]] && ((x < 256)) || die "bad IPv4 address $1"
    done
    printf '0x%08x' $(( (d << 24) | (c << 16) | (b << 8) | a ))
}
prefix="${ip#*/}"
[[ "$prefix" != "$ip" ]] || prefix=24
base=$((0x2000ffc0))
params=(
    0x42505446 # "FTPB"
    "$(word "${ip%/*}")"
    "$(word "$gateway")"
    "$(word "$pasv_address")"
    "$(printf '0x%08x' $(( (21 << 16) | prefix )))"
    "$(printf '0x%08x' $(( (pasv_hi << 16) | pasv_lo )))"
    "$(printf '0x%08x' "$(date +%s)")" # the board has no clock of its own
    "$(printf '0x%08x' $(( (data_timeout << 16) | idle_timeout )))"
)
loaders=()
for i in "${!params[@]}"; do
    loaders+=(-device "loader,addr=$(printf '0x%08x' $((base + 4 * i))),data=${params[$i]},data-len=4")
done

# --- console and monitor ---------------------------------------------------
if [[ -n "$console_socket" ]]; then
    [[ "$serial" != stdio ]] || die "--console-socket needs --serial FILE (the output's copy)"
    console=(-chardev "socket,id=console,path=$console_socket,server=on,wait=off,logfile=$serial"
             -serial chardev:console)
elif [[ "$serial" == stdio ]]; then
    console=(-serial stdio)
else
    console=(-serial "file:$serial")
fi
mon=(-monitor none)
[[ -z "$monitor" ]] || mon=(-monitor "unix:$monitor,server=on,wait=off")
[[ -z "$qmp" ]] || mon+=(-qmp "unix:$qmp,server=on,wait=off")

cmd=(
    "$qemu" -machine lm3s6965evb -cpu cortex-m3
    -display none -nodefaults -no-user-config
    "${console[@]}" "${mon[@]}"
    -nic "$nic"
    "${drive[@]}"
    "${loaders[@]}"
    -kernel "$kernel"
)
# A QEMU unpacked outside /usr (e.g. a second version for testing) must not
# load the system QEMU's modules.
qemu_path="$(command -v "$qemu" || echo "$qemu")"
moddir="$(dirname "$qemu_path")/../lib/x86_64-linux-gnu/qemu"
if [[ "$qemu_path" != /usr/bin/* && -z "${QEMU_MODULE_DIR:-}" && -d "$moddir" ]]; then
    export QEMU_MODULE_DIR="$moddir"
fi

if ((print)); then
    printf '%s\n' "${cmd[@]}"
    exit 0
fi
echo "run-lm3s6965.sh: $($qemu --version | head -1); SD ${image}; net $net$([[ $net == user ]] && echo " (ftp 127.0.0.1:$ftp_port, passive $pasv_lo-$pasv_hi)")" >&2
exec "${cmd[@]}"
