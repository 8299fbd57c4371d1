# Shared by scripts/dev and scripts/test: make sure the Debian packages the
# build and the tests need are present. As root, install the missing ones;
# otherwise print the one command that will, and stop.

# Packages needed to build occcd (SQLCipher's vendored OpenSSL needs perl and make).
BUILD_PACKAGES=(build-essential perl make pkg-config)

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
