# shellcheck shell=bash
# Building the book (docs/, mdBook) and checking its links offline.
#
# Source it after scripts/lib/servers.sh (for dcdc_cache_dir):
#
#   source scripts/lib/docs.sh
#   build_docs          # installs mdbook and lychee on first use, builds, checks links
#
# mdbook and lychee are tools, not dependencies of the crate: each is
# `cargo install`ed once, from crates.io at a pinned version with its
# lockfile (--locked), into the cache (DYNAMO_CDC_CACHE, default
# ~/.cache/dynamo-cdc/tools/<name>-<version>), outside the clone, so later
# runs and other clones reuse it. They are compiled in a target directory
# of their own that is removed afterwards, so they never hold the crate's.
DCDC_MDBOOK_VERSION="0.5.4"
DCDC_LYCHEE_VERSION="0.24.2"

# Installs crate $1 at version $2 (extra cargo install flags after) into
# the cache unless it is there; prints the binary's path.
_dcdc_cargo_tool() {
    local name=$1 version=$2
    shift 2
    local root
    root="$(dcdc_cache_dir)/tools/$name-$version"
    if [ ! -x "$root/bin/$name" ]; then
        local build started=$SECONDS
        build=$(mktemp -d "$(dcdc_cache_dir)/.tool-build.XXXXXX")
        _dcdc_log "==> installing $name $version (cargo install --locked; first run only)"
        if ! CARGO_TARGET_DIR="$build" cargo install "$name" --version "=$version" --locked \
            --root "$root" "$@" >&2; then
            rm -rf "$build"
            _dcdc_log "error: could not install $name $version"
            return 1
        fi
        rm -rf "$build"
        _dcdc_log "==> $name $version installed in $((SECONDS - started)) s"
    fi
    printf '%s\n' "$root/bin/$name"
}

# mdbook without its search index and live-reload server (not needed to build).
ensure_mdbook() {
    _dcdc_cargo_tool mdbook "$DCDC_MDBOOK_VERSION" --no-default-features
}

ensure_lychee() {
    _dcdc_cargo_tool lychee "$DCDC_LYCHEE_VERSION"
}

# Builds docs/ into docs/book/ and checks every link and anchor between
# its pages offline (web links are not followed). Run from the repository root.
build_docs() {
    local mdbook lychee
    mdbook=$(ensure_mdbook)
    lychee=$(ensure_lychee)
    rm -rf docs/book
    "$mdbook" build docs
    # 404.html resolves its links against the site's root, which a local
    # check cannot know; every other page's links are relative.
    "$lychee" --offline --include-fragments --no-progress \
        --exclude-path docs/book/404.html docs/book
}
