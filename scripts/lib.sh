# Shared by scripts/dev and scripts/test: make sure the Debian packages the
# build and the tests need are present. As root, install the missing ones;
# otherwise print the one command that will, and stop.

# Packages needed to build occcd (SQLCipher's crypto is the system's
# libcrypto, libssl-dev; pam-client links libpam and generates its bindings
# with libclang; perl and make build OpenSSL for the Windows check).
BUILD_PACKAGES=(build-essential perl make pkg-config libpam0g-dev libclang-dev libssl-dev)
# Packages the test suite drives for real: systemd-analyze for the unit file,
# oathtool and argon2 as independent reference implementations, useradd and
# chage for real OS accounts, pam_fprintd for the shipped PAM stack; a real
# Docker engine (docker top needs procps' ps; its test bridge needs iproute2) and busybox-static, from which
# the integrity tests build their image (registries are unreachable).
# The package and its boot test: cargo-deb's dpkg-shlibdeps (dpkg-dev),
# lintian, debootstrap for a Debian root and systemd-nspawn to boot it
# (systemd-container); systemd-socket-activate comes with systemd. The
# Windows check compiles ring's C with MinGW (gcc-mingw-w64-x86-64).
# promtool (prometheus) checks the metrics exposition; rsyslog (with its gtls
# driver), openssl and python3 are the event receivers of tests/e2e (events).
TEST_PACKAGES=(systemd oathtool argon2 passwd libpam-modules libpam-fprintd
    docker.io busybox-static procps tar iproute2 protobuf-compiler
    dpkg-dev lintian debootstrap systemd-container gcc-mingw-w64-x86-64 prometheus
    rsyslog rsyslog-gnutls openssl python3)
# The TypeScript SDK's build and tests need Node.js (18 or later) and npm;
# protobuf-compiler (above) generates its types. Debian's nodejs and npm are
# installed only when no node is on PATH (a newer Node may already be there).
ensure_node() {
    if command -v node >/dev/null && command -v npm >/dev/null; then
        return 0
    fi
    ensure_debian_packages nodejs npm
}

ensure_debian_packages() {
    local missing=()
    local package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -eq 0 ]; then
        echo "==> installing Debian packages: ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    else
        echo "missing Debian packages: ${missing[*]}" >&2
        echo "install them with:  sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
}

# Python packages the interop tests use as independent reference clients.
PYTHON_TEST_PACKAGES=(grpcio grpcio-tools)

ensure_python_packages() {
    python3 - "$@" <<'PY' && return 0
import importlib.util, sys
names = {"grpcio": "grpc", "grpcio-tools": "grpc_tools", "pyotp": "pyotp"}
missing = [p for p in sys.argv[1:] if importlib.util.find_spec(names.get(p, p)) is None]
sys.exit(1 if missing else 0)
PY
    echo "==> installing Python packages: $*"
    python3 -m pip install -q "$@"
}

# cargo-deb builds the Debian package (scripts/package); from crates.io, at
# a pinned version.
CARGO_DEB_VERSION=3.8.0
CARGO_FUZZ_VERSION=0.13.2

# cargo-fuzz, and the nightly toolchain it builds with.
ensure_cargo_fuzz() {
    if ! rustup toolchain list | grep -q '^nightly'; then
        echo "==> installing the nightly toolchain (for cargo-fuzz)" >&2
        rustup toolchain install nightly --profile minimal >&2
    fi
    if cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
        return 0
    fi
    echo "==> installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked >&2
}

ensure_cargo_deb() {
    if cargo deb --version 2>/dev/null | grep -qF "$CARGO_DEB_VERSION"; then
        return 0
    fi
    echo "==> installing cargo-deb $CARGO_DEB_VERSION" >&2
    cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked >&2
}
