# Helpers for the images' kolla_extend_start hooks.
#
# Installed as /usr/local/lib/kolla/functions.sh. A hook starts with
#     . /usr/local/lib/kolla/functions.sh
# kolla_start sources the hook in its own POSIX shell (with `set -e`), so all
# of this is POSIX sh, every name starts with kolla_, and a helper only fails
# when the step it stands for must stop the container.

# kolla_env_set NAME: true when the environment variable NAME is set, even to
# the empty string (how KOLLA_BOOTSTRAP, KOLLA_UPGRADE, ... are passed).
kolla_env_set() {
    eval "[ -n \"\${$1+set}\" ]"
}

# kolla_is_root: true when the hook runs as root.
kolla_is_root() {
    [ "$(id -u)" -eq 0 ]
}

# kolla_run_as USER COMMAND [ARG...]: run COMMAND as USER and return its
# status. A container that runs as root (Apache-served APIs, libvirt) switches
# with runuser, keeping the environment but HOME, USER, LOGNAME and SHELL; a
# container that already runs as a service user runs COMMAND itself.
kolla_run_as() {
    kolla_run_as_user=$1
    shift
    if kolla_is_root && [ "$kolla_run_as_user" != root ]; then
        runuser -u "$kolla_run_as_user" -- "$@"
    else
        "$@"
    fi
}

# kolla_dir PATH OWNER[:GROUP] MODE: make sure directory PATH exists. As root,
# also give it OWNER and MODE; as another user, set MODE when the directory
# is that user's. Never fatal: a directory that cannot be made is reported
# and left to the service, which says more precisely what it misses.
kolla_dir() {
    if [ ! -d "$1" ] && ! mkdir -p "$1" 2>/dev/null; then
        echo "kolla_extend_start: cannot create $1 as $(id -un)" >&2
        return 0
    fi
    if kolla_is_root; then
        chown "$2" "$1" && chmod "$3" "$1" || echo "kolla_extend_start: cannot set owner/mode of $1" >&2
    elif [ -O "$1" ]; then
        chmod "$3" "$1" 2>/dev/null || true
    fi
    return 0
}

# kolla_log_dir PROJECT USER: /var/log/kolla/PROJECT, where the service of
# PROJECT (running as USER) writes its logs; other containers of the host
# read it through the group kolla.
kolla_log_dir() {
    kolla_dir "/var/log/kolla/$1" "$2:kolla" 0755
}

# kolla_ini_get FILE SECTION KEY: print the value of KEY in SECTION of the INI
# file FILE (nothing when the file, section or key is missing).
kolla_ini_get() {
    python3 - "$1" "$2" "$3" <<'KOLLA_PY'
import configparser, sys
path, section, key = sys.argv[1:4]
parser = configparser.RawConfigParser(strict=False)
try:
    parser.read(path)
    print(parser.get(section, key).strip())
except (configparser.Error, OSError):
    pass
KOLLA_PY
}
