#!/bin/sh
# Installs pty-mcp and ai-tmux from a release: picks the archive for this machine, verifies it
# against the release's SHA256SUMS, and puts both binaries into PTY_MCP_INSTALL_DIR.
#
#   curl -fsSL https://github.com/pty-mcp/pty-mcp/releases/latest/download/install.sh | sh
#   sh install.sh [--register]
#
# PTY_MCP_RELEASE_URL  where the release's files are (a plain directory of files)
# PTY_MCP_INSTALL_DIR  where the binaries go (default ~/.local/bin)
# PTY_MCP_TARGET       the archive's target triple, when this machine's is not the one wanted
#
# Every message goes to stderr: the Claude Code plugin's launcher runs this before it hands
# stdout to the MCP protocol. Nothing is installed unless everything checked out.
set -eu

REPO="pty-mcp/pty-mcp"
RELEASE_URL="${PTY_MCP_RELEASE_URL:-https://github.com/$REPO/releases/latest/download}"
INSTALL_DIR="${PTY_MCP_INSTALL_DIR:-${HOME:?HOME is not set}/.local/bin}"

say() { printf 'pty-mcp install: %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 1
}

usage() {
	sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
}

register=0
for arg in "$@"; do
	case "$arg" in
	--register) register=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*) die "unknown option $arg (try --help)" ;;
	esac
done

# The Rust target triple of the archive for this machine.
target() {
	if [ -n "${PTY_MCP_TARGET:-}" ]; then
		echo "$PTY_MCP_TARGET"
		return
	fi
	os=$(uname -s)
	arch=$(uname -m)
	case "$os/$arch" in
	Linux/x86_64 | Linux/amd64) echo x86_64-unknown-linux-musl ;;
	Linux/aarch64 | Linux/arm64) echo aarch64-unknown-linux-musl ;;
	Darwin/x86_64) echo x86_64-apple-darwin ;;
	Darwin/arm64 | Darwin/aarch64) echo aarch64-apple-darwin ;;
	*) die "no pty-mcp release is built for $os $arch; build it from source: cargo install pty-mcp" ;;
	esac
}

# fetch URL FILE
fetch() {
	if command -v curl >/dev/null 2>&1; then
		curl -fsSL --retry 2 -o "$2" "$1"
	elif command -v wget >/dev/null 2>&1; then
		wget -q -O "$2" "$1"
	else
		die "needs curl or wget to download"
	fi
}

sha256() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$1" | cut -d ' ' -f 1
	elif command -v shasum >/dev/null 2>&1; then
		shasum -a 256 "$1" | cut -d ' ' -f 1
	else
		die "needs sha256sum or shasum to verify the download"
	fi
}

main() {
	triple=$(target)
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/pty-mcp-install.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	trap 'exit 1' INT TERM HUP

	fetch "$RELEASE_URL/SHA256SUMS" "$tmp/SHA256SUMS" || die "could not download $RELEASE_URL/SHA256SUMS"
	# Lines are "<sha256>  <file>" (a leading * marks binary mode).
	line=$(sed 's/ \*/  /' "$tmp/SHA256SUMS" | awk -v suffix="-$triple.tar.gz" '
		substr($2, 1, 8) == "pty-mcp-" && substr($2, length($2) - length(suffix) + 1) == suffix { found = $0 }
		END { if (found != "") print found }')
	[ -n "$line" ] || die "the release at $RELEASE_URL has no archive for $triple; build it from source: cargo install pty-mcp"
	want=${line%% *}
	name=${line##* }
	case "$name" in */* | .*) die "SHA256SUMS names an odd file: $name" ;; esac

	say "downloading $name"
	fetch "$RELEASE_URL/$name" "$tmp/$name" || die "could not download $RELEASE_URL/$name"
	got=$(sha256 "$tmp/$name")
	[ "$got" = "$want" ] || die "$name does not match SHA256SUMS (expected $want, got $got): nothing was installed"

	mkdir "$tmp/x"
	tar -xzf "$tmp/$name" -C "$tmp/x" || die "$name is not a readable archive: nothing was installed"
	src="$tmp/x/${name%.tar.gz}"
	for bin in pty-mcp ai-tmux; do
		[ -f "$src/$bin" ] || die "$name has no $bin: nothing was installed"
	done
	version=$("$src/pty-mcp" --version 2>/dev/null) || die "the downloaded pty-mcp does not run on this machine: nothing was installed"

	mkdir -p "$INSTALL_DIR" || die "cannot create $INSTALL_DIR"
	# Copied beside the old files first, then renamed over them: a rename is atomic, and a
	# running ai-tmux keeps the file it started from.
	for bin in pty-mcp ai-tmux; do
		if ! { cp "$src/$bin" "$INSTALL_DIR/.$bin.new.$$" && chmod 755 "$INSTALL_DIR/.$bin.new.$$"; }; then
			rm -f "$INSTALL_DIR/.pty-mcp.new.$$" "$INSTALL_DIR/.ai-tmux.new.$$"
			die "cannot write into $INSTALL_DIR: nothing was installed"
		fi
	done
	mv -f "$INSTALL_DIR/.ai-tmux.new.$$" "$INSTALL_DIR/ai-tmux"
	mv -f "$INSTALL_DIR/.pty-mcp.new.$$" "$INSTALL_DIR/pty-mcp"
	say "installed $version (pty-mcp and ai-tmux) into $INSTALL_DIR"
	case ":${PATH:-}:" in
	*":$INSTALL_DIR:"*) ;;
	*) say "note: $INSTALL_DIR is not on PATH" ;;
	esac

	if [ "$register" = 1 ] && command -v claude >/dev/null 2>&1; then
		claude mcp add pty-mcp -- "$INSTALL_DIR/pty-mcp" >&2 || die "claude mcp add failed"
		say "registered with Claude Code"
	else
		say "register it with Claude Code: claude mcp add pty-mcp -- $INSTALL_DIR/pty-mcp"
	fi
}

main
