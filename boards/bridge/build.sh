#!/bin/sh
# Rebuild the bridge sketch for every board and copy the hex files next to the sketch
# (boards/bridge/<board>.hex, committed). With --check, build into a scratch copy and compare
# byte-for-byte with the committed files instead (exit 1 on any difference).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
boards="uno nano mega2560"
if ! command -v avr-gcc >/dev/null 2>&1; then
  echo "avr-gcc not found: apt-get install -y gcc-avr avr-libc arduino-core-avr arduino-mk" >&2
  exit 2
fi
mode=${1:-build}
work=$here
if [ "$mode" = "--check" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cp "$here/bridge.ino" "$here/Makefile" "$work/"
fi
status=0
# r3 … r8 belong to the UART's receive ISR (bridge.ino, -ffixed in the Makefile): in the linked
# program only the ISR and the start-up code that points r6:r7 at the ring may touch them, and the
# main loop may read r6:r7 (one movw). Library code built without the reservation would break it.
# (Flash tables disassemble as noise: those under the vector table's label or their own are skipped.)
reserved_registers() {
  avr-objdump -d "$1" | perl -ne '
    if (/^[0-9a-f]+ <(.*)>:/) { $f = $1; next }
    next unless /\t(?:.*\W)?r[3-8]\b/;
    next if $f =~ /^(__vector_18|__vector_25|_ZL17captureResetFlagsv|__vectors|__trampolines_\w+|\w+_PGM|_ZL8crcTable[\w.]*)$/;
    next if /\tmovw\tr\d+, r6\s*$/;
    print "  $f: $_"; $bad = 1;
    END { exit($bad ? 1 : 0) }'
}
# The board definition's pins: CS, and the SD card's CS (null: none, -1 to the sketch).
pin() {
  node -e 'const p = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).pins; const v = p[process.argv[2]]; process.stdout.write(String(v ?? -1))' "$here/../$1.json" "$2"
}
for board in $boards; do
  cs=$(pin "$board" cs)
  sd=$(pin "$board" sdCs)
  make -s -C "$work" BOARD="$board" BRIDGE_CS_PIN="$cs" BRIDGE_SD_CS_PIN="$sd" >"$work/make-$board.log" 2>&1 || { cat "$work/make-$board.log" >&2; exit 1; }
  built="$work/build/$board-1000000-cs$cs-sd$sd/bridge.hex"
  if ! reserved_registers "${built%.hex}.elf"; then echo "$board: code outside the receive ISR uses r3 … r8 (above)" >&2; exit 1; fi
  if [ "$mode" = "--check" ]; then
    if cmp -s "$built" "$here/$board.hex"; then echo "$board: identical"; else echo "$board: DIFFERS"; status=1; fi
  else
    cp "$built" "$here/$board.hex"
    echo "$board: $(wc -c <"$here/$board.hex") bytes"
  fi
done
[ "$mode" = "--check" ] || rm -f "$work"/make-*.log
exit $status
