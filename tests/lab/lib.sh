# Helpers shared by the TCG lab scripts (sourced by prepare.sh and run.sh).
# Modules come from the unpacked kernel package in the cache; their load order
# is what kmod's modprobe computes from the modules.dep that prepare.sh makes.
PATH=$PATH:/usr/sbin:/sbin   # depmod and modprobe, for users whose PATH lacks them

# lab_module_paths CACHE MODULE...: the .ko files MODULE... need, dependencies
# first, each once (modules built into the kernel print nothing).
lab_module_paths() {
    local cache=$1 m
    shift
    for m in "$@"; do
        modprobe --show-depends -d "$cache/kernel" -S "$(cat "$cache/kver")" "$m" \
            || { echo "lab: modprobe cannot resolve module $m" >&2; return 1; }
    done | awk '$1 == "insmod" && !seen[$2]++ {print $2}'
}

# lab_install_modules CACHE DESTDIR MODULE...: uncompressed copies of the
# modules (busybox insmod reads plain .ko only) in DESTDIR, and DESTDIR/order
# with their names in load order (appended, so calls add up).
lab_install_modules() {
    local cache=$1 dest=$2 src name paths
    shift 2
    mkdir -p "$dest"
    paths=$(lab_module_paths "$cache" "$@") || return 1
    for src in $paths; do
        name=$(basename "$src"); name=${name%%.ko*}
        [[ -e $dest/$name.ko ]] && continue
        case $src in
            *.ko) cp "$src" "$dest/$name.ko" ;;
            *.xz) xz -dc "$src" > "$dest/$name.ko" ;;
            *.zst) zstd -dqc "$src" > "$dest/$name.ko" ;;
            *.gz) gzip -dc "$src" > "$dest/$name.ko" ;;
            *) echo "lab: unknown module format: $src" >&2; return 1 ;;
        esac
        echo "$name" >> "$dest/order"
    done
}
