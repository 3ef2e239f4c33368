#!/bin/busybox sh
# The guest of `cargo xtask bench-cpus`: tracer's kernel memory and its
# userspace CPU per refresh on this machine's CPU count, under a steady load.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
echo "@@possible $(cat /sys/devices/system/cpu/possible)"
# Load for the whole run: a process ping-pong on the last CPU.
last=$(($(nproc) - 1))
/tracer ping-pong --kind processes --round-trips 1000000000 --cpu $last >/dev/null 2>&1 &
load=$!
for mode in default per-process; do
    flags=""
    [ "$mode" = per-process ] && flags="--per-process"
    /tracer --self-stats --json -i 1s -d REFRESHESs $flags >/tmp/out 2>/tmp/err
    while read -r line; do echo "@@report-$mode $line"; done </tmp/out
    echo "@@stderr-$mode $(head -c 2000 /tmp/err | tr '\n' ' ')"
done
kill $load
echo "@@done"
reboot -f
