#!/usr/bin/env bash
# Install tipbox on a fresh Debian 12 VPS: both onion services, gunicorn under systemd,
# PostgreSQL. deploy/README.md is the operator's guide; DESIGN section 5 the reasons.
#
#   deploy/install.sh --client-auth FILE [--newsroom NAME] [--admin USER]
#       The real install (as root, prefix /). Prints the two onion addresses, the identity
#       fingerprint and the first admin's login details.
#   deploy/install.sh --dry-run [--output DIR]
#       Render every file the install would write, into DIR (laid out as from /) or, without
#       --output, to standard output. Touches nothing else.
#   deploy/install.sh --prefix DIR
#       The real file layout under a throwaway root DIR: files, directories, modes and
#       secret keys. Steps that need the real system (apt, users and groups, ownership,
#       venv, PostgreSQL, systemctl, tor, tipbox init) are printed, not run.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TEMPLATES="${HERE}/templates"
REPO="$(dirname "${HERE}")"
readonly HERE TEMPLATES REPO

# Settings (options below change them). Paths are as seen from the installed system.
MODE=install
OUTPUT=""
PREFIX=/
NEWSROOM=tipbox
ADMIN="admin"
ALLOW_UNENCRYPTED_SWAP=0
CLIENT_AUTH_FILES=()
# Where /proc/swaps is read from (a test points it at a fixture).
SWAPS_FILE="${TIPBOX_INSTALL_SWAPS_FILE:-/proc/swaps}"

readonly PENDING_ONION=pending.onion.invalid
# Templates read these through ${!var} (render), which shellcheck cannot see.
# shellcheck disable=SC2034
{
    VENV=/opt/tipbox/venv
    TIPBOX_BIN=""
    ETC_DIR=/etc/tipbox
    DATA_ROOT=/var/lib/tipbox
    # The journalist app's spool of device files; tipbox-onion-sync copies it into Tor's
    # authorized_clients/ (deploy/README.md, "Journalist devices").
    ONION_SPOOL=/var/lib/tipbox/onion-clients
    TOR_DATA_DIR=/var/lib/tor
    SOURCE_RUNTIME_DIR=/run/tipbox-source
    SOURCE_SOCKET=${SOURCE_RUNTIME_DIR}/gunicorn.sock
    JOURNALIST_SOCKET=/run/tipbox-journalist/gunicorn.sock
    DATABASE=tipbox
    # Peer authentication over PostgreSQL's Unix socket: each app's role is its system user.
    SOURCE_DATABASE_URL="postgresql+psycopg://tipbox-source@/${DATABASE}?host=/run/postgresql"
    JOURNALIST_DATABASE_URL="postgresql+psycopg://tipbox-journalist@/${DATABASE}?host=/run/postgresql"
    MAX_FILES=10
    MAX_FILE_MIB=500
    MAX_MESSAGE_CHARS=100000
    ARGON2_CONCURRENCY=2
    # The source app's flood budgets: tipbox.config's defaults, stated so the operator sees
    # and can tune them in /etc/tipbox/source.env (tests/deploy checks they still match).
    # Half the CPUs, at least one: tipbox.config's default_logins_in_flight.
    LOGINS_IN_FLIGHT=$(($(nproc) / 2))
    if ((LOGINS_IN_FLIGHT < 1)); then LOGINS_IN_FLIGHT=1; fi
    NEW_SOURCES_PER_MINUTE=30
    SUBMISSIONS_PER_HOUR=20
    SOURCE_STORAGE_CAP_MIB=10240
    MIN_FREE_DISK_MIB=1024
    SLOWEST_UPLOAD_HOURS=18
    # Until Tor has made the services' keys, the addresses are not known.
    SOURCE_ONION=$PENDING_ONION
    JOURNALIST_ONION=$PENDING_ONION
}

# Every @NAME@ a template may use.
readonly TEMPLATE_VARS=(
    TIPBOX_BIN ETC_DIR DATA_ROOT ONION_SPOOL TOR_DATA_DIR SOURCE_RUNTIME_DIR SOURCE_SOCKET
    JOURNALIST_SOCKET
    SOURCE_DATABASE_URL JOURNALIST_DATABASE_URL MAX_FILES MAX_FILE_MIB MAX_MESSAGE_CHARS
    ARGON2_CONCURRENCY SLOWEST_UPLOAD_HOURS SOURCE_ONION JOURNALIST_ONION LOGINS_IN_FLIGHT
    NEW_SOURCES_PER_MINUTE SUBMISSIONS_PER_HOUR SOURCE_STORAGE_CAP_MIB MIN_FREE_DISK_MIB
)

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() {
    printf 'install.sh: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,15s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
    cat <<'EOF'

Options:
  --dry-run                 render the files only (with --output DIR, or to stdout)
  --output DIR              where --dry-run writes (DIR/etc/tor/torrc, ...)
  --prefix DIR              lay the files out under DIR instead of / (a throwaway root)
  --client-auth FILE        a device's Tor client key ("descriptor:x25519:KEY") for the
                            journalist onion, repeatable; it is the first admin's device,
                            named after the file (laptop.auth: device "laptop")
  --newsroom NAME           the newsroom's name for `tipbox init` (default: tipbox)
  --admin USER              the first admin's user name (default: admin)
  --venv DIR                the virtualenv tipbox is installed into (default: /opt/tipbox/venv)
  --tipbox-bin PATH         the `tipbox` command the units run (default: VENV/bin/tipbox)
  --tor-data-dir DIR        Tor's data directory (default: /var/lib/tor)
  --source-onion HOST       the source onion address, when known (dry run, prefix)
  --journalist-onion HOST   the journalist onion address, when known (dry run, prefix)
  --allow-unencrypted-swap  install even though unencrypted swap is on (not recommended)
  -h, --help                this text
EOF
}

parse_args() {
    while (($#)); do
        case "$1" in
        --dry-run) MODE=dry-run ;;
        --output) OUTPUT="${2:?--output needs a directory}"; shift ;;
        --prefix) PREFIX="${2:?--prefix needs a directory}"; shift ;;
        --client-auth) CLIENT_AUTH_FILES+=("${2:?--client-auth needs a file}"); shift ;;
        --newsroom) NEWSROOM="${2:?--newsroom needs a name}"; shift ;;
        --admin) ADMIN="${2:?--admin needs a user name}"; shift ;;
        --venv) VENV="${2:?--venv needs a directory}"; shift ;;
        --tipbox-bin) TIPBOX_BIN="${2:?--tipbox-bin needs a path}"; shift ;;
        --tor-data-dir) TOR_DATA_DIR="${2:?--tor-data-dir needs a directory}"; shift ;;
        --source-onion) SOURCE_ONION="${2:?--source-onion needs a host}"; shift ;;
        --journalist-onion) JOURNALIST_ONION="${2:?--journalist-onion needs a host}"; shift ;;
        --allow-unencrypted-swap) ALLOW_UNENCRYPTED_SWAP=1 ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
        esac
        shift
    done
    TIPBOX_BIN="${TIPBOX_BIN:-${VENV}/bin/tipbox}"
    if [[ "$MODE" == dry-run && "$PREFIX" != / ]]; then
        die "--dry-run and --prefix do not go together"
    fi
    if [[ "$MODE" != dry-run && -n "$OUTPUT" ]]; then
        die "--output goes with --dry-run"
    fi
    if [[ "$PREFIX" != / ]]; then
        mkdir -p "$PREFIX"
        PREFIX="$(cd "$PREFIX" && pwd)"
        [[ "$PREFIX" != / ]] || die "--prefix / is the real install; leave it out"
    fi
}

# True when the steps that change the system itself (not files under the prefix) run.
on_real_system() { [[ "$MODE" == install && "$PREFIX" == / ]]; }

# Run a command on the real system; under a prefix, print it instead.
run() {
    if on_real_system; then
        "$@"
    else
        printf 'skipped (not on the real system):' >&2
        printf ' %q' "$@" >&2
        printf '\n' >&2
    fi
}

# ---------------------------------------------------------------------------------------
# Swap. A swapped-out page of a worker can hold an unlocked key half or plaintext, so swap
# must be off or encrypted (dm-crypt, or zram, which stays in memory).

# Prints each active swap area that is neither on dm-crypt nor zram.
unencrypted_swaps() {
    local name _rest dev uuid
    [[ -r "$SWAPS_FILE" ]] || return 0
    while read -r name _rest; do
        [[ "$name" == Filename || -z "$name" ]] && continue
        dev="$(readlink -f -- "$name" 2>/dev/null || printf '%s' "$name")"
        case "$dev" in
        /dev/zram*) continue ;;
        /dev/dm-*)
            uuid="$(cat "/sys/block/${dev#/dev/}/dm/uuid" 2>/dev/null || true)"
            [[ "$uuid" == CRYPT-* ]] && continue
            ;;
        esac
        printf '%s\n' "$name"
    done <"$SWAPS_FILE"
}

check_swap() {
    local bad
    bad="$(unencrypted_swaps)"
    if [[ -z "$bad" ]]; then
        log "swap: off or encrypted"
        return
    fi
    local message="unencrypted swap is on (${bad//$'\n'/, }): turn it off (swapoff -a, and
remove it from /etc/fstab) or encrypt it (deploy/README.md, \"Swap\")"
    if [[ "$MODE" == dry-run || "$ALLOW_UNENCRYPTED_SWAP" == 1 ]]; then
        warn "$message"
    else
        die "$message; --allow-unencrypted-swap installs anyway"
    fi
}

# ---------------------------------------------------------------------------------------
# Rendering: @NAME@ in a template becomes the value of the shell variable NAME.

render() {
    local template="$1" text var
    text="$(<"${TEMPLATES}/${template}")"
    for var in "${TEMPLATE_VARS[@]}"; do
        text="${text//@${var}@/${!var}}"
    done
    if [[ "$text" =~ @[A-Z_]+@ ]]; then
        die "${template}: no value for ${BASH_REMATCH[0]}"
    fi
    printf '%s\n' "$text"
}

# Each file the install writes: "path mode template", the path as seen from /.
rendered_files() {
    cat <<EOF
${ETC_DIR}/source.env 0600 source.env.in
${ETC_DIR}/journalist.env 0600 journalist.env.in
/etc/systemd/system/tipbox-source.service 0644 tipbox-source.service.in
/etc/systemd/system/tipbox-journalist.service 0644 tipbox-journalist.service.in
/etc/systemd/system/tipbox-retention.service 0644 tipbox-retention.service.in
/etc/systemd/system/tipbox-retention.timer 0644 tipbox-retention.timer.in
/etc/systemd/system/tipbox-onion-sync.service 0644 tipbox-onion-sync.service.in
/etc/systemd/system/tipbox-onion-sync.path 0644 tipbox-onion-sync.path.in
/etc/tor/torrc 0644 torrc.in
/etc/sysctl.d/90-tipbox.conf 0644 90-tipbox.conf.in
/etc/apparmor.d/local/system_tor 0644 system_tor.in
EOF
}

# The client keys' lines, checked: "descriptor:x25519:" and 52 base32 characters.
client_auth_line() {
    local file="$1" line
    line="$(tr -d '[:space:]' <"$file")"
    [[ "$line" =~ ^descriptor:x25519:[A-Z2-7]{52}$ ]] \
        || die "${file}: not a Tor client key (descriptor:x25519:<52 base32 characters>)"
    printf '%s\n' "$line"
}

# A name as tipbox.onion.NAME allows: 1 to 32 of a-z 0-9 _ -, not starting with -, no --.
onion_name_ok() { [[ "$1" =~ ^[a-z0-9_][a-z0-9_-]{0,31}$ && "$1" != *--* ]]; }

# The device file a --client-auth FILE becomes: "<admin>--<device>.auth", the first admin's
# device, so that `tipbox onion list|revoke` and removing that admin know it.
client_auth_name() {
    local name
    name="$(basename -- "$1")"
    name="${name%.auth}"
    onion_name_ok "$name" \
        || die "$1: name the file after the device (a-z 0-9 _ -, up to 32, no --)"
    onion_name_ok "$ADMIN" || die "--admin ${ADMIN}: a-z 0-9 _ -, up to 32, no --"
    printf '%s--%s.auth\n' "$ADMIN" "$name"
}

# Write $2 (text) to path $1 under the destination root $3 with mode $4, atomically.
write_file() {
    local path="$1" text="$2" root="$3" mode="$4" dest
    dest="${root%/}${path}"
    mkdir -p -- "$(dirname -- "$dest")"
    (
        umask 077
        printf '%s\n' "$text" >"${dest}.tmp"
    )
    chmod "$mode" -- "${dest}.tmp"
    mv -f -- "${dest}.tmp" "$dest"
}

# Every rendered file, to the destination root $1, or to stdout when $1 is empty.
emit_files() {
    local root="$1" path mode template text file
    while read -r path mode template; do
        text="$(render "$template")"
        if [[ -z "$root" ]]; then
            printf '=== %s (mode %s) ===\n%s\n' "$path" "$mode" "$text"
        else
            write_file "$path" "$text" "$root" "$mode"
        fi
    done < <(rendered_files)
    # Each device goes into the app's spool (where `tipbox onion` manages it) and into
    # Tor's directory, so that Tor has it before the sync service first runs.
    local spool_path tor_path
    for file in "${CLIENT_AUTH_FILES[@]}"; do
        text="$(client_auth_line "$file")"
        spool_path="${ONION_SPOOL}/$(client_auth_name "$file")"
        tor_path="${TOR_DATA_DIR}/tipbox-journalist/authorized_clients/$(client_auth_name "$file")"
        if [[ -z "$root" ]]; then
            printf '=== %s (mode 0640) ===\n%s\n' "$spool_path" "$text"
            printf '=== %s (mode 0600) ===\n%s\n' "$tor_path" "$text"
        else
            write_file "$spool_path" "$text" "$root" 0640
            write_file "$tor_path" "$text" "$root" 0600
        fi
    done
}

# ---------------------------------------------------------------------------------------
# Directories and secrets.

# "path mode owner group" for each directory the install makes.
directories() {
    cat <<EOF
${ETC_DIR} 0700 root root
${DATA_ROOT} 0755 root root
${DATA_ROOT}/source 0700 tipbox-source tipbox-source
${DATA_ROOT}/source/secrets 0700 tipbox-source tipbox-source
${DATA_ROOT}/journalist 0700 tipbox-journalist tipbox-journalist
${DATA_ROOT}/journalist/secrets 0700 tipbox-journalist tipbox-journalist
${DATA_ROOT}/blobs 2770 tipbox-source tipbox-blobs
${DATA_ROOT}/keys 2750 tipbox-journalist tipbox-keys
${ONION_SPOOL} 0750 tipbox-journalist tipbox-journalist
${TOR_DATA_DIR}/tipbox-source 0700 debian-tor debian-tor
${TOR_DATA_DIR}/tipbox-journalist 0700 debian-tor debian-tor
${TOR_DATA_DIR}/tipbox-journalist/authorized_clients 0700 debian-tor debian-tor
EOF
}

make_directories() {
    local path mode owner group dest
    while read -r path mode owner group; do
        dest="${PREFIX%/}${path}"
        mkdir -p -- "$dest"
        # A numeric chmod keeps a directory's set-group-id bit, which a new directory
        # inherits from its parent: clear it first, then set exactly ${mode}.
        chmod g-s -- "$dest"
        chmod "$mode" -- "$dest"
        run chown "${owner}:${group}" "$dest"
    done < <(directories)
}

# Each app's Flask secret (32 random bytes, as tipbox.web.app.write_secret_keys makes),
# made here so that each lives only in its own app's data directory.
make_secret_keys() {
    local kind dest
    for kind in source journalist; do
        dest="${PREFIX%/}${DATA_ROOT}/${kind}/secrets/${kind}_flask.key"
        if [[ -e "$dest" ]]; then
            log "keeping ${DATA_ROOT}/${kind}/secrets/${kind}_flask.key"
            continue
        fi
        (
            umask 077
            head -c 32 /dev/urandom >"$dest"
        )
        chmod 0600 -- "$dest"
        run chown "tipbox-${kind}:tipbox-${kind}" "$dest"
    done
}

fix_file_owners() {
    local file
    run chown root:root "${PREFIX%/}${ETC_DIR}/source.env" "${PREFIX%/}${ETC_DIR}/journalist.env"
    for file in "${PREFIX%/}${TOR_DATA_DIR}"/tipbox-journalist/authorized_clients/*.auth; do
        [[ -e "$file" ]] && run chown debian-tor:debian-tor "$file"
    done
    for file in "${PREFIX%/}${ONION_SPOOL}"/*.auth; do
        [[ -e "$file" ]] && run chown tipbox-journalist:tipbox-journalist "$file"
    done
    return 0
}

# ---------------------------------------------------------------------------------------
# System steps (the real install only; printed under a prefix).

install_packages() {
    log "Debian packages"
    run apt-get update -q
    run apt-get install -y -q --no-install-recommends \
        tor postgresql python3 python3-venv libsodium23
}

make_users() {
    log "users and groups: one per app, tipbox-keys and tipbox-blobs shared"
    local group user
    for group in tipbox-keys tipbox-blobs; do
        if on_real_system && getent group "$group" >/dev/null; then continue; fi
        run groupadd --system "$group"
    done
    for user in tipbox-source tipbox-journalist; do
        if on_real_system && getent passwd "$user" >/dev/null; then continue; fi
        run useradd --system --user-group --home-dir /nonexistent --no-create-home \
            --shell /usr/sbin/nologin --groups tipbox-keys,tipbox-blobs "$user"
    done
    # Tor reaches each app's socket through the app's group (/run/tipbox-*, mode 0750);
    # tipbox-onion-sync (as debian-tor) reads the device spool through tipbox-journalist's.
    run usermod --append --groups tipbox-source,tipbox-journalist debian-tor
}

install_tipbox() {
    log "tipbox into ${VENV}"
    run python3 -m venv "$VENV"
    run "${VENV}/bin/pip" install --no-input --quiet "$REPO"
}

setup_postgres() {
    log "PostgreSQL: database ${DATABASE}"
    run systemctl enable --now postgresql
    run runuser -u postgres -- createuser tipbox-journalist
    run runuser -u postgres -- createuser tipbox-source
    run runuser -u postgres -- createdb --owner tipbox-journalist "$DATABASE"
    # The two roles' privileges are set by `tipbox db roles` once the schema exists
    # (init_instance): the source role reads no journalist data and cannot change items.
}

apply_sysctl() {
    run sysctl --quiet --load /etc/sysctl.d/90-tipbox.conf
    if on_real_system && command -v apparmor_parser >/dev/null 2>&1 \
        && [[ -e /etc/apparmor.d/system_tor ]]; then
        apparmor_parser --replace /etc/apparmor.d/system_tor
    fi
}

start_tor() {
    log "Tor: the two onion services"
    run systemctl restart tor
    on_real_system || return 0
    local kind file
    for kind in source journalist; do
        file="${TOR_DATA_DIR}/tipbox-${kind}/hostname"
        for _ in $(seq 60); do
            [[ -s "$file" ]] && break
            sleep 1
        done
        [[ -s "$file" ]] || die "Tor made no ${file} (journalctl -u tor@default)"
    done
}

read_onions() {
    local file
    file="${PREFIX%/}${TOR_DATA_DIR}/tipbox-source/hostname"
    if [[ "$SOURCE_ONION" == "$PENDING_ONION" && -s "$file" ]]; then
        SOURCE_ONION="$(<"$file")"
    fi
    file="${PREFIX%/}${TOR_DATA_DIR}/tipbox-journalist/hostname"
    if [[ "$JOURNALIST_ONION" == "$PENDING_ONION" && -s "$file" ]]; then
        JOURNALIST_ONION="$(<"$file")"
    fi
}

init_instance() {
    log "tipbox init: database, keys, first admin"
    run runuser -u tipbox-journalist -- env --ignore-environment PATH=/usr/bin:/bin \
        "TIPBOX_DATA_DIR=${DATA_ROOT}/journalist" \
        "TIPBOX_DATABASE_URL=${JOURNALIST_DATABASE_URL}" \
        "TIPBOX_BLOB_DIR=${DATA_ROOT}/blobs" "TIPBOX_KEYS_DIR=${DATA_ROOT}/keys" \
        "$TIPBOX_BIN" init --name "$NEWSROOM" --admin "$ADMIN"
    # init makes both apps' Flask secrets in its data directory if missing; the source
    # app's own is in its own directory (make_secret_keys), so drop the journalist's copy.
    run rm -f -- "${DATA_ROOT}/journalist/secrets/source_flask.key"
    log "PostgreSQL: the source app's role gets only what it needs (tipbox db roles)"
    run runuser -u tipbox-journalist -- env --ignore-environment PATH=/usr/bin:/bin \
        "TIPBOX_DATA_DIR=${DATA_ROOT}/journalist" \
        "TIPBOX_DATABASE_URL=${JOURNALIST_DATABASE_URL}" \
        "$TIPBOX_BIN" db roles --source-role tipbox-source --journalist-role tipbox-journalist
}

start_apps() {
    log "systemd: the two apps, the retention timer and the journalist device sync"
    run systemctl daemon-reload
    run systemctl enable --now tipbox-source.service tipbox-journalist.service \
        tipbox-retention.timer tipbox-onion-sync.path
    # Enabled for every boot; run once now, so that Tor's directory matches the spool.
    run systemctl enable tipbox-onion-sync.service
    run systemctl start tipbox-onion-sync.service
}

# ---------------------------------------------------------------------------------------

main() {
    parse_args "$@"
    check_swap
    if [[ "$MODE" == dry-run ]]; then
        if [[ -n "$OUTPUT" ]]; then
            mkdir -p -- "$OUTPUT"
            emit_files "$(cd "$OUTPUT" && pwd)"
            log "rendered every file into ${OUTPUT}; nothing else was touched"
        else
            emit_files ""
        fi
        return
    fi
    if on_real_system; then
        [[ "$(id -u)" == 0 ]] || die "run as root (or use --dry-run / --prefix DIR)"
        ((${#CLIENT_AUTH_FILES[@]})) \
            || die "give at least one --client-auth FILE: without one the journalist onion is public"
    fi
    local file
    for file in "${CLIENT_AUTH_FILES[@]}"; do
        client_auth_line "$file" >/dev/null
        client_auth_name "$file" >/dev/null
    done
    install_packages
    make_users
    install_tipbox
    make_directories
    make_secret_keys
    # The env files name the onion addresses, which exist once Tor has run: Tor's
    # configuration first, then the rest.
    read_onions
    emit_files "$PREFIX"
    fix_file_owners
    apply_sysctl
    start_tor
    read_onions
    emit_files "$PREFIX"
    fix_file_owners
    setup_postgres
    init_instance
    start_apps
    local WHERE=""
    [[ "$PREFIX" == / ]] || WHERE=" under ${PREFIX} (system steps printed, not run)"
    cat <<EOF

tipbox is installed${WHERE}.
  Source onion address:      http://${SOURCE_ONION}/
  Journalist onion address:  http://${JOURNALIST_ONION}/ (client authorization)
The identity fingerprint and the first admin's login details are printed above by
\`tipbox init\`; they are shown once.
EOF
}

main "$@"
