#!/usr/bin/env bash
# make install's parts: the program, the man page kith(1) that covers every
# command, bash completion (commands, groups, members), and the systemd user
# unit that runs the installed kith node.
KITH=$1
. "$(dirname "$0")/lib.sh"

BUILD=$(dirname "$(dirname "$KITH")")
PREFIX="$WORK/prefix"
cmake --install "$BUILD" --prefix "$PREFIX" >"$WORK/install.log"
MAN="$PREFIX/share/man/man1/kith.1"
COMP="$PREFIX/share/bash-completion/completions/kith"
UNIT="$PREFIX/lib/systemd/user/kith-node.service"
check "kith is installed" test -x "$PREFIX/bin/kith"
check "the man page is installed" test -f "$MAN"
check "the completion is installed" test -f "$COMP"
check "the user unit is installed" test -f "$UNIT"
check "  ... and runs the installed kith node" \
  grep -qx "ExecStart=$PREFIX/bin/kith node" "$UNIT"
if command -v systemd-analyze >/dev/null; then
  check "  ... and systemd finds nothing wrong with it" \
    systemd-analyze verify --man=no "$UNIT"
fi
if command -v man >/dev/null; then
  check "the man page renders without warnings" \
    test -z "$(man -l "$MAN" 2>&1 >/dev/null)"
fi

commands=$("$KITH" --help | sed -n 's/^  \([a-z]\+\) .*/\1/p')
for c in $commands; do
  check "the man page covers kith $c" grep -q "kith $c\b" "$MAN"
  check "the completion knows $c" grep -q "\b$c\b" "$COMP"
done
for c in $("$KITH" group --help | sed -n 's/^  group \([a-z]\+\) .*/\1/p'); do
  check "the man page covers kith group $c" grep -q "kith group $c\b" "$MAN"
done

# Completion against a running node: commands, groups, members.
k alice init --name alice >/dev/null
k bob init --name bob >/dev/null
start_node alice; start_node bob
k alice group create friends >/dev/null
k bob join "$(k alice invite friends)" >/dev/null 2>&1
complete_words() { # the completions of the words given (the last is typed)
  bash -c '
    export PATH="'"$(dirname "$KITH")"':$PATH"
    . "'"$COMP"'"
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
    _kith
    printf "%s\n" "${COMPREPLY[@]}"' _ "$@"
}
check "commands complete" \
  test "$(complete_words kith ki)" = kick
check "groups complete" \
  test "$(complete_words kith --home "$(home alice)" kick f)" = friends
check "members complete" \
  bash -c "[ \"\$(printf '%s\n' $(complete_words kith --home "$(home alice)" kick friends '' | tr '\n' ' ') | sort | tr '\n' ' ')\" = 'alice bob ' ]"
check "roles complete" \
  test "$(complete_words kith role friends bob ad)" = admin
check "group subcommands complete" \
  test "$(complete_words kith group mo)" = mode
finish
