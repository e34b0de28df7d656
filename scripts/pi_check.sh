#!/usr/bin/env bash
# pi_check.sh: does the edge install (`pip install .`, no extras, no TensorFlow) work on a Raspberry Pi 4/5
# with Raspberry Pi OS Bookworm 64-bit, and does `digit-infer` read the samples there as it does here?
#
# It emulates the Pi with a Debian bookworm arm64 root filesystem (what Raspberry Pi OS Bookworm is built on:
# glibc 2.36, Python 3.11) run under qemu-user-static, then:
#   1. builds the rootfs at $PI_ROOT (default /tmp/pi-root) with a venv /opt/edge, or reuses it;
#   2. copies the current checkout (tracked + untracked, non-ignored files; no .venv, no runs/) to /opt/src;
#   3. `pip install /opt/src` with the rootfs venv's own pip (Bookworm's 23.0.1), checks TensorFlow is absent,
#      prints the installed versions, their wheel tags and the site-packages size;
#   4. runs `digit-infer /opt/src/samples --format jsonl` with the packaged model in the chroot and the same on
#      this (x86-64) machine, and compares digits, status and confidences (within 0.01) file by file;
#   5. prints the platform and timings, and a summary block to paste into a README.
# Exit status: 0 all match; 1 a mismatch or a failed step; 2 bad usage or missing prerequisites.
#
# Usage: sudo bash scripts/pi_check.sh [--rebuild] [--pi5] [--setup-only]
#   --rebuild     delete the rootfs and build it again (~6 min for debootstrap, several for the wheels)
#   --pi5         emulate a Pi 5's Cortex-A76 (default: a Pi 4's Cortex-A72)
#   --setup-only  build/reuse the rootfs and install the package, but skip the inference comparison
# Emulation details: qemu runs with QEMU_CPU=cortex-a72 (or -a76), so the instruction set, and with it the
# XNNPACK kernels LiteRT picks, is the Pi's and not qemu's default "max" CPU (SVE, i8mm, ...; with it
# qemu 7.2 gives different int8 outputs). qemu 7.2 passes this machine's x86 /proc/cpuinfo through, on which
# LiteRT's cpuinfo library crashes (SIGSEGV creating the Interpreter), so a Pi-like /proc/cpuinfo is
# bind-mounted over it in the chroot. Neither is needed on a real Pi.
# Environment: PI_ROOT (rootfs folder, default /tmp/pi-root), PI_MIRROR (default http://deb.debian.org/debian),
#   PI_SAMPLES (sample folder relative to the checkout, default samples), PI_TOL (confidence tolerance, 0.01),
#   HOST_PYTHON (interpreter for the x86 run, default .venv/bin/python of the checkout).
# Idempotent: a second run reuses the rootfs and the pip cache in it; /proc, /sys and /dev/shm of the chroot
# are unmounted on exit, the rootfs is kept.
set -euo pipefail

SCRIPT_STARTED=$(date +%s.%N)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
R=${PI_ROOT:-/tmp/pi-root}
MIRROR=${PI_MIRROR:-http://deb.debian.org/debian}
SAMPLES_REL=${PI_SAMPLES:-samples}
TOL=${PI_TOL:-0.01}
HOST_PYTHON=${HOST_PYTHON:-$REPO/.venv/bin/python}
MODEL_REL=edge_runtime/models/digitkit_int8.tflite
WORK=/tmp/pi-check            # logs and outputs of the last run
LOCK=/tmp/pi-root.lock
REBUILD=0
SETUP_ONLY=0
PI_MODEL=4

say() { printf '\n=== %s\n' "$*"; }
die() { local code=$1; shift; printf 'pi_check: error: %s\n' "$*" >&2; exit "$code"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
now() { date +%s.%N; }

for arg in "$@"; do
  case "$arg" in
    --rebuild) REBUILD=1 ;;
    --setup-only) SETUP_ONLY=1 ;;
    --pi5) PI_MODEL=5 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die 2 "unknown argument '$arg' (use --rebuild, --pi5, --setup-only or --help)" ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die 2 "must run as root (it uses debootstrap, mount and chroot): sudo bash $0 $*"
case "$R" in /|/tmp|/tmp/|"") die 2 "PI_ROOT='$R' is not a safe rootfs folder" ;; esac

# ---------------------------------------------------------------------------------------------- host tools
missing=()
command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v git >/dev/null || missing+=(git)
command -v flock >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing missing host packages: ${missing[*]}"
  command -v apt-get >/dev/null || die 2 "need ${missing[*]} and there is no apt-get to install them"
  apt-get update -qq || die 2 "apt-get update failed (network or mirror?)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
    || die 2 "apt-get install ${missing[*]} failed"
fi
CHROOT=$(command -v chroot) || die 2 "no chroot command (coreutils)"
[ -x "$HOST_PYTHON" ] || HOST_PYTHON=$(command -v python3) || die 2 "no Python on the host for the x86 run"

mkdir -p "$WORK"
exec 9>"$LOCK"
flock -w 3600 9 || die 1 "another pi_check.sh holds $LOCK for over an hour"

# ------------------------------------------------------------------------------------ mounts and clean-up
chroot_mounts() { awk -v r="$R" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts | sort -r; }
unmount_all() {
  local m
  for m in $(chroot_mounts); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
}
cleanup() {
  local code=$?
  unmount_all
  local left; left=$(chroot_mounts)
  [ -z "$left" ] || printf 'pi_check: warning: still mounted: %s\n' "$left" >&2
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$PI_MODEL" = 5 ]; then
  QEMU_CPU_MODEL=cortex-a76 CPU_PART=0xd0b CPU_VARIANT=0x4 CPU_REVISION=1 PI_NAME="Raspberry Pi 5 Model B Rev 1.0"
  CPU_FEATURES="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"
else
  QEMU_CPU_MODEL=cortex-a72 CPU_PART=0xd08 CPU_VARIANT=0x0 CPU_REVISION=3 PI_NAME="Raspberry Pi 4 Model B Rev 1.4"
  CPU_FEATURES="fp asimd evtstrm crc32 cpuid"
fi

# A Pi's /proc/cpuinfo, one entry per CPU that /sys lists here (LiteRT's cpuinfo checks the two agree).
write_cpuinfo() {
  local present n i
  present=$(cat /sys/devices/system/cpu/present 2>/dev/null || echo 0)
  n=$(awk -F, '{ n = 0; for (i = 1; i <= NF; i++) { split($i, r, "-"); n += (r[2] == "" ? 1 : r[2] - r[1] + 1) } print n }' <<< "$present")
  {
    for ((i = 0; i < n; i++)); do
      printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\n' "$i" "$CPU_FEATURES"
      printf 'CPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %s\n\n' "$CPU_VARIANT" "$CPU_PART" "$CPU_REVISION"
    done
    printf 'Revision\t: %s\nModel\t\t: %s\n' "$([ "$PI_MODEL" = 5 ] && echo d04170 || echo c03114)" "$PI_NAME"
  } > "$WORK/cpuinfo"
}

mount_chroot() {
  mountpoint -q "$R/proc" || mount -t proc proc "$R/proc"          # LiteRT's cpuinfo reads /proc and /sys
  write_cpuinfo
  mountpoint -q "$R/proc/cpuinfo" || mount --bind "$WORK/cpuinfo" "$R/proc/cpuinfo"
  mountpoint -q "$R/sys" || mount --bind /sys "$R/sys"
  mkdir -p "$R/dev/shm"                                            # multiprocessing's semaphores (--workers)
  mountpoint -q "$R/dev/shm" || mount -t tmpfs -o mode=1777,size=256m shm "$R/dev/shm"
}

# A clean environment: none of this machine's PIP_* settings (find-links, constraints) leak into the "Pi".
in_chroot() {
  local proxies=() v
  for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [ -n "${!v:-}" ] && proxies+=("$v=${!v}")
  done
  env -i PATH=/opt/edge/bin:/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb QEMU_CPU="$QEMU_CPU_MODEL" \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 \
    "${proxies[@]}" "$CHROOT" "$R" "$@"
}

# ------------------------------------------------------------------------------------- qemu binfmt handler
setup_binfmt() {
  mountpoint -q /proc/sys/fs/binfmt_misc || mount binfmt_misc -t binfmt_misc /proc/sys/fs/binfmt_misc \
    || die 2 "cannot mount binfmt_misc (a container without privileges?)"
  local entry=/proc/sys/fs/binfmt_misc/qemu-aarch64
  if [ ! -e "$entry" ]; then
    local conf=/usr/lib/binfmt.d/qemu-aarch64.conf
    [ -f "$conf" ] || die 2 "$conf missing: reinstall qemu-user-static"
    cat "$conf" > /proc/sys/fs/binfmt_misc/register || die 2 "cannot register the qemu-aarch64 binfmt handler"
  fi
  [ "$(head -n1 "$entry")" = enabled ] || echo 1 > "$entry"
}
# Without the F flag the kernel looks the interpreter up inside the chroot: put it there.
place_interpreter() {
  local entry=/proc/sys/fs/binfmt_misc/qemu-aarch64 interp
  interp=$(awk '$1 == "interpreter" { print $2 }' "$entry")
  if ! grep -q '^flags:.*F' "$entry" && [ -n "$interp" ]; then
    mkdir -p "$R$(dirname "$interp")"
    cp -L "$interp" "$R$interp"
  fi
}

# ----------------------------------------------------------------------------------------------- 1. rootfs
say "1. rootfs: $R (Debian bookworm arm64 under qemu-user-static)"
setup_binfmt
ROOTFS_BUILT=reused
DEBOOTSTRAP_S=-
if [ "$REBUILD" = 1 ] && [ -e "$R" ]; then
  echo "--rebuild: deleting $R"
  unmount_all
  [ -z "$(chroot_mounts)" ] || die 1 "cannot unmount everything under $R; not deleting it"
  rm -rf --one-file-system "$R"
fi
if [ ! -f "$R/.pi_check_rootfs_ok" ] && [ -x "$R/opt/edge/bin/python" ]; then
  touch "$R/.pi_check_rootfs_ok"    # built by shared/tools/pi-rootfs.sh: same recipe, adopt it
fi
if [ ! -f "$R/.pi_check_rootfs_ok" ]; then
  if [ -e "$R" ]; then                # a half-finished build: debootstrap does not resume reliably
    echo "removing the unfinished rootfs at $R"
    unmount_all
    [ -z "$(chroot_mounts)" ] || die 1 "cannot unmount everything under $R; not deleting it"
    rm -rf --one-file-system "$R"
  fi
  echo "debootstrap bookworm arm64 from $MIRROR (about 6 minutes; log: $WORK/debootstrap.log)"
  t0=$(now)
  if ! nice -n 10 debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
      bookworm "$R" "$MIRROR" > "$WORK/debootstrap.log" 2>&1; then
    tail -n 25 "$WORK/debootstrap.log" >&2
    die 1 "debootstrap failed (see $WORK/debootstrap.log; is $MIRROR reachable?)"
  fi
  place_interpreter
  mount_chroot
  in_chroot python3 -m venv /opt/edge || die 1 "python3 -m venv /opt/edge failed in the chroot"
  DEBOOTSTRAP_S=$(elapsed "$t0" "$(now)")
  touch "$R/.pi_check_rootfs_ok"
  ROOTFS_BUILT="built in ${DEBOOTSTRAP_S} s"
fi
place_interpreter
# The registry proxy's CA, so pip in the chroot trusts what pip here trusts, and this machine's DNS
# (refreshed every run: both may change between runs).
mkdir -p "$R/etc/ssl/certs"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then cp /etc/ssl/certs/ca-certificates.crt "$R/etc/ssl/certs/"; fi
if [ -f /etc/resolv.conf ]; then cp -L /etc/resolv.conf "$R/etc/resolv.conf"; fi
mount_chroot
in_chroot /bin/true 2>/dev/null || die 1 "cannot run arm64 programs in $R (qemu binfmt handler not working?)"
PI_UNAME=$(in_chroot uname -m)
[ "$PI_UNAME" = aarch64 ] || die 1 "the chroot reports uname -m = $PI_UNAME, expected aarch64"
echo "rootfs $ROOTFS_BUILT; uname -m in the chroot: $PI_UNAME"

# ----------------------------------------------------------------------------------------- 2. the checkout
say "2. copying the checkout $REPO -> $R/opt/src"
git -C "$REPO" -c safe.directory="$REPO" rev-parse --git-dir >/dev/null 2>&1 || die 2 "$REPO is not a git checkout"
git -C "$REPO" -c safe.directory="$REPO" ls-files -co --exclude-standard -z \
  | (cd "$REPO" && while IFS= read -r -d '' f; do
       case "$f" in .venv/*|runs/*) continue ;; esac
       [ -f "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"     # tracked but deleted here: skip
     done) > "$WORK/files.lst"
rm -rf --one-file-system "$R/opt/src"
mkdir -p "$R/opt/src"
tar -C "$REPO" --null -T "$WORK/files.lst" -cf - | tar -C "$R/opt/src" -xf -
N_FILES=$(tr -cd '\0' < "$WORK/files.lst" | wc -c)
SRC_MB=$(du -sm "$R/opt/src" | cut -f1)
GIT_REV=$(git -C "$REPO" -c safe.directory="$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
GIT_DIRTY=""
[ -z "$(git -C "$REPO" -c safe.directory="$REPO" status --porcelain 2>/dev/null)" ] || GIT_DIRTY=" + local changes"
echo "$N_FILES files, ${SRC_MB} MB (commit $GIT_REV$GIT_DIRTY)"

# ------------------------------------------------------------------------------------------- 3. pip install
say "3. pip install /opt/src in the chroot's venv /opt/edge (no extras; log: $WORK/pip.log)"
PIP_VERSION=$(in_chroot /opt/edge/bin/pip --version | awk '{print $2}')
t0=$(now)
if ! in_chroot nice -n 10 /opt/edge/bin/pip install --progress-bar off /opt/src > "$WORK/pip.log" 2>&1; then
  tail -n 40 "$WORK/pip.log" >&2
  die 1 "pip install /opt/src failed in the arm64 chroot (see $WORK/pip.log)"
fi
PIP_S=$(elapsed "$t0" "$(now)")
grep -E '^ *(Downloading|Successfully installed|WARNING|ERROR)' "$WORK/pip.log" | sed 's/^/  pip: /' || true
echo "pip install took ${PIP_S} s"

in_chroot /opt/edge/bin/python - > "$WORK/versions.txt" <<'PY'
import importlib.metadata as md, importlib.util, sys
names = ["digitkit", "numpy", "opencv-python-headless", "ai-edge-litert", "click"]  # Matplotlib is the [view] extra
for name in names:
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        print(f"{name:<24} MISSING")
        continue
    wheel = dist.read_text("WHEEL") or ""
    tags = ".".join(line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Tag:"))
    print(f"{name:<24} {dist.version:<12} {tags}")
PY
cat "$WORK/versions.txt"
grep -q MISSING "$WORK/versions.txt" && die 1 "a runtime dependency is missing after pip install"

TF_CHECK=$(in_chroot /opt/edge/bin/python - <<'PY'
import importlib.metadata as md, importlib.util
present = [n for n in ("tensorflow", "tensorflow-cpu", "tensorflow-aarch64", "tf-keras", "keras", "tensorflow-io")
           if any(d.metadata["Name"].lower() == n for d in md.distributions())]
if importlib.util.find_spec("tensorflow") is not None:
    present.append("import tensorflow works")
print("PRESENT: " + ", ".join(present) if present else "not installed (OK)")
PY
)
echo "tensorflow: $TF_CHECK"
case "$TF_CHECK" in PRESENT*) die 1 "the edge install pulled in TensorFlow/Keras: $TF_CHECK" ;; esac

SITE=$(in_chroot /opt/edge/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
SITE_MB=$(du -sm "$R$SITE" | cut -f1)
echo "site-packages ($SITE): ${SITE_MB} MB; largest:"
(cd "$R$SITE" && du -sm -- */ 2>/dev/null | sort -rn | head -n 6 | awk '{printf "  %5d MB  %s\n", $1, $2}') | tee "$WORK/largest.txt"

PLATFORM=$(in_chroot /opt/edge/bin/python - <<'PY'
import platform, sys
print(f"python {platform.python_version()} ({sys.implementation.cache_tag}); {platform.platform()}; "
      f"machine {platform.machine()}; libc {'-'.join(platform.libc_ver())}")
PY
)
DEBIAN_VERSION=$(cat "$R/etc/debian_version")
QEMU_VERSION=$(qemu-aarch64-static --version | head -n1 | sed 's/^qemu-aarch64 version //')
echo "$PLATFORM; Debian $DEBIAN_VERSION"

if [ "$SETUP_ONLY" = 1 ]; then
  say "--setup-only: skipping the inference comparison"
  echo "total $(elapsed "$SCRIPT_STARTED" "$(now)") s"
  exit 0
fi

# ------------------------------------------------------------------------------------- 4. read the samples
say "4. digit-infer /opt/src/$SAMPLES_REL --format jsonl (packaged model), chroot vs this machine"
[ -f "$REPO/$MODEL_REL" ] || die 2 "the packaged model $MODEL_REL does not exist yet (bash scripts/make_default_model.sh)"
[ -d "$REPO/$SAMPLES_REL" ] || die 2 "the sample folder $SAMPLES_REL does not exist yet"
in_chroot /opt/edge/bin/python -c 'import edge_runtime, os, sys
d = os.path.dirname(edge_runtime.__file__)
assert "site-packages" in d, d
assert os.path.isfile(os.path.join(d, "models", "digitkit_int8.tflite")), "packaged model not installed"' \
  || die 1 "the installed package lacks edge_runtime/models/digitkit_int8.tflite (package-data?)"

t0=$(now)
set +e
in_chroot /opt/edge/bin/digit-infer "/opt/src/$SAMPLES_REL" --format jsonl -v > "$WORK/pi.jsonl" 2> "$WORK/pi.stderr"
PI_RC=$?
set -e
PI_S=$(elapsed "$t0" "$(now)")
sed 's/^/  pi: /' "$WORK/pi.stderr" | tail -n 8
[ "$PI_RC" -le 1 ] || die 1 "digit-infer failed in the chroot (exit $PI_RC; see $WORK/pi.stderr)"

t0=$(now)
set +e
(cd "$REPO" && env -u PYTHONPATH "$HOST_PYTHON" -m edge_runtime.cli "$REPO/$SAMPLES_REL" --format jsonl -v \
   > "$WORK/host.jsonl" 2> "$WORK/host.stderr")
HOST_RC=$?
set -e
HOST_S=$(elapsed "$t0" "$(now)")
sed 's/^/  host: /' "$WORK/host.stderr" | tail -n 8
[ "$HOST_RC" -le 1 ] || die 1 "digit-infer failed on this machine (exit $HOST_RC; see $WORK/host.stderr)"
HOST_PLATFORM=$("$HOST_PYTHON" -c 'import platform; print(f"{platform.machine()}, python {platform.python_version()}, {platform.platform()}")')
HOST_PKGS=$("$HOST_PYTHON" -c 'import importlib.metadata as m
print(", ".join(f"{n} {m.version(n)}" for n in ("numpy", "opencv-python-headless", "ai-edge-litert")))' 2>/dev/null || echo "?")
PI_SUMMARY_LINE=$(grep -E '^[0-9]+ inputs?: ' "$WORK/pi.stderr" | tail -n1 || true)
PI_BACKEND=$(grep -o '^interpreter: [^;]*' "$WORK/pi.stderr" | head -n1 | sed 's/^interpreter: //' || true)
HOST_BACKEND=$(grep -o '^interpreter: [^;]*' "$WORK/host.stderr" | head -n1 | sed 's/^interpreter: //' || true)

# ------------------------------------------------------------------------------------------- 5. compare
say "5. readings: chroot (aarch64) vs host ($(uname -m)), confidence tolerance $TOL"
set +e
"$HOST_PYTHON" - "$WORK/pi.jsonl" "/opt/src/$SAMPLES_REL" "$WORK/host.jsonl" "$REPO/$SAMPLES_REL" "$TOL" \
  "$REPO/$SAMPLES_REL/labels.csv" > "$WORK/compare.txt" <<'PY'
import csv, json, os, sys

pi_file, pi_root, host_file, host_root, tol, labels_file = sys.argv[1:7]
tol = float(tol)

def load(path, root):
    rows = {}
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            if line.strip():
                record = json.loads(line)
                rows[os.path.relpath(record["path"], root)] = record
    return rows

def load_labels(path):
    """Best effort: a CSV whose first column names the file and whose 'digits'/'label' column holds the truth."""
    if not os.path.isfile(path):
        return {}
    with open(path, newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    if not rows:
        return {}
    header = [name.strip().lower() for name in rows[0]]
    file_col = next((i for i, n in enumerate(header) if n in ("path", "file", "filename", "image", "name")), 0)
    label_col = next((i for i, n in enumerate(header) if n in ("digits", "label", "labels", "expected", "truth")), None)
    if label_col is None:
        return {}
    labels = {}
    for row in rows[1:]:
        if len(row) > max(file_col, label_col):
            labels[os.path.normpath(row[file_col].strip())] = row[label_col].strip()
    return labels

pi, host, labels = load(pi_file, pi_root), load(host_file, host_root), load_labels(labels_file)
names = sorted(set(pi) | set(host))
width = min(44, max([4, *(len(n) for n in names)]))
has_labels = bool(labels)
head = f"{'file':<{width}}  {'pi':<10} {'host':<10} {'pi conf':>7} {'host conf':>9} {'max dconf':>9}  {'status':<14}"
print(head + (f"  {'label':<10}" if has_labels else "") + "  result")
mismatches = worst = 0
pi_right = host_right = labelled = 0
for name in names:
    a, b = pi.get(name), host.get(name)
    if a is None or b is None:
        mismatches += 1
        print(f"{name[-width:]:<{width}}  {'(missing on ' + ('pi' if a is None else 'host') + ')'}  MISMATCH")
        continue
    problems = []
    if a["digits"] != b["digits"]:
        problems.append("digits")
    if a["status"] != b["status"]:
        problems.append("status")
    deltas = [abs(a["confidence"] - b["confidence"])]
    if len(a["confidences"]) != len(b["confidences"]):
        problems.append("count")
    else:
        deltas += [abs(x - y) for x, y in zip(a["confidences"], b["confidences"])]
    delta = max(deltas)
    worst = max(worst, delta)
    if delta > tol:
        problems.append("confidence")
    mismatches += bool(problems)
    status = a["status"] if a["status"] == b["status"] else f"{a['status']}/{b['status']}"
    line = (f"{name[-width:]:<{width}}  {a['digits'] or '-':<10} {b['digits'] or '-':<10} {a['confidence']:>7.4f} "
            f"{b['confidence']:>9.4f} {delta:>9.4f}  {status:<14}")
    if has_labels:
        label = labels.get(os.path.normpath(name), labels.get(os.path.basename(name)))
        if label is not None:
            labelled += 1
            pi_right += a["digits"] == label
            host_right += b["digits"] == label
        line += f"  {label if label is not None else '?':<10}"
    print(line + "  " + ("MISMATCH (" + ", ".join(problems) + ")" if problems else "MATCH"))
total = len(names)
print(f"RESULT: {total - mismatches}/{total} MATCH, {mismatches} MISMATCH; largest confidence difference {worst:.4f}"
      f" (tolerance {tol})")
if labelled:
    print(f"LABELS: {labelled} labelled files; pi reads {pi_right}/{labelled} right, host {host_right}/{labelled}")
sys.exit(1 if mismatches or not total else 0)
PY
COMPARE_RC=$?
set -e
cat "$WORK/compare.txt"
RESULT_LINE=$(grep '^RESULT:' "$WORK/compare.txt" || echo "RESULT: comparison failed")
LABELS_LINE=$(grep '^LABELS:' "$WORK/compare.txt" || true)
TOTAL_S=$(elapsed "$SCRIPT_STARTED" "$(now)")

# ------------------------------------------------------------------------------------------- summary
say "summary (paste into the README)"
{
  echo '```text'
  echo "digitkit on a Raspberry Pi OS Bookworm 64-bit stand-in: Debian $DEBIAN_VERSION arm64 under qemu-user-static $QEMU_VERSION"
  echo "checkout:        commit $GIT_REV$GIT_DIRTY, checked $(date -u +%Y-%m-%d)"
  echo "emulated CPU:    $QEMU_CPU_MODEL ($PI_NAME's core; QEMU_CPU), Pi-like /proc/cpuinfo"
  echo "uname -m:        $PI_UNAME (kernel in the platform string is this machine's: qemu-user)"
  echo "platform:        $PLATFORM"
  echo "install:         pip $PIP_VERSION: pip install . (no extras) in a venv, ${PIP_S} s under emulation"
  echo "installed:"
  sed 's/^/  /' "$WORK/versions.txt"
  echo "tensorflow:      $TF_CHECK"
  echo "site-packages:   ${SITE_MB} MB ($(head -n 3 "$WORK/largest.txt" | awk '{sub(/\/$/, "", $3); printf "%s%s %s MB", sep, $3, $1; sep=", "}'))"
  echo "interpreter:     ${PI_BACKEND:-?} (host: ${HOST_BACKEND:-?})"
  echo "digit-infer:     $SAMPLES_REL/ --format jsonl, packaged model: ${PI_S} s wall in the chroot, cold start under qemu emulation"
  [ -n "$PI_SUMMARY_LINE" ] && echo "                 (its own count: $PI_SUMMARY_LINE)"
  echo "host run:        ${HOST_S} s wall on $HOST_PLATFORM; $HOST_PKGS"
  echo "comparison:      ${RESULT_LINE#RESULT: }"
  [ -n "$LABELS_LINE" ] && echo "labels:          ${LABELS_LINE#LABELS: }"
  echo "rootfs:          $ROOTFS_BUILT; whole check ${TOTAL_S} s"
  echo '```'
} | tee "$WORK/summary.md"
[ "$PI_RC" -eq "$HOST_RC" ] || echo "note: exit codes differ: chroot $PI_RC, host $HOST_RC"
if [ "$COMPARE_RC" -ne 0 ] || [ "$PI_RC" -ne "$HOST_RC" ]; then
  echo "pi_check: MISMATCH between the arm64 chroot and this machine (details: $WORK/compare.txt)" >&2
  exit 1
fi
echo "pi_check: OK: the arm64 edge install reads every sample as this machine does"
