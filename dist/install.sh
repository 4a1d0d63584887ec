#!/bin/sh
# Installs keel from this release directory (the unpacked
# keel-<version>-<arch>-linux.tar.gz), or removes what an earlier run
# installed.
#
#   ./install.sh [--prefix DIR] [--root DIR]      install (again: idempotent)
#   ./install.sh --uninstall [--prefix DIR] [--root DIR]
#
# --prefix (default /usr/local): where bin/keel-control, bin/keel-agent and
#   bin/keelctl go; the systemd units run them from there.
# --root (default /): a directory standing for the target machine's /, for
#   images and chroots; every path below is under it.
#
# Also installed: keel's CNI plugin as /opt/cni/bin/keel, the units
# keel-control.service and keel-agent.service in /etc/systemd/system, and
# the default /etc/keel/control.yaml and /etc/keel/agent.yaml, only where no
# such file exists: a config file is never overwritten once an admin edited
# it. What was installed is recorded in PREFIX/share/keel/install-manifest;
# --uninstall (with the same --prefix and --root) removes exactly that:
# files, the directories the install created (when empty), and the config
# files unless they were edited since.
set -eu

PREFIX=/usr/local
ROOT=/
ACTION=install

usage() {
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
    echo "install.sh: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX=$2; shift 2 ;;
    --prefix=*) PREFIX=${1#*=}; shift ;;
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT=$2; shift 2 ;;
    --root=*) ROOT=${1#*=}; shift ;;
    --uninstall) ACTION=uninstall; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
    esac
done

case "$PREFIX" in /*) ;; *) die "--prefix $PREFIX: must be an absolute path" ;; esac
case "$ROOT" in /*) ;; *) die "--root $ROOT: must be an absolute path" ;; esac
PREFIX=${PREFIX%/}
[ -n "$PREFIX" ] || die "--prefix /: choose a directory such as /usr/local"
[ -d "$ROOT" ] || die "--root $ROOT: no such directory"
# R is prepended to every target path ("" for /).
R=${ROOT%/}

HERE=$(cd "$(dirname "$0")" && pwd)
MANIFEST=$PREFIX/share/keel/install-manifest
NEW_MANIFEST=$(mktemp)
trap 'rm -f "$NEW_MANIFEST"' EXIT

sum() {
    sha256sum "$1" | cut -d' ' -f1
}

# The recorded line of kind $1 for path $2 in the old manifest (its sum).
recorded() {
    [ -f "$R$MANIFEST" ] || return 1
    while read -r kind s path; do
        if [ "$kind" = "$1" ] && [ "$path" = "$2" ]; then
            echo "$s"
            return 0
        fi
    done <"$R$MANIFEST"
    return 1
}

# mkdir -p that records each directory it creates (and keeps the record
# of those an earlier run created).
dir() {
    case "$1" in /) return 0 ;; esac
    dir "$(dirname "$1")"
    if [ ! -d "$R$1" ]; then
        mkdir -m 0755 "$R$1"
        echo "d - $1" >>"$NEW_MANIFEST"
    elif recorded d "$1" >/dev/null; then
        echo "d - $1" >>"$NEW_MANIFEST"
    fi
}

# Installs $1 at $2 with mode $3, replacing the file atomically when it differs.
file() {
    src=$1 dst=$2 mode=$3
    dir "$(dirname "$dst")"
    if [ -f "$R$dst" ] && cmp -s "$src" "$R$dst" &&
        [ "$(stat -c %a "$R$dst")" = "$mode" ]; then
        echo "unchanged  $dst"
    else
        cp "$src" "$R$dst.keel-new"
        chmod "$mode" "$R$dst.keel-new"
        mv -f "$R$dst.keel-new" "$R$dst"
        echo "installed  $dst"
    fi
    echo "f $(sum "$R$dst") $dst" >>"$NEW_MANIFEST"
}

# A config file: written only where none is, or where the one there is
# exactly the default an earlier run wrote (so upgrades bring new defaults
# to configs nobody edited).
config() {
    src=$1 dst=$2
    dir "$(dirname "$dst")"
    if [ ! -e "$R$dst" ]; then
        cp "$src" "$R$dst"
        chmod 0644 "$R$dst"
        echo "installed  $dst"
        echo "c $(sum "$R$dst") $dst" >>"$NEW_MANIFEST"
    elif old=$(recorded c "$dst"); then
        if [ "$(sum "$R$dst")" = "$old" ] && ! cmp -s "$src" "$R$dst"; then
            cp "$src" "$R$dst.keel-new"
            chmod 0644 "$R$dst.keel-new"
            mv -f "$R$dst.keel-new" "$R$dst"
            echo "updated    $dst (it had the earlier default)"
            echo "c $(sum "$R$dst") $dst" >>"$NEW_MANIFEST"
        else
            [ "$(sum "$R$dst")" = "$old" ] || echo "kept       $dst (edited; the default is $src)"
            echo "c $old $dst" >>"$NEW_MANIFEST"
        fi
    else
        cmp -s "$src" "$R$dst" || echo "kept       $dst (not installed by install.sh; the default is $src)"
    fi
}

systemd_running() {
    [ -z "$R" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

install_all() {
    for b in keel-control keel-agent keelctl; do
        [ -x "$HERE/bin/$b" ] || die "$HERE/bin/$b: missing from the release directory"
    done
    for b in keel-control keel-agent keelctl; do
        file "$HERE/bin/$b" "$PREFIX/bin/$b" 755
    done
    file "$HERE/cni/keel" /opt/cni/bin/keel 755
    units=$(mktemp -d)
    for u in keel-control.service keel-agent.service; do
        sed "s|@PREFIX@|$PREFIX|g" "$HERE/systemd/$u" >"$units/$u"
        file "$units/$u" "/etc/systemd/system/$u" 644
    done
    rm -rf "$units"
    config "$HERE/etc/keel/control.yaml" /etc/keel/control.yaml
    config "$HERE/etc/keel/agent.yaml" /etc/keel/agent.yaml
    dir "$(dirname "$MANIFEST")"
    sort -u -k3 "$NEW_MANIFEST" | sort -k1,1 -s >"$R$MANIFEST.keel-new"
    chmod 0644 "$R$MANIFEST.keel-new"
    mv -f "$R$MANIFEST.keel-new" "$R$MANIFEST"
    echo "recorded   $MANIFEST"
    if systemd_running; then
        systemctl daemon-reload
    fi
    echo "keel is installed. Next: edit /etc/keel/*.yaml, then"
    echo "  systemctl enable --now keel-control   # on the control machine"
    echo "  systemctl enable --now keel-agent     # on every node"
}

uninstall_all() {
    if [ ! -f "$R$MANIFEST" ]; then
        echo "nothing to remove: no $R$MANIFEST (was keel installed with this --prefix and --root?)"
        return 0
    fi
    if systemd_running; then
        systemctl disable --now keel-agent.service keel-control.service 2>/dev/null || true
    fi
    while read -r kind s path; do
        case "$kind" in
        f)
            rm -f "$R$path"
            echo "removed    $path"
            ;;
        c)
            if [ ! -e "$R$path" ]; then
                :
            elif [ "$(sum "$R$path")" = "$s" ]; then
                rm -f "$R$path"
                echo "removed    $path"
            else
                echo "kept       $path (edited since it was installed)"
            fi
            ;;
        esac
    done <"$R$MANIFEST"
    dirs=$(grep '^d ' "$R$MANIFEST" | cut -d' ' -f3- | awk '{ print length($0) " " $0 }' | sort -rn | cut -d' ' -f2-)
    rm -f "$R$MANIFEST"
    echo "removed    $MANIFEST"
    # Deepest first; a directory that still holds something stays.
    echo "$dirs" | while IFS= read -r d; do
        [ -n "$d" ] || continue
        if rmdir "$R$d" 2>/dev/null; then
            echo "removed    $d/"
        fi
    done
    if systemd_running; then
        systemctl daemon-reload
    fi
}

case "$ACTION" in
install) install_all ;;
uninstall) uninstall_all ;;
esac
