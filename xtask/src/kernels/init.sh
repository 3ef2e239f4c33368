#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
echo "@@release $(uname -r)"
/tracer check --json --round-trips ROUND_TRIPS >/tmp/out 2>/tmp/err
echo "@@with-btf $(cat /tmp/out)"
echo "@@with-btf-stderr $(head -c 2000 /tmp/err | tr '\n' ' ')"
# --cgroup: a process ping-pong in a child of the cgroup named is kept, the
# same ping-pong outside it is left out (cgroup v2 ancestors: the layout
# changed in 5.18).
mkdir -p /sys/fs/cgroup
mount -t cgroup2 none /sys/fs/cgroup
mkdir -p /sys/fs/cgroup/traced/sub
# One JSON line per second: the first one says tracing has started.
/tracer --cgroup /sys/fs/cgroup/traced --json -i 1s >/tmp/cg 2>/tmp/cg-err &
tracer_pid=$!
i=0
while [ ! -s /tmp/cg ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
sh -c 'echo $$ > /sys/fs/cgroup/traced/sub/cgroup.procs; exec /tracer ping-pong --kind processes --round-trips CGROUP_ROUND_TRIPS --cpu 1' >/tmp/in
/tracer ping-pong --kind processes --round-trips CGROUP_ROUND_TRIPS --cpu 1 >/tmp/out
kill -INT $tracer_pid
wait $tracer_pid
while read -r line; do echo "@@cgroup-report $line"; done </tmp/cg
echo "@@cgroup-stderr $(head -c 2000 /tmp/cg-err | tr '\n' ' ')"
echo "@@cgroup-in $(cat /tmp/in)"
echo "@@cgroup-out $(cat /tmp/out)"
# --per-process: short-lived processes, retired from the kernel's table when
# freed, are all in the report (tp_btf here, the tracepoint probe below).
/tracer --per-process -m none --json --top 1000 -- /tracer churn --threads 0 --processes PER_PROCESS_CHILDREN >/tmp/pp 2>/tmp/pp-err
while read -r line; do echo "@@per-process-btf $line"; done </tmp/pp
echo "@@per-process-btf-stderr $(head -c 2000 /tmp/pp-err | tr '\n' ' ')"
# No BTF: hide it, as on a kernel built without CONFIG_DEBUG_INFO_BTF.
mount -t tmpfs none /sys/kernel/btf
/tracer -d 1s --json >/tmp/out 2>/tmp/err
echo "@@no-btf-message $(head -n 1 /tmp/err)"
/tracer --per-process -m none --json --top 1000 -- /tracer churn --threads 0 --processes PER_PROCESS_CHILDREN >/tmp/pp 2>/tmp/pp-err
while read -r line; do echo "@@per-process-no-btf $line"; done </tmp/pp
echo "@@per-process-no-btf-stderr $(head -c 2000 /tmp/pp-err | tr '\n' ' ')"
/tracer check --json --round-trips ROUND_TRIPS >/tmp/out 2>/tmp/err
echo "@@without-btf $(cat /tmp/out)"
echo "@@without-btf-stderr $(head -c 2000 /tmp/err | tr '\n' ' ')"
echo "@@done"
reboot -f
